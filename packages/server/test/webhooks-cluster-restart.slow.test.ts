// Cluster mode on the engines: a webhooks worker (a process with only the gateway and webhooks
// roles) killed with SIGKILL while its endpoint is down and deliveries are queued. After it
// restarts, every event is delivered, in order per conversation: the deliveries wait in the Kafka
// `webhooks` topic, whose offsets commit only once a batch is delivered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterEngines, startCluster, type TestCluster } from './cluster-fixture.js';
import { until, WEBHOOK_SECRET, WebhookReceiver } from './webhooks/receiver.js';

const engines = clusterEngines();

test('a webhooks worker killed with deliveries pending delivers them after the restart', {
  skip: engines ? false : 'needs the engines (npm run engines:up)',
  timeout: 180_000,
}, async () => {
  const receiver = new WebhookReceiver();
  const url = await receiver.start();
  let cluster: TestCluster | undefined;
  try {
    receiver.answer = (_e, res) => res.writeHead(503).end();
    cluster = await startCluster(2, {
      env: {
        PARLEY_WEBHOOK_URLS: url,
        PARLEY_WEBHOOK_SECRET: WEBHOOK_SECRET,
        PARLEY_WEBHOOK_EVENTS: 'message.stored',
        PARLEY_WEBHOOK_RETRIES: '20',
        PARLEY_WEBHOOK_RETRY_MAX_MS: '200',
      },
      serverEnv: [{ PARLEY_ROLES: 'gateway,sequencer,fanout' }, { PARLEY_ROLES: 'gateway,webhooks' }],
    });
    const c = cluster;
    const alice = await c.connect(0, 'wcr-alice', 'laptop');
    const conv = 'dm:wcr-alice:wcr-bob';
    const seqs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await alice.request(
        { type: 'send', conv, cmid: `c${i}`, kind: 'text', body: `m${i}` },
        15_000,
      );
      assert.equal(r.ok, true, JSON.stringify(r));
      seqs.push(r.seq);
    }
    await until('the first delivery being retried', () => receiver.attempts.length >= 2, 60_000);
    c.servers[1]!.kill('SIGKILL');
    await c.servers[1]!.exited;
    assert.equal(receiver.accepted.length, 0);

    receiver.answer = (_e, res) => res.end('ok');
    await c.restart(1);
    await until(
      'every event after the restart',
      () => receiver.of('message.stored', conv).length === 10,
      90_000,
    );
    assert.deepEqual(
      receiver.of('message.stored', conv).map((e) => e.data.seq),
      seqs,
    );
    assert.deepEqual(receiver.violations, []);
  } finally {
    await cluster?.stop();
    await receiver.stop();
  }
});
