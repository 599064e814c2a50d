/**
 * The conformance suite of the `DeviceQueue` port: every adapter runs it through its own runner
 * and must pass it. It pins down the contract written in the doc comments of
 * `ports/device-queue.ts`: each device's qids count 1, 2, 3, … and are never reused (not after an
 * acknowledgement, not after `remove`), `list` pages in qid order, `ack` deletes up to a qid, a
 * device with `max` messages waiting takes no more, and concurrent enqueues (through two store
 * instances over the same data, where the adapter has them) get distinct qids and lose nothing.
 *
 * What the port leaves open is not checked: how far concurrent enqueues may pass `max`, gaps in
 * the qids of concurrent enqueues, and when messages past the retention go (adapters test that).
 *
 * The suite never runs on its own: an adapter's test file calls `deviceQueueSuite`. One store is
 * shared by the suite's tests, each working on users of its own, with ids unique to the run.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { DeviceMessage, DeviceQueue } from '../../ports/device-queue.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface DeviceQueueHarness extends Closable {
  store: DeviceQueue;
  /**
   * A second store instance over the same data (another process, as far as the store can tell),
   * when the adapter can open one: the concurrency test spreads its enqueues over both.
   */
  other?: () => DeviceQueue;
}

/** Times near now, so that stores expiring messages by age (or TTL) keep them through the test. */
const NOW = Date.now();
/** A `max` no test reaches. */
const ROOMY = 1_000;

/** Registers the `DeviceQueue` conformance tests for one adapter. */
export function deviceQueueSuite(
  name: string,
  make: () => Promise<DeviceQueueHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'DeviceQueue', adapter: name, make, options }, ({ h, check, id }) => {
    const user = (label = 'u') => id(label);
    const device = (label = 'd') => id(label);
    const message = (body: string, ts = NOW): Omit<DeviceMessage, 'qid'> => ({
      from: 'alice',
      fromDevice: 'laptop',
      body,
      ts,
    });
    /** Queues messages one after the other; their qids. */
    const enqueueAll = async (u: string, d: string, bodies: string[], max = ROOMY) => {
      const qids: (number | null)[] = [];
      for (const b of bodies) qids.push(await h().store.enqueue(u, d, message(b), max));
      return qids;
    };
    const qidsOf = async (u: string, d: string, after = 0) =>
      (await h().store.list(u, d, after, ROOMY)).map((m) => m.qid);

    check('qids count from 1 per device; list returns the messages as queued', async () => {
      const u = user();
      const [a, b] = [device(), device()];
      assert.equal(
        await h().store.enqueue(u, a, { from: 'bob', fromDevice: 'phone', body: 'b64==', ts: NOW }, 10),
        1,
      );
      assert.equal(await h().store.enqueue(u, a, message('second', NOW + 1), 10), 2);
      assert.equal(await h().store.enqueue(u, b, message('other device'), 10), 1);
      assert.equal(await h().store.enqueue(user(), a, message('other user'), 10), 1);
      assert.deepEqual(await h().store.list(u, a, 0, 10), [
        { qid: 1, from: 'bob', fromDevice: 'phone', body: 'b64==', ts: NOW },
        { qid: 2, from: 'alice', fromDevice: 'laptop', body: 'second', ts: NOW + 1 },
      ]);
      assert.deepEqual(await h().store.list(u, b, 0, 10), [
        { qid: 1, from: 'alice', fromDevice: 'laptop', body: 'other device', ts: NOW },
      ]);
      assert.deepEqual(await h().store.list(u, device(), 0, 10), []);
    });

    check('list returns the messages after `after`, in qid order, at most `limit`', async () => {
      const u = user();
      const d = device();
      assert.deepEqual(await enqueueAll(u, d, ['m1', 'm2', 'm3', 'm4', 'm5']), [1, 2, 3, 4, 5]);
      assert.deepEqual(await qidsOf(u, d), [1, 2, 3, 4, 5]);
      const page = await h().store.list(u, d, 2, 2);
      assert.deepEqual(
        page.map((m) => [m.qid, m.body]),
        [
          [3, 'm3'],
          [4, 'm4'],
        ],
      );
      assert.deepEqual(await qidsOf(u, d, 4), [5]);
      assert.deepEqual(await qidsOf(u, d, 5), []);
      assert.deepEqual(
        await h()
          .store.list(u, d, 0, 1)
          .then((l) => l.map((m) => m.qid)),
        [1],
      );
    });

    check('ack deletes the messages up to `upto`, of that device only', async () => {
      const u = user();
      const [d, other] = [device(), device()];
      await enqueueAll(u, d, ['a', 'b', 'c', 'd']);
      await enqueueAll(u, other, ['x', 'y']);
      await h().store.ack(u, d, 2);
      assert.deepEqual(await qidsOf(u, d), [3, 4]);
      await h().store.ack(u, d, 1); // behind what was acknowledged: nothing changes
      assert.deepEqual(await qidsOf(u, d), [3, 4]);
      await h().store.ack(u, d, 4);
      assert.deepEqual(await qidsOf(u, d), []);
      assert.deepEqual(await qidsOf(u, other), [1, 2]);
      await h().store.ack(user(), device(), 3); // an unknown device: nothing to do
    });

    check('qids are never reused after an acknowledgement', async () => {
      const u = user();
      const d = device();
      await enqueueAll(u, d, ['a', 'b', 'c']);
      await h().store.ack(u, d, 3);
      assert.deepEqual(await enqueueAll(u, d, ['d', 'e']), [4, 5]);
      await h().store.ack(u, d, 4);
      assert.deepEqual(
        (await h().store.list(u, d, 0, 10)).map((m) => [m.qid, m.body]),
        [[5, 'e']],
      );
    });

    check('remove empties the queue, and later messages still get higher qids', async () => {
      const u = user();
      const [d, other] = [device(), device()];
      await enqueueAll(u, d, ['a', 'b']);
      await enqueueAll(u, other, ['x']);
      await h().store.remove(u, d);
      assert.deepEqual(await qidsOf(u, d), []);
      assert.deepEqual(await qidsOf(u, other), [1]);
      assert.deepEqual(await enqueueAll(u, d, ['c']), [3]);
      assert.deepEqual(
        (await h().store.list(u, d, 0, 10)).map((m) => m.body),
        ['c'],
      );
      await h().store.remove(u, d);
      await h().store.remove(u, d); // again: nothing to do
      assert.deepEqual(await enqueueAll(u, d, ['e']), [4]);
      await h().store.remove(user(), device()); // never known
    });

    check('with `max` messages waiting, enqueue answers null and stores nothing', async () => {
      const u = user();
      const [d, other] = [device(), device()];
      assert.deepEqual(await enqueueAll(u, d, ['a', 'b', 'c'], 3), [1, 2, 3]);
      assert.equal(await h().store.enqueue(u, d, message('refused'), 3), null);
      assert.equal(await h().store.enqueue(u, d, message('refused too'), 2), null);
      assert.deepEqual(
        (await h().store.list(u, d, 0, 10)).map((m) => m.body),
        ['a', 'b', 'c'],
      );
      // The bound is per device, and a larger one lets more in.
      assert.deepEqual(await enqueueAll(u, other, ['x'], 3), [1]);
      assert.equal(await h().store.enqueue(u, d, message('d'), 4), 4);
      // An acknowledgement makes room; the refused messages took no qid.
      await h().store.ack(u, d, 2);
      assert.deepEqual(await enqueueAll(u, d, ['e', 'f'], 4), [5, 6]);
      assert.equal(await h().store.enqueue(u, d, message('refused'), 4), null);
      assert.deepEqual(await qidsOf(u, d), [3, 4, 5, 6]);
      // After remove the queue is empty: room for `max` again.
      await h().store.remove(u, d);
      assert.deepEqual(await enqueueAll(u, d, ['g', 'h'], 2), [7, 8]);
      assert.equal(await h().store.enqueue(u, d, message('refused'), 2), null);
    });

    check('50 concurrent enqueues to one device get distinct qids, and none is lost', async () => {
      const u = user();
      const d = device();
      await enqueueAll(u, d, ['before']);
      const stores = [h().store, h().other?.() ?? h().store];
      const qids = await Promise.all(
        Array.from({ length: 50 }, (_, i) => stores[i % 2]!.enqueue(u, d, message(`c${i}`), ROOMY)),
      );
      assert.equal(new Set(qids).size, 50, `qids given twice: ${qids.join(',')}`);
      for (const q of qids) assert.ok(q !== null && q > 1, `qid ${q}`);
      const listed = await h().store.list(u, d, 0, ROOMY);
      assert.equal(listed.length, 51);
      const bodyOf = new Map(listed.map((m) => [m.qid, m.body]));
      for (const [i, q] of qids.entries())
        assert.equal(bodyOf.get(q!), `c${i}`, `qid ${q} does not hold its message`);
      // And the next one is above them all.
      assert.ok((await h().store.enqueue(u, d, message('after'), ROOMY))! > Math.max(...(qids as number[])));
    });
  });
}
