// The broker probe: with no broker listening it turns unreachable within about two probe periods
// and fails waiting work at once; with the real broker (when the engines are up) it stays reachable.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { requireEngine } from '@parley/server/test/engines';
import { BrokerProbe } from './broker-probe.js';

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

const lostError = () => new Error('lost');

test('with no broker it turns unreachable, fails waiting work at once, and refuses new work', async () => {
  const probe = new BrokerProbe([`127.0.0.1:${await closedPort()}`], 'probe-test', 100);
  probe.start();
  try {
    assert.equal(probe.reachable, true, 'reachable until probes have failed');
    const t0 = Date.now();
    const never = new Promise<void>(() => {});
    await assert.rejects(
      probe.guard(() => never, lostError),
      /lost/,
    );
    const waited = Date.now() - t0;
    assert.ok(
      waited < 2_000,
      `work failed ${waited} ms after the start, not when the probe saw the brokers gone`,
    );
    assert.equal(probe.reachable, false);
    let ran = false;
    await assert.rejects(
      probe.guard(async () => {
        ran = true;
      }, lostError),
      /lost/,
    );
    assert.equal(ran, false, 'work is not started while the brokers are unreachable');
  } finally {
    await probe.stop();
  }
});

test('work that settles first is returned as it is', async () => {
  const probe = new BrokerProbe([`127.0.0.1:${await closedPort()}`], 'probe-test', 100);
  assert.equal(await probe.guard(async () => 42, lostError), 42);
  await assert.rejects(
    probe.guard(async () => {
      throw new Error('own failure');
    }, lostError),
    /own failure/,
  );
});

const brokers = requireEngine('kafka', 'BrokerProbe against a real Kafka broker');
if (brokers !== undefined) {
  test('with the real broker up it stays reachable: waiting work is not failed', async () => {
    const probe = new BrokerProbe(brokers.split(','), 'probe-test', 100);
    probe.start();
    try {
      // Work that outlasts many probe periods (probes run while work waits).
      const slow = probe.guard(
        () => new Promise<string>((r) => setTimeout(() => r('done'), 1_000)),
        lostError,
      );
      assert.equal(await slow, 'done');
      assert.equal(probe.reachable, true);
    } finally {
      await probe.stop();
    }
  });
}
