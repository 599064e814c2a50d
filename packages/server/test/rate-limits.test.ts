// Per-user send limits: a user past the burst gets `rate_limited` with `retry_after_ms` and nothing
// is stored for those sends; other users are unaffected; tokens come back at the rate. The limit
// is per user, over all of the user's devices.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sleep, startServer, type TestServer } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer({ sendBurst: 3, sendRatePerSecond: 5 });
});
after(() => s.stop());

const send = (c: Awaited<ReturnType<TestServer['client']>>, conv: string, cmid: string) =>
  c.request({ type: 'send', conv, cmid, kind: 'text', body: cmid });

test('past the burst, sends fail with rate_limited and retry_after_ms, and are not stored', async () => {
  const phone = await s.client('rl-a', 'phone');
  const laptop = await s.client('rl-a', 'laptop');
  const other = await s.client('rl-b');
  const conv = 'dm:rl-a:rl-b';
  const cmids = ['p1', 'l1', 'p2', 'l2'];
  const replies = await Promise.all(cmids.map((cmid, i) => send(i % 2 === 0 ? phone : laptop, conv, cmid)));
  const ok = replies.filter((r) => r.ok);
  const limited = replies.filter((r) => !r.ok);
  assert.equal(ok.length, 3, 'the burst is per user, over both devices');
  assert.equal(limited.length, 1);
  assert.equal(limited[0]!.error.code, 'rate_limited');
  assert.ok(
    limited[0]!.error.retry_after_ms > 0 && limited[0]!.error.retry_after_ms <= 200,
    JSON.stringify(limited[0]),
  );
  // The other user has a bucket of their own.
  assert.equal((await send(other, conv, 'b1')).ok, true);
  const history = await other.request({ type: 'history', conv, limit: 50 });
  assert.deepEqual(
    history.messages.map((m: { body: string }) => m.body).sort(),
    [...cmids.filter((_, i) => replies[i]!.ok), 'b1'].sort(),
  );
  // Retrying after the advised wait succeeds.
  await sleep(limited[0]!.error.retry_after_ms + 20);
  const again = await send(phone, conv, 'retry');
  assert.equal(again.ok, true, JSON.stringify(again));
});

test('group changes draw from the same bucket', async () => {
  const c = await s.client('rl-g');
  const results = [];
  for (let i = 0; i < 4; i++)
    results.push(await c.request({ type: 'create_group', name: `g${i}`, members: [] }));
  assert.deepEqual(
    results.map((r) => r.ok || r.error.code),
    [true, true, true, 'rate_limited'],
  );
});
