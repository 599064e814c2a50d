import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import {
  type AnyServerEvent,
  type AppEvent,
  ParleyClient,
  type ParleyError,
  type PresenceEvent,
  type ToDeviceEvent,
} from '../src/index.js';
import { type Frame, sleep, waitUntil } from './fake-server.js';
import { withFakeServer } from './helpers.js';

const fx = withFakeServer();
const client = (opts: Parameters<typeof fx.client>[0] = {}) => fx.client(opts);

/** The frame without its request id. */
function bare(frame: Frame | undefined): Frame {
  const { id: _id, ...rest } = frame ?? {};
  return rest;
}

test('request helpers write the protocol frames and resolve with the result fields only', async () => {
  fx.server.onRequest = (frame) => {
    switch (frame.type) {
      case 'history':
        return { messages: [{ conv: frame.conv, seq: 9 }], more: true };
      case 'create_group':
        return { conv: 'g:01ABC' };
      default:
        return { echoed: frame.type };
    }
  };
  const { client: c } = client();
  await c.connect();
  const history = await c.history('g:01ABC', { before: 10, limit: 5 });
  assert.deepEqual(history, { messages: [{ conv: 'g:01ABC', seq: 9 }], more: true });
  assert.deepEqual(await c.createGroup('Climbing', ['bob', 'carol']), { conv: 'g:01ABC' });

  const calls: [() => Promise<unknown>, Frame][] = [
    [() => c.conversations({ limit: 50, before_ts: 7 }), { type: 'conversations', limit: 50, before_ts: 7 }],
    [() => c.receipts('g:1'), { type: 'receipts', conv: 'g:1' }],
    [() => c.ping(), { type: 'ping' }],
    [() => c.addMembers('g:1', ['dave']), { type: 'add_members', conv: 'g:1', users: ['dave'] }],
    [() => c.removeMembers('g:1', ['carol']), { type: 'remove_members', conv: 'g:1', users: ['carol'] }],
    [() => c.leave('g:1'), { type: 'leave', conv: 'g:1' }],
    [() => c.updateGroup('g:1', { name: 'New' }), { type: 'update_group', conv: 'g:1', name: 'New' }],
    [() => c.setRole('g:1', 'bob', 'admin'), { type: 'set_role', conv: 'g:1', user: 'bob', role: 'admin' }],
    [() => c.groupInfo('g:1'), { type: 'group_info', conv: 'g:1' }],
    [() => c.unsubscribePresence(['bob']), { type: 'presence_unsub', users: ['bob'] }],
    [() => c.settings({ read_receipts: false }), { type: 'settings', read_receipts: false }],
    [() => c.settings(), { type: 'settings' }],
    [() => c.block('mallory'), { type: 'block', user: 'mallory' }],
    [() => c.unblock('mallory'), { type: 'unblock', user: 'mallory' }],
    [() => c.sync({ after: 3, limit: 7 }), { type: 'sync', after: 3, limit: 7 }],
    [() => c.request('keys_count'), { type: 'keys_count' }],
  ];
  for (const [call, expected] of calls) {
    const before = fx.server.received.length;
    await call();
    assert.deepEqual(bare(fx.server.received[before]?.frame), expected);
  }
  const r = (await c.request('devices')) as Frame;
  assert.deepEqual(r, { echoed: 'devices' }, 'no type, id or ok in results');
  const ids = fx.server.received.map((x) => x.frame.id).filter((id) => id !== undefined);
  assert.equal(new Set(ids).size, ids.length, 'request ids are unique per client');
});

test('a request made before connect waits for the connection; one that outlives its timeout rejects', async () => {
  fx.server.onRequest = (frame) => (frame.type === 'receipts' ? null : { done: 1 });
  const { client: c } = client({ requestTimeoutMs: 150 });
  const early = c.leave('g:1');
  await sleep(20);
  await c.connect();
  await early;
  const t0 = Date.now();
  await assert.rejects(c.receipts('g:1'), (e: ParleyError) => e.code === 'timeout');
  assert.ok(Date.now() - t0 >= 140);
});

test('a request in flight when the connection drops rejects with disconnected (not retried)', async () => {
  fx.server.onRequest = () => null;
  const { client: c, log } = client();
  await c.connect();
  const p = c.createGroup('x', []);
  await waitUntil(() => fx.server.framesOf('create_group').length === 1);
  fx.server.dropAll();
  await assert.rejects(p, (e: ParleyError) => e.code === 'disconnected');
  await waitUntil(() => log.connected === 2);
  await sleep(20);
  assert.equal(fx.server.framesOf('create_group').length, 1);
});

test('error replies reject with the server code and retry_after_ms', async () => {
  fx.server.onRequest = () => null;
  const { client: c } = client();
  await c.connect();
  const p = c.history('g:nope');
  await waitUntil(() => fx.server.framesOf('history').length === 1);
  const id = fx.server.framesOf('history')[0]?.frame.id;
  fx.server.conns[0]?.ws.send(
    JSON.stringify({
      type: 'reply',
      id,
      ok: false,
      error: { code: 'rate_limited', message: 'slow', retry_after_ms: 9 },
    }),
  );
  await assert.rejects(
    p,
    (e: ParleyError) => e.code === 'rate_limited' && e.retryAfterMs === 9 && e.message === 'slow',
  );
});

test('receipts are fire-and-forget frames without id; while offline the highest per conv and kind is kept', async () => {
  const { client: c } = client();
  c.markDelivered('dm:alice:bob', 3);
  c.markDelivered('dm:alice:bob', 5);
  c.markDelivered('dm:alice:bob', 4);
  c.markRead('dm:alice:bob', 2);
  await c.connect();
  await waitUntil(() => fx.server.framesOf('receipt').length === 2);
  c.markRead('g:1', 8);
  await waitUntil(() => fx.server.framesOf('receipt').length === 3);
  assert.deepEqual(
    fx.server.framesOf('receipt').map((r) => r.frame),
    [
      { type: 'receipt', conv: 'dm:alice:bob', kind: 'delivered', seq: 5 },
      { type: 'receipt', conv: 'dm:alice:bob', kind: 'read', seq: 2 },
      { type: 'receipt', conv: 'g:1', kind: 'read', seq: 8 },
    ],
  );
});

test('presence subscriptions are renewed after a reconnect; presence changes of subscribed users and typing are emitted', async () => {
  fx.server.onRequest = (frame) =>
    frame.type === 'presence_sub'
      ? { presence: (frame.users as string[]).map((user) => ({ user, status: 'online' })) }
      : {};
  const { client: c, log } = client();
  const presence: PresenceEvent[] = [];
  const typing: string[] = [];
  c.on('presence', (p) => presence.push(p));
  c.on('typing', (t) => typing.push(`${t.user}:${t.state}`));
  await c.connect();
  const r = await c.subscribePresence(['bob', 'carol']);
  assert.deepEqual(r, {
    presence: [
      { user: 'bob', status: 'online' },
      { user: 'carol', status: 'online' },
    ],
  });
  await c.unsubscribePresence(['carol']);
  assert.equal(c.presence('carol'), undefined, 'unsubscribed users are forgotten');
  fx.server.push({ type: 'presence', user: 'carol', status: 'offline', last_seen: 4 });
  fx.server.push({ type: 'presence', user: 'bob', status: 'offline', last_seen: 5 });
  fx.server.push({ type: 'typing', conv: 'g:1', user: 'bob', state: 'start' });
  await waitUntil(() => presence.length === 3 && typing.length === 1);
  assert.deepEqual(c.presence('bob'), { user: 'bob', status: 'offline', last_seen: 5 });
  fx.server.dropAll();
  await waitUntil(() => log.connected === 2 && presence.length === 4);
  const subs = fx.server.framesOf('presence_sub');
  assert.equal(subs.length, 2);
  assert.equal(subs[1]?.conn, 1);
  assert.deepEqual(subs[1]?.frame.users, ['bob']);
  assert.deepEqual(presence, [
    { type: 'presence', user: 'bob', status: 'online' },
    { type: 'presence', user: 'carol', status: 'online' },
    { type: 'presence', user: 'bob', status: 'offline', last_seen: 5 },
    { type: 'presence', user: 'bob', status: 'online' },
  ]);
  assert.deepEqual(c.presence('bob'), { user: 'bob', status: 'online' });
  assert.deepEqual(c.presenceSubscriptions, ['bob']);
  assert.deepEqual(typing, ['bob:start']);
});

test('typing is sent only while connected; directConv uses the connected user id; to_device, app_event and unknown events are emitted', async () => {
  const { client: c } = client();
  assert.equal(c.typing('g:1', 'start'), false);
  assert.throws(() => c.directConv('bob'));
  const other: AnyServerEvent[] = [];
  c.on('event', (e) => other.push(e));
  const toDevice: ToDeviceEvent[] = [];
  c.on('to_device', (e) => toDevice.push(e));
  const appEvents: AppEvent[] = [];
  c.on('app_event', (e) => appEvents.push(e));
  await c.connect();
  assert.equal(c.typing('g:1', 'start'), true);
  await waitUntil(() => fx.server.framesOf('typing').length === 1);
  assert.deepEqual(fx.server.framesOf('typing')[0]?.frame, { type: 'typing', conv: 'g:1', state: 'start' });
  assert.equal(c.directConv('bob'), 'dm:alice:bob');
  assert.equal(c.directConv('aaron'), 'dm:aaron:alice');
  fx.server.push({ type: 'to_device', qid: 1, from: 'bob', from_device: 'p', body: 'x' });
  await waitUntil(() => toDevice.length === 1);
  assert.deepEqual(toDevice[0], { type: 'to_device', qid: 1, from: 'bob', from_device: 'p', body: 'x' });
  fx.server.push({ type: 'app_event', name: 'order.shipped', data: '{"order":7}' });
  await waitUntil(() => appEvents.length === 1);
  assert.deepEqual(appEvents[0], { type: 'app_event', name: 'order.shipped', data: '{"order":7}' });
  fx.server.push({ type: 'something_new', x: 1 });
  await waitUntil(() => other.length === 1);
  assert.deepEqual(
    other,
    [{ type: 'something_new', x: 1 }],
    'an event this SDK does not know passes through',
  );
});

test('the constructor validates its options and needs a WebSocket class in Node 20', () => {
  const base = { url: fx.server.url, device: 'd', tokenProvider: () => 't', WebSocket };
  assert.throws(() => new ParleyClient({ ...base, url: '' }), TypeError);
  assert.throws(() => new ParleyClient({ ...base, device: '' }), TypeError);
  const { WebSocket: _ws, ...noWs } = base;
  if ((globalThis as { WebSocket?: unknown }).WebSocket === undefined) {
    assert.throws(() => new ParleyClient(noWs), /WebSocket option/);
  }
});
