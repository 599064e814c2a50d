import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ParleyError } from '../src/index.js';
import { sleep, waitUntil } from './fake-server.js';
import { withFakeServer } from './helpers.js';

const fx = withFakeServer();
const client = (opts: Parameters<typeof fx.client>[0] = {}) => fx.client(opts);

const CONV = 'dm:alice:bob';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('a send lost with its connection is retried with the same cmid; the server dedups; the promise resolves once', async () => {
  const { client: c, log } = client();
  await c.connect();
  fx.server.sendScript.push('store_then_drop');
  let settled = 0;
  const p = c.send(CONV, 'hi bob', { reply_to: 3 });
  p.then(
    () => settled++,
    () => settled++,
  );
  const result = await p;
  assert.deepEqual(result, { conv: CONV, seq: 1, ts: 1_795_000_000_001, dup: true });
  const sends = fx.server.framesOf('send');
  assert.equal(sends.length, 2);
  assert.equal(sends[0]?.conn, 0);
  assert.equal(sends[1]?.conn, 1, 'resent on the new connection');
  assert.equal(sends[0]?.frame.cmid, sends[1]?.frame.cmid, 'same cmid');
  assert.match(String(sends[0]?.frame.cmid), UUID_RE);
  assert.notEqual(sends[0]?.frame.id, sends[1]?.frame.id, 'a fresh request id per attempt');
  assert.deepEqual(
    { ...sends[0]?.frame, id: undefined, cmid: undefined },
    { type: 'send', conv: CONV, kind: 'text', body: 'hi bob', reply_to: 3, id: undefined, cmid: undefined },
  );
  assert.equal(fx.server.stored.size, 1, 'stored once');
  assert.equal(log.connected, 2);
  await sleep(20);
  assert.equal(settled, 1);
  assert.equal(c.pendingSends, 0);
});

test('sends made while disconnected are queued and written in call order on connect', async () => {
  const { client: c } = client();
  const ps = ['a', 'b', 'c'].map((body) => c.send(CONV, body));
  assert.equal(c.pendingSends, 3);
  await sleep(20);
  assert.equal(fx.server.conns.length, 0, 'send does not connect by itself');
  await c.connect();
  const results = await Promise.all(ps);
  assert.deepEqual(
    results.map((r) => r.seq),
    [1, 2, 3],
  );
  assert.deepEqual(
    fx.server.framesOf('send').map((r) => r.frame.body),
    ['a', 'b', 'c'],
  );
});

test('after a reconnect every unacknowledged send is written again in the original order', async () => {
  const { client: c } = client();
  await c.connect();
  fx.server.sendScript.push('ignore', 'ignore', 'ignore');
  const ps = ['x', 'y', 'z'].map((body, i) => c.send(CONV, body, { cmid: `c-${i}` }));
  await waitUntil(() => fx.server.framesOf('send').length === 3);
  fx.server.dropAll();
  const results = await Promise.all(ps);
  assert.deepEqual(
    results.map((r) => [r.seq, r.dup]),
    [
      [1, undefined],
      [2, undefined],
      [3, undefined],
    ],
  );
  assert.deepEqual(
    fx.server.framesOf('send').map((r) => `${r.conn}:${r.frame.cmid}`),
    ['0:c-0', '0:c-1', '0:c-2', '1:c-0', '1:c-1', '1:c-2'],
  );
});

test('non-retryable errors reject at once with the cmid; nothing is resent', async () => {
  const { client: c } = client();
  await c.connect();
  for (const code of ['forbidden', 'bad_request', 'not_found', 'too_large', 'conflict']) {
    fx.server.sendScript.push({ error: { code, message: `no: ${code}` } });
    await assert.rejects(c.send(CONV, 'x', { cmid: `cm-${code}` }), (e: ParleyError) => {
      assert.equal(e.code, code);
      assert.equal(e.cmid, `cm-${code}`);
      assert.equal(e.message, `no: ${code}`);
      return true;
    });
  }
  await sleep(30);
  assert.equal(fx.server.framesOf('send').length, 5);
});

test('unavailable and internal are retried on the same connection with the same cmid', async () => {
  const { client: c } = client();
  await c.connect();
  fx.server.sendScript.push({ error: { code: 'unavailable' } }, { error: { code: 'internal' } });
  const r = await c.send(CONV, 'x');
  assert.equal(r.seq, 1);
  const sends = fx.server.framesOf('send');
  assert.equal(sends.length, 3);
  assert.equal(new Set(sends.map((s) => s.frame.cmid)).size, 1);
  assert.equal(fx.server.conns.length, 1);
});

test('rate_limited is retried after retry_after_ms, and later sends wait behind it (order kept)', async () => {
  const { client: c } = client();
  await c.connect();
  fx.server.sendScript.push({ error: { code: 'rate_limited', retry_after_ms: 120 } });
  const first = c.send(CONV, 'first');
  await waitUntil(() => fx.server.framesOf('send').length === 1);
  await sleep(20); // the error reply has arrived; 'first' waits to retry
  const second = c.send(CONV, 'second');
  const [r1, r2] = await Promise.all([first, second]);
  assert.deepEqual([r1.seq, r2.seq], [1, 2]);
  const sends = fx.server.framesOf('send');
  assert.deepEqual(
    sends.map((s) => s.frame.body),
    ['first', 'first', 'second'],
  );
  const waited = (sends[1]?.at ?? 0) - (sends[0]?.at ?? 0);
  assert.ok(waited >= 110, `retried after ${waited} ms`);
});

test('a send without a reply within requestTimeoutMs reconnects and resends it', async () => {
  const { client: c, log } = client({ requestTimeoutMs: 150 });
  await c.connect();
  fx.server.sendScript.push('ignore');
  const r = await c.send(CONV, 'x');
  assert.equal(r.seq, 1);
  assert.equal(fx.server.conns.length, 2);
  assert.equal(log.disconnects[0]?.reason, 'timeout');
  const sends = fx.server.framesOf('send');
  assert.equal(sends[0]?.frame.cmid, sends[1]?.frame.cmid);
});

test('sendRetry.maxAttempts bounds retries; the rejection says why', async () => {
  const { client: c } = client({ sendRetry: { maxAttempts: 2, minDelayMs: 1, maxDelayMs: 2 } });
  await c.connect();
  fx.server.sendScript.push({ error: { code: 'unavailable' } }, { error: { code: 'unavailable' } });
  await assert.rejects(c.send(CONV, 'x'), (e: ParleyError) => e.code === 'unavailable');
  assert.equal(fx.server.framesOf('send').length, 2);
});

test('close() rejects queued and in-flight sends with closed and their cmid', async () => {
  const { client: c } = client();
  await c.connect();
  fx.server.sendScript.push('ignore');
  const inflight = c.send(CONV, 'a', { cmid: 'm1' });
  await waitUntil(() => fx.server.framesOf('send').length === 1);
  fx.server.dropAll();
  await waitUntil(() => c.state === 'connecting');
  const queued = c.send(CONV, 'b', { cmid: 'm2' });
  await c.close();
  await assert.rejects(inflight, (e: ParleyError) => e.code === 'closed' && e.cmid === 'm1');
  await assert.rejects(queued, (e: ParleyError) => e.code === 'closed' && e.cmid === 'm2');
  assert.equal(c.pendingSends, 0);
});

test('kind, media and a caller-chosen cmid are passed through', async () => {
  const { client: c } = client();
  await c.connect();
  await c.send(CONV, 'b64', { kind: 'ciphertext', media: ['m_1'], cmid: 'mine' });
  const f = fx.server.framesOf('send')[0]?.frame;
  assert.equal(f?.kind, 'ciphertext');
  assert.deepEqual(f?.media, ['m_1']);
  assert.equal(f?.cmid, 'mine');
  assert.equal('reply_to' in (f ?? {}), false, 'absent options are not sent');
});

test('without crypto.randomUUID (a browser page over plain http) cmids are still UUID v4', async () => {
  const { client: c } = client();
  await c.connect();
  Object.defineProperty(globalThis.crypto, 'randomUUID', { value: undefined, configurable: true });
  try {
    await c.send(CONV, 'a');
    await c.send(CONV, 'b');
  } finally {
    Reflect.deleteProperty(globalThis.crypto, 'randomUUID');
  }
  assert.equal(typeof globalThis.crypto.randomUUID, 'function', 'restored');
  const cmids = fx.server.framesOf('send').map((r) => String(r.frame.cmid));
  for (const cmid of cmids) assert.match(cmid, UUID_RE);
  assert.notEqual(cmids[0], cmids[1]);
});
