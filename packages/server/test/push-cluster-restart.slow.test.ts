// Cluster mode: a push worker (a process with only the gateway and push roles) killed with SIGKILL while a
// notification is in flight. After it restarts, the unsettled batch's jobs are sent; batches
// settled before the kill are not sent again. A batch is the unit Kafka commits, so a job sent in
// the same batch as the unsettled one may go twice (the collapse id makes the device show one).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { clusterEngines, startCluster, type TestCluster } from './cluster-fixture.js';
import { sleep, tempDir } from './helpers.js';
import { endpointId, localPushService } from './push/push-service.js';

const engines = clusterEngines();
const dir = tempDir('parley-push-cluster-');
after(() => dir.remove());

test('a push worker killed mid-send: the unsettled batch is sent after the restart, settled ones are not', {
  skip: engines ? false : 'needs the engines (npm run engines:up)',
  timeout: 180_000,
}, async () => {
  const { push, env: pushEnv } = await localPushService(dir.dir, 0);
  let cluster: TestCluster | undefined;
  try {
    cluster = await startCluster(2, {
      env: { ...pushEnv, PARLEY_PUSH_BURST_MS: '0' },
      serverEnv: [{ PARLEY_ROLES: 'gateway,sequencer,fanout' }, { PARLEY_ROLES: 'gateway,push' }],
    });
    const c = cluster;
    const seqs = (endpoint: string) =>
      push.requests
        .filter((r) => r.id === endpointId(endpoint))
        .map((r) => JSON.parse(r.plaintext!).seq as number);
    const until = async (what: string, cond: () => boolean) => {
      const deadline = Date.now() + 60_000;
      while (!cond()) {
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await sleep(100);
      }
    };
    const working = push.subscribe('ok');
    const stalled = push.subscribe('hang');
    const register = async (device: string, sub: { endpoint: string }) => {
      const d = await c.connect(0, 'pcr-bob', device);
      assert.equal(
        (await d.request({ type: 'push_register', platform: 'webpush', subscription: sub })).ok,
        true,
      );
      d.close();
      await d.closed();
    };
    const alice = await c.connect(0, 'pcr-alice', 'laptop');
    const conv = 'dm:pcr-alice:pcr-bob';
    const send = (cmid: string) =>
      alice.request({ type: 'send', conv, cmid, kind: 'text', body: cmid }, 15_000);

    // 1. Only the phone is registered: its notification is sent and its batch committed.
    await register('phone', working);
    const settled = await send('c0');
    await until('the phone’s first notification', () => seqs(working.endpoint).includes(settled.seq));
    await sleep(1_000);
    // 2. The tablet's service hangs: the next batch (phone and tablet) stays unsettled.
    await register('tablet', stalled);
    const inFlight = await send('c1');
    await until('the tablet’s request to hang', () => push.inFlight > 0);
    c.servers[1]!.kill('SIGKILL');
    await c.servers[1]!.exited;

    // 3. The service recovers; the push worker restarts and takes its partitions back.
    push.setOutcome(stalled.endpoint, 'ok');
    await c.restart(1);
    await until('the tablet’s notification after the restart', () =>
      seqs(stalled.endpoint).includes(inFlight.seq),
    );
    await sleep(2_000);
    const phone = seqs(working.endpoint);
    assert.equal(
      phone.filter((x) => x === settled.seq).length,
      1,
      `settled before the kill, sent again: ${phone}`,
    );
    const repeats = phone.filter((x) => x === inFlight.seq).length;
    assert.ok(repeats >= 1 && repeats <= 2, `the unsettled batch's phone job went ${repeats} times`);
    console.log(
      `push cluster restart: phone ${JSON.stringify(phone)}, tablet ${JSON.stringify(seqs(stalled.endpoint))}`,
    );
    assert.deepEqual(push.violations, []);
  } finally {
    await cluster?.stop();
    await push.close();
  }
});
