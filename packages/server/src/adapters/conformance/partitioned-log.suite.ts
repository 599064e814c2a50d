/**
 * The conformance suite of the `PartitionedLog` port (Kafka and the in-process log both pass it):
 * per-key order, stable key → partition mapping, one owner per partition within a group, handled
 * records never redelivered to the next owner, unhandled ones redelivered, and every record
 * delivered at least once across an ownership change.
 * @module
 */
import assert from 'node:assert/strict';
import type { ConsumedRecord, PartitionedLog, PartitionHandler } from '../../ports/partitioned-log.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface PartitionedLogHarness extends Closable {
  log: PartitionedLog;
  /** Creates a fresh topic with `partitions` partitions; returns its name. */
  topic(partitions: number): Promise<string>;
}

/** Options of the suite. */
export interface PartitionedLogSuiteOptions extends SuiteOptions {
  /** How long to wait for deliveries and rebalances, in ms (default 30,000: a real group rebalances slowly). */
  timeoutMs?: number;
}

/** A handler that records what it is given; `hold` makes onRecords wait (records stay unhandled). */
class Recorder implements PartitionHandler {
  readonly records: ConsumedRecord[] = [];
  readonly owned = new Set<number>();
  readonly history: string[] = [];
  /** Records handed over for a partition this member did not own at that moment: must stay empty. */
  readonly unowned: ConsumedRecord[] = [];
  hold: Promise<void> | null = null;

  async onAssigned(partitions: readonly number[]): Promise<void> {
    for (const p of partitions) this.owned.add(p);
    this.history.push(`+${[...partitions].sort().join(',')}`);
  }

  async onRevoked(partitions: readonly number[]): Promise<void> {
    for (const p of partitions) this.owned.delete(p);
    this.history.push(`-${[...partitions].sort().join(',')}`);
  }

  async onRecords(partition: number, records: readonly ConsumedRecord[]): Promise<void> {
    if (!this.owned.has(partition)) this.unowned.push(...records);
    if (this.hold) await this.hold;
    this.records.push(...records);
  }

  values(): string[] {
    return this.records.map((r) => r.value.toString());
  }
}

const message = (key: string, value: string) => ({ key, value: Buffer.from(value) });

/** Registers the `PartitionedLog` conformance tests for one adapter. */
export function partitionedLogSuite(
  name: string,
  make: () => Promise<PartitionedLogHarness>,
  options: PartitionedLogSuiteOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const until = async (what: string, cond: () => boolean, detail = () => '') => {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what} ${detail()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  defineSuite({ subject: 'PartitionedLog', adapter: name, make, options }, ({ h, check, id }) => {
    check('records of one key arrive in publish order, with their key and value', async () => {
      const topic = await h().topic(3);
      const r = new Recorder();
      const sub = await h().log.consume(topic, id('g'), r);
      try {
        const keys = ['alice', 'bob', 'carol'];
        for (let i = 0; i < 30; i++)
          await h().log.publish(topic, [message(keys[i % 3]!, `${keys[i % 3]}-${i}`)]);
        await until('30 records', () => r.records.length >= 30);
        for (const k of keys) {
          const mine = r.records.filter((x) => x.key === k).map((x) => x.value.toString());
          assert.deepEqual(
            mine,
            Array.from({ length: 30 }, (_, i) => i)
              .filter((i) => keys[i % 3] === k)
              .map((i) => `${k}-${i}`),
          );
          const partitions = new Set(r.records.filter((x) => x.key === k).map((x) => x.partition));
          assert.deepEqual([...partitions], [await h().log.partitionOf(topic, k)]);
        }
        const offsets = r.records.filter((x) => x.partition === r.records[0]!.partition).map((x) => x.offset);
        assert.deepEqual(
          offsets,
          [...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
        );
      } finally {
        await sub.close();
      }
    });

    check('a key maps to the same partition in every instance', async () => {
      const topic = await h().topic(8);
      const first = await Promise.all(
        ['a', 'b', 'c', 'dm:x:y', 'g:1'].map((k) => h().log.partitionOf(topic, k)),
      );
      const again = await Promise.all(
        ['a', 'b', 'c', 'dm:x:y', 'g:1'].map((k) => h().log.partitionOf(topic, k)),
      );
      assert.deepEqual(first, again);
      for (const p of first) assert.ok(p >= 0 && p < 8);
    });

    check('two members of a group own disjoint partitions that cover the topic', async () => {
      const topic = await h().topic(4);
      const group = id('g');
      const a = new Recorder();
      const b = new Recorder();
      const subA = await h().log.consume(topic, group, a);
      const subB = await h().log.consume(topic, group, b);
      try {
        const histories = () => `a: ${a.history.join(' ')}; b: ${b.history.join(' ')}`;
        await until(
          'both members to own partitions',
          () => a.owned.size > 0 && b.owned.size > 0 && a.owned.size + b.owned.size === 4,
          histories,
        );
        for (const p of a.owned) assert.ok(!b.owned.has(p), `partition ${p} owned twice (${histories()})`);
        for (let i = 0; i < 40; i++) await h().log.publish(topic, [message(`k${i}`, `v${i}`)]);
        await until('40 records', () => a.records.length + b.records.length >= 40, histories);
        // Ownership is judged when each record is handed over: the group may rebalance again
        // later (a member's session can lapse on a loaded machine), which is no fault.
        assert.deepEqual(a.unowned, [], `a got records of partitions it did not own (${histories()})`);
        assert.deepEqual(b.unowned, [], `b got records of partitions it did not own (${histories()})`);
      } finally {
        await subA.close();
        await subB.close();
      }
    });

    check(
      'when a member leaves, the other takes its partitions and resumes after the handled records',
      async () => {
        const topic = await h().topic(2);
        const group = id('g');
        const a = new Recorder();
        const subA = await h().log.consume(topic, group, a);
        for (let i = 0; i < 10; i++) await h().log.publish(topic, [message(`k${i % 4}`, `first-${i}`)]);
        await until('the first 10 records', () => a.records.length >= 10);
        await subA.close();
        for (let i = 0; i < 10; i++) await h().log.publish(topic, [message(`k${i % 4}`, `second-${i}`)]);
        const b = new Recorder();
        const subB = await h().log.consume(topic, group, b);
        try {
          await until(
            'the second 10 records',
            () => b.values().filter((v) => v.startsWith('second')).length >= 10,
          );
          assert.deepEqual(
            b.values().filter((v) => v.startsWith('first')),
            [],
            'handled records were delivered again',
          );
        } finally {
          await subB.close();
        }
      },
    );

    check(
      'records in flight while a member leaves are all delivered, to it or to the next owner',
      async () => {
        const topic = await h().topic(1);
        const group = id('g');
        const a = new Recorder();
        let release = () => {};
        a.hold = new Promise((r) => {
          release = r;
        });
        const subA = await h().log.consume(topic, group, a);
        await until('ownership', () => a.owned.size === 1);
        await h().log.publish(topic, [message('k', 'pending-1'), message('k', 'pending-2')]);
        await new Promise((r) => setTimeout(r, 300));
        const closing = subA.close();
        release();
        await closing;
        const b = new Recorder();
        const subB = await h().log.consume(topic, group, b);
        try {
          await h().log.publish(topic, [message('k', 'after')]);
          await until('the record after', () => b.values().includes('after'));
          const seen = [...a.values(), ...b.values()];
          for (const v of ['pending-1', 'pending-2', 'after'])
            assert.ok(seen.includes(v), `${v} was never delivered`);
          assert.deepEqual(b.values().slice(-1), ['after']);
        } finally {
          await subB.close();
        }
      },
    );
  });
}
