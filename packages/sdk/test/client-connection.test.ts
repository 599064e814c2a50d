import assert from 'node:assert/strict';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { ParleyError } from '../src/index.js';
import { sleep, waitUntil } from './fake-server.js';
import { withFakeServer } from './helpers.js';

const fx = withFakeServer();
const client = (opts: Parameters<typeof fx.client>[0] = {}) => fx.client(opts);

test('state machine: disconnected → connecting → syncing → connected; drop → connecting → connected; close → closed', async () => {
  fx.server.append(3);
  const { client: c, log } = client();
  assert.equal(c.state, 'disconnected');
  assert.equal(c.userId, undefined);
  const result = await c.connect();
  assert.equal(result.user, 'alice');
  assert.equal(result.inbox_head, 3);
  assert.equal(c.userId, 'alice');
  assert.equal(fx.server.conns[0]?.protocol, 'parley.v1.json', 'offers the JSON subprotocol');
  const connectFrame = fx.server.framesOf('connect')[0]?.frame;
  assert.equal(connectFrame?.token, 'token-1');
  assert.equal(connectFrame?.device, 'laptop-1');
  assert.match(String(connectFrame?.client), /^parley-js\//);
  assert.equal(fx.server.received[0]?.frame.type, 'connect', 'connect is the first frame');
  await c.whenSynced();
  assert.equal(c.state, 'connected');

  fx.server.dropAll();
  await waitUntil(() => fx.server.conns.length === 2 && c.state === 'connected', 2000, 'reconnect');
  assert.equal(fx.server.framesOf('connect').length, 2);
  await c.close();
  assert.equal(c.state, 'closed');
  assert.deepEqual(log.states, [
    'disconnected>connecting',
    'connecting>syncing',
    'syncing>connected',
    'connected>connecting',
    'connecting>connected', // nothing new to sync: straight to connected
    'connected>closed',
  ]);
  assert.deepEqual(
    log.disconnects.map((d) => [d.reason, d.willReconnect]),
    [
      ['transport_closed', true],
      ['client_closed', false],
    ],
  );
  assert.equal(log.disconnects[0]?.code, 1006);
  await waitUntil(() => fx.server.openConns.length === 0, 1000, 'socket closed by close()');
});

test('connect() rejects with closed when close() comes first; no socket is reopened after close()', async () => {
  fx.server.onConnect = () => 'ignore';
  const { client: c } = client();
  const p = c.connect();
  await waitUntil(() => fx.server.framesOf('connect').length === 1);
  await c.close();
  await assert.rejects(p, (e: ParleyError) => e.code === 'closed');
  await sleep(80);
  assert.equal(fx.server.conns.length, 1);
});

test('reconnect delays follow full-jitter backoff and reset after a successful connect', async () => {
  let n = 0;
  fx.server.onConnect = () => (++n <= 3 || n === 5 ? { close: 1011 } : 'ok');
  const { client: c, log } = client({
    minReconnectDelayMs: 10,
    maxReconnectDelayMs: 25,
    random: () => 0.999,
  });
  await c.connect();
  assert.deepEqual(
    log.disconnects.map((d) => d.delayMs),
    [9, 19, 24],
    'floor(0.999 * min(max, min * 2^attempt))',
  );
  fx.server.dropAll();
  await waitUntil(() => log.connected === 2, 2000, 'second connect');
  assert.deepEqual(
    log.disconnects.slice(3).map((d) => d.delayMs),
    [9, 19],
    'attempt counter reset by the successful connect',
  );
});

test('4401: the token is fetched again (refresh: true) and the client reconnects with it', async () => {
  const requests: boolean[] = [];
  fx.server.onConnect = (frame) => (frame.token === 'tok-3' ? { error: 'unauthorized' } : 'ok');
  const { client: c, log } = client({
    tokenProvider: ({ refresh }) => {
      requests.push(refresh);
      return `tok-${requests.length}`;
    },
  });
  await c.connect();
  assert.equal(fx.server.conns[0]?.token, 'tok-1');
  fx.server.closeAll(4401, 'token expired');
  await waitUntil(() => log.connected === 2, 2000, 'reconnect after 4401');
  assert.equal(fx.server.conns[1]?.token, 'tok-2');
  assert.deepEqual(requests, [false, true]);
  assert.equal(log.disconnects[0]?.reason, 'token_invalid');
  assert.equal(log.disconnects[0]?.code, 4401);

  // An `unauthorized` connect reply is handled the same way.
  fx.server.dropAll();
  await waitUntil(() => log.connected === 3, 2000, 'reconnect after unauthorized');
  assert.deepEqual(requests, [false, true, false, true]);
  assert.equal(fx.server.conns[3]?.token, 'tok-4');
  assert.ok(log.errors.some((e) => e instanceof ParleyError && e.code === 'unauthorized'));
});

test('a failing tokenProvider is retried with backoff', async () => {
  let calls = 0;
  const { client: c, log } = client({
    tokenProvider: async () => {
      calls += 1;
      if (calls < 3) throw new Error('auth server down');
      return 'tok';
    },
  });
  await c.connect();
  assert.equal(calls, 3);
  assert.deepEqual(
    log.disconnects.map((d) => d.reason),
    ['token_provider_failed', 'token_provider_failed'],
  );
  assert.equal(fx.server.conns.length, 1, 'no socket opened without a token');
});

test('4409 replaced: state closed, no reconnect, pending work rejected', async () => {
  fx.server.onRequest = () => null; // never replies
  const { client: c, log } = client();
  await c.connect();
  const pending = c.history('dm:alice:bob');
  await waitUntil(() => fx.server.framesOf('history').length === 1);
  fx.server.closeAll(4409, 'replaced');
  await assert.rejects(pending, (e: ParleyError) => e.code === 'closed');
  assert.equal(c.state, 'closed');
  assert.deepEqual(log.disconnects.at(-1), { code: 4409, reason: 'replaced', willReconnect: false });
  await sleep(100); // > maxReconnectDelayMs
  assert.equal(fx.server.conns.length, 1, 'never reconnected');
  await assert.rejects(c.send('dm:alice:bob', 'x'), (e: ParleyError) => e.code === 'closed');
  // The application may take over again explicitly.
  await c.connect();
  assert.equal(fx.server.conns.length, 2);
});

test('4400 and 1008 stop the client; 4429 reconnects only after a long delay', async () => {
  for (const code of [4400, 1008]) {
    const { client: c, log } = client();
    await c.connect();
    const before = fx.server.conns.length;
    fx.server.closeAll(code);
    await waitUntil(() => c.state === 'closed', 1000, `stop on ${code}`);
    assert.equal(log.disconnects.at(-1)?.willReconnect, false);
    await sleep(60);
    assert.equal(fx.server.conns.length, before, `no reconnect after ${code}`);
  }

  const { client: c, log } = client({ minReconnectDelayMs: 1, maxReconnectDelayMs: 200, random: () => 0 });
  await c.connect();
  const closedAt = Date.now();
  fx.server.closeAll(4429);
  await waitUntil(() => log.connected === 2, 2000, 'reconnect after 4429');
  const last = fx.server.conns.at(-1);
  assert.ok(
    last && last.openedAt - closedAt >= 95,
    `waited ${last && last.openedAt - closedAt} ms (>= max/2)`,
  );
  assert.equal(log.disconnects[0]?.reason, 'too_many_connections');
  assert.equal(log.disconnects[0]?.delayMs, 100);
});

test('reconnect event: the client reconnects after after_ms by itself, even without a 1012', async () => {
  const { client: c, log } = client();
  const requested: number[] = [];
  c.on('reconnect_requested', (e) => requested.push(e.after_ms));
  await c.connect();
  const t0 = Date.now();
  fx.server.push({ type: 'reconnect', after_ms: 150, reason: 'drain' });
  await waitUntil(() => log.connected === 2, 2000, 'reconnect after drain');
  const waited = (fx.server.conns[1]?.openedAt ?? 0) - t0;
  assert.ok(waited >= 140, `reconnected after ${waited} ms, not before after_ms`);
  assert.ok(waited < 600, `reconnected after ${waited} ms`);
  assert.deepEqual(requested, [150]);
  assert.equal(log.disconnects[0]?.reason, 'server_restart');
  assert.ok(fx.server.conns[0]?.closedAt !== undefined, 'the client closed the draining connection');
});

test('reconnect event then 1012 before after_ms: the client still waits until after_ms', async () => {
  const { client: c, log } = client();
  await c.connect();
  const t0 = Date.now();
  fx.server.push({ type: 'reconnect', after_ms: 200, reason: 'drain' });
  await sleep(30);
  fx.server.closeAll(1012, 'restart');
  await waitUntil(() => log.connected === 2, 2000, 'reconnect');
  const waited = (fx.server.conns[1]?.openedAt ?? 0) - t0;
  assert.ok(waited >= 190, `waited ${waited} ms`);
  assert.equal(log.disconnects[0]?.code, 1012);
  assert.equal(log.disconnects[0]?.reason, 'server_restart');
  assert.ok((log.disconnects[0]?.delayMs ?? 0) > 100, 'the remaining part of after_ms');
});

test('connect timeout: no connect reply within requestTimeoutMs → new attempt', async () => {
  let n = 0;
  fx.server.onConnect = () => (++n === 1 ? 'ignore' : 'ok');
  const { client: c, log } = client({ requestTimeoutMs: 120 });
  const t0 = Date.now();
  await c.connect();
  assert.ok(Date.now() - t0 >= 110);
  assert.equal(fx.server.conns.length, 2);
  assert.equal(log.disconnects[0]?.reason, 'connect_timeout');
});

test('heartbeat: pings every heartbeat_ms; an unanswered ping ends the connection', async () => {
  fx.server.heartbeatMs = 30;
  let answer = true;
  fx.server.onRequest = (frame) => (frame.type === 'ping' && !answer ? null : { server_time: 1 });
  const { client: c, log } = client({ requestTimeoutMs: 100 });
  await c.connect();
  await sleep(130);
  const pings = fx.server.framesOf('ping').length;
  assert.ok(pings >= 2, `${pings} pings`);
  assert.ok(
    fx.server.framesOf('ping').every((r) => typeof r.frame.id === 'string'),
    'heartbeat pings carry an id',
  );
  answer = false;
  await waitUntil(() => log.connected === 2, 2000, 'reconnect after ping timeout');
  assert.equal(log.disconnects[0]?.reason, 'timeout');
});

test('close() rejects in-flight and queued requests, and a closed client rejects new ones', async () => {
  fx.server.onRequest = () => null;
  const { client: c } = client();
  await c.connect();
  const inflight = c.groupInfo('g:abc');
  await waitUntil(() => fx.server.framesOf('group_info').length === 1);
  await c.close();
  await assert.rejects(inflight, (e: ParleyError) => e.code === 'closed');
  await assert.rejects(c.ping(), (e: ParleyError) => e.code === 'closed');
  assert.equal(c.state, 'closed');
  assert.equal(c.typing('g:abc', 'start'), false);
});

test('a server that accepts TCP but never completes the WebSocket handshake: the attempt times out and is retried', async () => {
  const sockets: Socket[] = [];
  const tcp = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const { port } = tcp.address() as AddressInfo;
  const { client: c, log } = client({ url: `ws://127.0.0.1:${port}/v1/ws`, requestTimeoutMs: 80 });
  void c.connect().catch(() => {});
  await waitUntil(() => sockets.length >= 2, 2000, 'second attempt');
  assert.equal(log.disconnects[0]?.reason, 'connect_timeout');
  assert.equal(c.state, 'connecting');
  await c.close();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => tcp.close(() => r()));
});
