// Dependency loss in cluster mode: Kafka, then Cassandra, stops. Sends fail promptly with
// `unavailable` (none is acknowledged without being durable), the processes keep serving what does
// not need the lost engine, and once it is back, sends succeed again without restarting Parley.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { clusterEngines, startCluster, type TestCluster } from './cluster-fixture.js';
import { requireEngine } from './engines.js';
import type { Frame } from './helpers.js';

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
    await run('bash', [`${ENGINES}up.sh`, 'kafka', 'cassandra']).catch(() => {});
    await cluster.stop();
  });

  /** Sends `cmid` until it is acknowledged, for at most `ms`; returns how long that took. */
  async function sendUntilAcknowledged(send: (cmid: string) => Promise<Frame>, cmid: string, ms: number) {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      const r = await send(cmid).catch(() => ({ ok: false }) as Frame);
      if (r.ok) return Date.now() - t0;
      await new Promise((res) => setTimeout(res, 500));
    }
    assert.fail(`${cmid} not acknowledged within ${ms} ms`);
  }

  /**
   * Stops `engine`, then sends: the send must fail with `unavailable` because the engine is
   * away (`reason`), not because the gateway's 5 s wait for an answer ran out.
   */
  async function stopThenSend(engine: string, send: (cmid: string) => Promise<Frame>, reason: RegExp) {
    await run('bash', [`${ENGINES}down.sh`, engine]);
    const t0 = Date.now();
    const during = await send('during');
    const failedAfterMs = Date.now() - t0;
    assert.equal(during.ok, false, JSON.stringify(during));
    assert.equal(during.error.code, 'unavailable');
    assert.match(during.error.message, reason);
    assert.ok(failedAfterMs < 5_000, `unavailable before the reply wait ran out (${failedAfterMs} ms)`);
    return { message: during.error.message as string, failedAfterMs };
  }

  test('with Kafka stopped sends fail with unavailable; with Kafka back they succeed, no restart', {
    timeout: 240_000,
  }, async () => {
    const a = await cluster.connect(0, `dep-a-${cluster.id}`);
    const b = await cluster.connect(1, `dep-b-${cluster.id}`);
    const conv = `dm:${[`dep-a-${cluster.id}`, `dep-b-${cluster.id}`].sort().join(':')}`;
    const send = (cmid: string) => a.request({ type: 'send', conv, cmid, kind: 'text', body: cmid }, 30_000);
    assert.equal((await send('before')).ok, true);

    const during = await stopThenSend('kafka', send, /the log is unavailable/);
    // What does not need Kafka still works: history from Cassandra.
    const history = await b.request({ type: 'history', conv, limit: 10 }, 15_000);
    assert.deepEqual(
      history.messages.map((m: { body: string }) => m.body),
      ['before'],
    );

    await run('bash', [`${ENGINES}up.sh`, 'kafka']);
    const resumedAfterMs = await sendUntilAcknowledged(send, 'during', 90_000);
    const m = await b.nextEvent((f) => f.type === 'message' && f.body === 'during', 30_000);
    assert.equal(m.seq, 2, 'the retried send was stored once, after the first');
    console.log(
      `# kafka down: a send failed with unavailable after ${during.failedAfterMs} ms (${during.message}); after kafka was back, sends resumed within ${resumedAfterMs} ms`,
    );
  });

  test('with Cassandra stopped sends and reads fail with unavailable; with it back they succeed, no restart', {
    timeout: 240_000,
  }, async () => {
    const [ua, ub] = [`cdep-a-${cluster.id}`, `cdep-b-${cluster.id}`];
    const a = await cluster.connect(0, ua);
    const b = await cluster.connect(1, ub);
    const conv = `dm:${[ua, ub].sort().join(':')}`;
    const send = (cmid: string) => a.request({ type: 'send', conv, cmid, kind: 'text', body: cmid }, 30_000);
    assert.equal((await send('before')).ok, true);
    await b.nextEvent((f) => f.type === 'message' && f.body === 'before', 15_000);
    assert.equal((await a.request({ type: 'typing', conv, state: 'start' })).ok, true);
    await b.nextEvent((f) => f.type === 'typing' && f.user === ua && f.state === 'start', 10_000);

    const during = await stopThenSend('cassandra', send, /store unavailable/);
    const history = await b.request({ type: 'history', conv, limit: 10 }, 15_000);
    assert.equal(history.ok, false, JSON.stringify(history));
    assert.equal(
      history.error.code,
      'unavailable',
      'a read says the store is unavailable, not an internal error',
    );
    // What needs only Redis and cached state still works: typing (the blocks it checks are cached).
    assert.equal((await a.request({ type: 'typing', conv, state: 'stop' })).ok, true);
    await b.nextEvent((f) => f.type === 'typing' && f.user === ua && f.state === 'stop', 10_000);

    await run('bash', [`${ENGINES}up.sh`, 'cassandra']);
    const resumedAfterMs = await sendUntilAcknowledged(send, 'during', 120_000);
    const m = await b.nextEvent((f) => f.type === 'message' && f.body === 'during', 30_000);
    assert.equal(m.seq, 2, 'the retried send was stored once, after the first');
    console.log(
      `# cassandra down: a send failed with unavailable after ${during.failedAfterMs} ms (${during.message}); after cassandra was ready again, sends resumed within ${resumedAfterMs} ms`,
    );
  });
}
