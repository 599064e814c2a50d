// Receipt coalescing, the typing rate limit and controller, presence bookkeeping and the typed
// group/settings helpers, against the fake server with short intervals.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ParleyError, type PresenceEvent, parseSystemMessage } from '../src/index.js';
import { FakeErrorReply, type Frame, sleep, waitUntil } from './fake-server.js';
import { withFakeServer } from './helpers.js';

const fx = withFakeServer();
const client = (opts: Parameters<typeof fx.client>[0] = {}) => fx.client(opts);

/** Appends one message to the fake inbox and pushes it live. */
function live(extra: Partial<Frame>): void {
  fx.server.append(1, { live: true, extra: () => extra });
}

/** The receipt frames received, without their type. */
function receipts(): { conv: unknown; kind: unknown; seq: unknown }[] {
  return fx.server
    .framesOf('receipt')
    .map((r) => ({ conv: r.frame.conv, kind: r.frame.kind, seq: r.frame.seq }));
}

test('delivered receipts are sent automatically for others’ messages, coalesced per conversation', async () => {
  const { client: c } = client({ receiptIntervalMs: 80 });
  await c.connect();
  live({ conv: 'dm:alice:bob', seq: 1, from: 'alice' }); // the user's own: never
  for (let seq = 2; seq <= 6; seq++) live({ conv: 'dm:alice:bob', seq, from: 'bob' });
  await waitUntil(() => receipts().length === 1);
  live({ conv: 'g:1', seq: 9, from: 'carol' }); // another conversation has its own interval
  await waitUntil(() => receipts().length === 3);
  await sleep(120);
  assert.deepEqual(receipts(), [
    { conv: 'dm:alice:bob', kind: 'delivered', seq: 2 },
    { conv: 'g:1', kind: 'delivered', seq: 9 },
    { conv: 'dm:alice:bob', kind: 'delivered', seq: 6 },
  ]);
  const [first, , last] = fx.server.framesOf('receipt');
  assert.ok(last!.at - first!.at >= 70, `second write waited for the interval (${last!.at - first!.at} ms)`);
  for (const r of fx.server.framesOf('receipt')) assert.equal(r.frame.id, undefined, 'fire-and-forget');
});

test('autoDeliveredReceipts: false sends none; markDelivered still works', async () => {
  const { client: c, log } = client({ autoDeliveredReceipts: false, receiptIntervalMs: 20 });
  await c.connect();
  for (let seq = 1; seq <= 3; seq++) live({ seq, from: 'bob' });
  await waitUntil(() => log.messages.length === 3);
  await sleep(40);
  assert.deepEqual(receipts(), []);
  c.markDelivered('dm:alice:bob', 3);
  await waitUntil(() => receipts().length === 1);
  assert.deepEqual(receipts(), [{ conv: 'dm:alice:bob', kind: 'delivered', seq: 3 }]);
});

test('a sync replaying 300 messages writes at most two delivered receipts per conversation', async () => {
  fx.server.append(300, {
    extra: (i) => ({ conv: i % 2 === 1 ? 'g:a' : 'g:b', seq: Math.ceil(i / 2), from: 'bob' }),
  });
  fx.server.syncPageCap = 50;
  const { client: c, log } = client({ receiptIntervalMs: 200 });
  await c.connect();
  await c.whenSynced();
  assert.equal(log.messages.length, 300);
  const last = (conv: string) => receipts().filter((r) => r.conv === conv);
  await waitUntil(() => last('g:a').at(-1)?.seq === 150 && last('g:b').at(-1)?.seq === 150, 2000);
  assert.ok(last('g:a').length <= 2, JSON.stringify(last('g:a')));
  assert.ok(last('g:b').length <= 2, JSON.stringify(last('g:b')));
});

test('markRead is coalesced: the highest per conversation, once per interval; lower or covered values are dropped', async () => {
  const { client: c } = client({ receiptIntervalMs: 60 });
  await c.connect();
  for (let seq = 1; seq <= 200; seq++) c.markRead('g:1', seq);
  await waitUntil(() => receipts().length === 2);
  c.markRead('g:1', 150); // below the watermark
  c.markDelivered('g:1', 100); // read implies delivered
  live({ conv: 'g:1', seq: 180, from: 'bob' }); // an auto delivered receipt below read: dropped too
  await sleep(90);
  assert.deepEqual(receipts(), [
    { conv: 'g:1', kind: 'read', seq: 1 },
    { conv: 'g:1', kind: 'read', seq: 200 },
  ]);

  // A read that overtakes a pending delivered replaces it.
  c.markDelivered('g:2', 5); // written at once
  c.markDelivered('g:2', 8); // waits for the interval…
  c.markRead('g:2', 10); // …and is covered by this read
  await sleep(90);
  assert.deepEqual(receipts().slice(2), [
    { conv: 'g:2', kind: 'delivered', seq: 5 },
    { conv: 'g:2', kind: 'read', seq: 10 },
  ]);
});

test('receipts asked for while disconnected are kept (highest only) and written after the reconnect', async () => {
  // Reconnect after 100 ms, well after the 20 ms receipt interval has passed while offline.
  const { client: c, log } = client({
    receiptIntervalMs: 20,
    minReconnectDelayMs: 200,
    maxReconnectDelayMs: 400,
  });
  await c.connect();
  c.markRead('g:1', 1);
  await waitUntil(() => receipts().length === 1);
  fx.server.dropAll();
  await waitUntil(() => log.disconnects.length === 1);
  c.markRead('g:1', 3); // within the interval of the first: its timer fires while offline
  c.markRead('g:1', 5);
  c.markDelivered('g:2', 2);
  await sleep(40);
  assert.equal(receipts().length, 1, 'nothing written while offline');
  await waitUntil(() => log.connected === 2);
  await waitUntil(() => receipts().length === 3);
  await sleep(40);
  const frames = fx.server.framesOf('receipt');
  assert.deepEqual(
    frames.map((r) => [r.conn, r.frame.conv, r.frame.kind, r.frame.seq]),
    [
      [0, 'g:1', 'read', 1],
      [1, 'g:1', 'read', 5],
      [1, 'g:2', 'delivered', 2],
    ],
  );
});

test('a receipt written on a connection that died before any later reply is written again; a confirmed one is not', async () => {
  const { client: c, log } = client({ receiptIntervalMs: 20 });
  await c.connect();
  c.markRead('g:1', 4);
  await c.ping(); // its reply proves the server read the receipt written before it
  c.markRead('g:2', 6); // nothing confirms this one
  await waitUntil(() => receipts().length === 2);
  fx.server.dropAll();
  await waitUntil(() => log.connected === 2);
  await waitUntil(() => receipts().length === 3);
  await sleep(40);
  assert.deepEqual(
    fx.server.framesOf('receipt').map((r) => [r.conn, r.frame.conv, r.frame.seq]),
    [
      [0, 'g:1', 4],
      [0, 'g:2', 6],
      [1, 'g:2', 6],
    ],
  );
});

test('the system message that removed this user gets no delivered receipt; others do', async () => {
  const { client: c, log } = client({ receiptIntervalMs: 20 });
  await c.connect();
  const removed = { event: 'members_removed', users: ['alice'] };
  const other = { event: 'members_removed', users: ['carol'] };
  live({ conv: 'g:1', seq: 4, from: 'bob', kind: 'system', cmid: 'system:4', body: JSON.stringify(removed) });
  live({ conv: 'g:2', seq: 7, from: 'bob', kind: 'system', cmid: 'system:7', body: JSON.stringify(other) });
  await waitUntil(() => receipts().length === 1);
  await sleep(40);
  assert.deepEqual(receipts(), [{ conv: 'g:2', kind: 'delivered', seq: 7 }]);
  assert.deepEqual(parseSystemMessage(log.messages[0]!), { ...removed, actor: 'bob' });
});

test('typing: at most one start per conversation per interval, dropped locally, even after a stop', async () => {
  const { client: c } = client({ typingIntervalMs: 100 });
  assert.equal(c.typing('g:1', 'start'), false, 'not connected');
  await c.connect();
  const calls = [
    c.typing('g:1', 'start'),
    c.typing('g:1', 'start'),
    c.typing('g:2', 'start'),
    c.typing('g:1', 'stop'),
    c.typing('g:1', 'stop'),
    c.typing('g:1', 'start'),
    c.typing('g:1', 'start'),
  ];
  assert.deepEqual(calls, [true, false, true, true, true, false, false]);
  await sleep(110);
  assert.equal(c.typing('g:1', 'start'), true, 'a new interval');
  await waitUntil(() => fx.server.framesOf('typing').length === 5);
  await sleep(20);
  assert.deepEqual(
    fx.server.framesOf('typing').map((r) => `${r.frame.conv}:${r.frame.state}`),
    ['g:1:start', 'g:2:start', 'g:1:stop', 'g:1:stop', 'g:1:start'],
  );
});

test('typingController sends start on input and stop by itself after idleMs', async () => {
  const { client: c } = client({ typingIntervalMs: 150 });
  await c.connect();
  const tc = c.typingController('g:1', { idleMs: 60 });
  assert.deepEqual([tc.input(), tc.input(), tc.input()], [true, false, false]);
  assert.equal(tc.active, true);
  await waitUntil(() => fx.server.framesOf('typing').length === 2);
  const [start, stop] = fx.server.framesOf('typing');
  assert.equal(stop?.frame.state, 'stop');
  assert.ok(stop!.at - start!.at >= 50, `stop after the idle time (${stop!.at - start!.at} ms)`);
  assert.equal(tc.active, false);
  assert.equal(tc.stop(), false, 'no second stop');
  assert.equal(tc.input(), false, 'within the interval of the last start, even after the stop');
  assert.equal(tc.active, false, 'nothing shown to others');
  assert.equal(tc.stop(), false, 'so no stop either');
  await sleep(160 - (Date.now() - start!.at));
  assert.equal(tc.input(), true, 'a new interval');
  assert.equal(tc.stop(), true);
  await waitUntil(() => fx.server.framesOf('typing').length === 4);
  await sleep(80);
  assert.deepEqual(
    fx.server.framesOf('typing').map((r) => r.frame.state),
    ['start', 'stop', 'start', 'stop'],
  );
});

test('group changes resolve with { conv, seq?, ts? }; settings with both fields; block/unblock with nothing', async () => {
  fx.server.onRequest = (frame) => {
    switch (frame.type) {
      case 'create_group':
        return { conv: 'g:NEW', extra: true };
      case 'add_members':
      case 'update_group':
        return { conv: frame.conv, seq: 7, ts: 99, extra: true };
      case 'settings':
        return { read_receipts: false, last_seen: 'nobody', extra: true };
      default:
        return frame.conv === undefined ? {} : { conv: frame.conv };
    }
  };
  const { client: c } = client();
  await c.connect();
  assert.deepEqual(await c.createGroup('n', ['bob']), { conv: 'g:NEW' });
  assert.deepEqual(await c.addMembers('g:1', ['dave']), { conv: 'g:1', seq: 7, ts: 99 });
  assert.deepEqual(await c.updateGroup('g:1', { name: 'x' }), { conv: 'g:1', seq: 7, ts: 99 });
  for (const r of [
    await c.removeMembers('g:1', ['dave']),
    await c.leave('g:1'),
    await c.setRole('g:1', 'bob', 'member'),
  ]) {
    assert.deepEqual(r, { conv: 'g:1' });
    assert.equal('seq' in r, false, 'no seq when nothing changed');
  }
  assert.deepEqual(await c.settings({ last_seen: 'nobody' }), { read_receipts: false, last_seen: 'nobody' });
  assert.deepEqual(fx.server.framesOf('settings')[0]?.frame, {
    type: 'settings',
    id: fx.server.framesOf('settings')[0]?.frame.id,
    last_seen: 'nobody',
  });
  assert.equal(await c.block('mallory'), undefined);
  assert.equal(await c.unblock('mallory'), undefined);
});

test('presence: a refused subscription is dropped, unchanged statuses emit nothing, renewals cover the rest', async () => {
  fx.server.onRequest = (frame) => {
    if (frame.type !== 'presence_sub') return {};
    const users = frame.users as string[];
    if (users.includes('too-many')) return new FakeErrorReply({ code: 'too_large' });
    return { presence: users.map((user) => ({ user, status: 'online' })) };
  };
  const { client: c, log } = client();
  const presence: PresenceEvent[] = [];
  c.on('presence', (p) => presence.push(p));
  await c.connect();
  await c.subscribePresence(['bob']);
  await assert.rejects(c.subscribePresence(['too-many', 'bob']), (e: ParleyError) => e.code === 'too_large');
  assert.deepEqual(c.presenceSubscriptions, ['bob'], 'bob stays, the refused user is dropped');
  fx.server.push({ type: 'presence', user: 'bob', status: 'online' }); // unchanged
  fx.server.push({ type: 'presence', user: 'bob', status: 'offline', last_seen: 42 });
  await waitUntil(() => presence.length === 2);
  assert.deepEqual(
    presence.map((p) => p.status),
    ['online', 'offline'],
  );
  assert.deepEqual(c.presence('bob'), { user: 'bob', status: 'offline', last_seen: 42 });
  fx.server.dropAll();
  await waitUntil(() => log.connected === 2 && presence.length === 3);
  assert.deepEqual(fx.server.framesOf('presence_sub').at(-1)?.frame.users, ['bob']);
  assert.equal(c.presence('bob')?.status, 'online');
});
