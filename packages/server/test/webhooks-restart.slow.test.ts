// A server killed (SIGKILL) while webhook deliveries are queued and in flight delivers each of them
// after it restarts: the embedded webhook queue is a table whose rows go only once delivered.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { mintToken } from '../src/gateway/auth.js';
import { spawnServer } from './child-server.js';
import { TEST_SECRET, TestClient, tempDir } from './helpers.js';
import { until, WEBHOOK_SECRET, WebhookReceiver } from './webhooks/receiver.js';

const dir = tempDir('parley-webhooks-restart-');
after(() => dir.remove());

test('deliveries pending at a SIGKILL are delivered after the restart, in order', {
  timeout: 90_000,
}, async () => {
  const receiver = new WebhookReceiver();
  const env = {
    PARLEY_DATA_DIR: dir.dir,
    PARLEY_JWT_SECRET: TEST_SECRET,
    PARLEY_WEBHOOK_URLS: await receiver.start(),
    PARLEY_WEBHOOK_SECRET: WEBHOOK_SECRET,
    PARLEY_WEBHOOK_EVENTS: 'message.stored',
    PARLEY_WEBHOOK_RETRY_MAX_MS: '200',
    PARLEY_WEBHOOK_RETRIES: '20',
  };
  // The endpoint is down (every attempt fails) while the messages are sent and the server dies.
  receiver.answer = (_e, res) => res.writeHead(503).end();
  let srv = await spawnServer(env);
  const conv = 'dm:wr-alice:wr-bob';
  const seqs: number[] = [];
  try {
    const alice = await TestClient.open(srv.url);
    const token = await mintToken(new TextEncoder().encode(TEST_SECRET), {
      user: 'wr-alice',
      ttlSeconds: 3600,
    });
    assert.equal((await alice.request({ type: 'connect', token, device: 'laptop' })).ok, true);
    for (let i = 0; i < 10; i++) {
      const r = await alice.request({ type: 'send', conv, cmid: `c${i}`, kind: 'text', body: `m${i}` });
      assert.equal(r.ok, true, JSON.stringify(r));
      seqs.push(r.seq);
    }
    await until('the first delivery being retried', () => receiver.attempts.length >= 2);
    srv.kill('SIGKILL');
    await srv.exited;
    alice.close();
    assert.equal(receiver.accepted.length, 0);

    // The endpoint recovers; the server restarts on the same data directory.
    receiver.answer = (_e, res) => res.end('ok');
    srv = await spawnServer(env);
    await until(
      'every event after the restart',
      () => receiver.of('message.stored', conv).length === 10,
      30_000,
    );
    assert.deepEqual(
      receiver.of('message.stored', conv).map((e) => e.data.seq),
      seqs,
    );
    assert.deepEqual(receiver.violations, []);
  } finally {
    srv.kill('SIGKILL');
    await srv.exited;
    await receiver.stop();
  }
});
