// A server killed (SIGKILL) while push jobs are queued and in flight sends each of them after it
// restarts, and does not send again what it had sent: the embedded push queue is a table whose
// rows go only once their notification is settled.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { mintToken } from '../src/gateway/auth.js';
import { spawnServer } from './child-server.js';
import { sleep, TEST_SECRET, TestClient, tempDir } from './helpers.js';
import { endpointId, localPushService } from './push/push-service.js';

const dir = tempDir('parley-push-restart-');
after(() => dir.remove());

test('jobs queued at a SIGKILL are sent after the restart; sent ones are not sent again', {
  timeout: 90_000,
}, async () => {
  const { push, env: pushEnv } = await localPushService(dir.dir, 0);
  const env = {
    ...pushEnv,
    PARLEY_DATA_DIR: dir.dir,
    PARLEY_JWT_SECRET: TEST_SECRET,
    PARLEY_PUSH_BURST_MS: '0',
  };
  const token = (user: string) =>
    mintToken(new TextEncoder().encode(TEST_SECRET), { user, ttlSeconds: 3600 });
  const connect = async (url: string, user: string, device: string) => {
    const c = await TestClient.open(url);
    const r = await c.request({ type: 'connect', token: await token(user), device });
    assert.equal(r.ok, true, JSON.stringify(r));
    return c;
  };
  const got = (endpoint: string) =>
    push.requests.filter((r) => r.id === endpointId(endpoint)).map((r) => JSON.parse(r.plaintext!).seq);
  const until = async (what: string, cond: () => boolean) => {
    const deadline = Date.now() + 30_000;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await sleep(50);
    }
  };

  let srv = await spawnServer(env);
  try {
    // 1. Sent and settled before the kill: must not come again.
    const working = push.subscribe('ok');
    const stalled = push.subscribe('hang');
    for (const [device, sub] of [
      ['phone', working],
      ['tablet', stalled],
    ] as const) {
      const c = await connect(srv.url, 'rs-bob', device);
      assert.equal(
        (await c.request({ type: 'push_register', platform: 'webpush', subscription: sub })).ok,
        true,
      );
      c.close();
      await c.closed();
    }
    const alice = await connect(srv.url, 'rs-alice', 'laptop');
    const conv = 'dm:rs-alice:rs-bob';
    const first = await alice.request({ type: 'send', conv, cmid: 'c1', kind: 'text', body: 'one' });
    await until('the first notification to the phone', () => got(working.endpoint).length === 1);
    // 2. The tablet's service hangs: its job is in flight (and queued) when the server dies.
    await until('the tablet’s request to hang', () => push.inFlight > 0);
    await sleep(300); // the phone's batch is settled (its row deleted) well within this
    srv.kill('SIGKILL');
    await srv.exited;
    alice.close();

    // 3. The service recovers; the server restarts on the same data directory.
    push.setOutcome(stalled.endpoint, 'ok');
    srv = await spawnServer(env);
    await until('the tablet’s notification after the restart', () => got(stalled.endpoint).length >= 1);
    assert.deepEqual(got(stalled.endpoint), [first.seq]);
    await sleep(1500);
    assert.deepEqual(got(working.endpoint), [first.seq], 'the phone’s notification was not sent again');
    assert.deepEqual(push.violations, []);
  } finally {
    srv.kill('SIGKILL');
    await srv.exited;
    await push.close();
  }
});
