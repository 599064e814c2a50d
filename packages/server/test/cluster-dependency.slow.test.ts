// Dependency loss in cluster mode: Kafka stops under load. Sends fail with `unavailable` (none is
// acknowledged without being durable), the processes keep serving what does not need Kafka, and
// once Kafka is back, sends succeed again without restarting Parley.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { clusterEngines, startCluster, type TestCluster } from './cluster-fixture.js';
import { requireEngine } from './engines.js';

const run = promisify(execFile);
const ENGINES = fileURLToPath(new URL('../../../engines/', import.meta.url));
const ready =
  clusterEngines() !== undefined ||
  (requireEngine('cassandra', 'cluster dependency loss on the real engines (Cassandra, Kafka, Redis)') &&
    false);

if (ready) {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster(2);
  });
  after(async () => {
    await run('bash', [`${ENGINES}up.sh`, 'kafka']).catch(() => {});
    await cluster.stop();
  });

  test('with Kafka stopped sends fail with unavailable; with Kafka back they succeed, no restart', {
    timeout: 240_000,
  }, async () => {
    const a = await cluster.connect(0, `dep-a-${cluster.id}`);
    const b = await cluster.connect(1, `dep-b-${cluster.id}`);
    const conv = `dm:${[`dep-a-${cluster.id}`, `dep-b-${cluster.id}`].sort().join(':')}`;
    const send = (cmid: string) => a.request({ type: 'send', conv, cmid, kind: 'text', body: cmid }, 30_000);
    assert.equal((await send('before')).ok, true);

    await run('bash', [`${ENGINES}down.sh`, 'kafka']);
    const t0 = Date.now();
    const during = await send('during');
    const failedAfterMs = Date.now() - t0;
    assert.equal(during.ok, false, JSON.stringify(during));
    assert.equal(during.error.code, 'unavailable');
    // What does not need Kafka still works: history from Cassandra.
    const history = await b.request({ type: 'history', conv, limit: 10 }, 15_000);
    assert.deepEqual(
      history.messages.map((m: { body: string }) => m.body),
      ['before'],
    );

    await run('bash', [`${ENGINES}up.sh`, 'kafka']);
    const restarted = Date.now();
    let after: { ok?: boolean } = { ok: false };
    while (Date.now() - restarted < 90_000) {
      after = await send('during').catch(() => ({ ok: false as const }));
      if (after.ok) break;
      await new Promise((r) => setTimeout(r, 1_000));
    }
    assert.equal(after.ok, true, 'sends succeed again once Kafka is back');
    const resumedAfterMs = Date.now() - restarted;
    const m = await b.nextEvent((f) => f.type === 'message' && f.body === 'during', 30_000);
    assert.equal(m.seq, 2, 'the retried send was stored once, after the first');
    console.log(
      `# kafka down: a send failed with unavailable after ${failedAfterMs} ms (${during.error.message}); after kafka was back, sends resumed within ${resumedAfterMs} ms`,
    );
  });
}
