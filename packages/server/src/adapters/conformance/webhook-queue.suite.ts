/**
 * The conformance suite of the webhook queue (`JobQueue<WebhookDelivery>`): every adapter runs it
 * through its own runner and must pass it. It pins down the contract written in the doc comments of
 * `ports/job-queue.ts` and `ports/webhooks.ts`, with a delivery's ordering key being
 * `deliveryKey(d)` (its endpoint and key): deliveries come back as they were queued; one key's
 * deliveries in queue order, and none of a key handed out while an earlier batch holding that key
 * is unresolved; a slow key holds no key it need not (a table holds none; a log, the keys of the
 * same partition only); a batch whose handler rejected comes back, still before the key's later
 * deliveries; after a consumer closes with deliveries unsettled, the next consumer gets them (at
 * least once), and a batch whose handler resolved leaves the queue.
 *
 * The queue is shared by the suite's tests (a cluster's queue is a topic other runs may use too),
 * so each test works on endpoints of its own and its handler settles other endpoints' deliveries
 * at once. Waits poll with a deadline for a condition, never for a fixed time: where the suite
 * checks that something is *not* handed out, it waits for a later delivery of another key that
 * the adapter must hand out meanwhile.
 *
 * The suite never runs on its own: an adapter's test file calls `webhookQueueSuite`.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { JobBatchHandler, QueueSubscription } from '../../ports/job-queue.js';
import { deliveryKey, type WebhookDelivery, type WebhookQueue } from '../../ports/webhooks.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface WebhookQueueHarness extends Closable {
  /** The queue under test; `restart` replaces it. */
  queue: WebhookQueue;
  /**
   * Whether a batch of ordering key `a` being handled may hold back deliveries of ordering key `b`
   * (keys as `deliveryKey` makes them). A log answers whether they share a partition; absent, no
   * key holds another (a table's queue).
   */
  mayHold?: (a: string, b: string) => Promise<boolean>;
  /**
   * Simulates a crash and a restart of the process holding the queue: its consumers stop at once,
   * their handlers are not waited for and their batches are not settled; then `queue` is a queue on
   * the same durable state. Tests that need it fail without it, telling the runner to skip them.
   */
  restart?: () => Promise<void>;
}

/** Options of the suite. */
export interface WebhookQueueSuiteOptions extends SuiteOptions {
  /** How long to wait for deliveries to be handed out, in ms (default 10,000). */
  timeoutMs?: number;
}

const NOW = Date.now();

/** A delivery's identity in lookups and failure messages: its event's id (unique in the suite). */
const idOf = (d: WebhookDelivery) => d.event.id;

/**
 * A consumer's handler that records the deliveries to the test's endpoints, in the order they are
 * handed out, and settles other endpoints' deliveries at once. It also checks, for every batch,
 * that none of its keys is held by an earlier batch still unresolved (`overlaps` must stay empty;
 * recorders of one test may share the keys in flight, `inFlight`). What it does with a batch
 * holding deliveries of the test's endpoints is `behaviour` (default: resolve).
 */
class Recorder {
  readonly got: WebhookDelivery[] = [];
  private readonly seen = new Set<string>();
  /** Batches handed out empty: must stay 0. */
  empty = 0;
  /** Keys handed out while an unresolved batch held them: must stay empty. */
  readonly overlaps: string[] = [];
  behaviour: (own: readonly WebhookDelivery[]) => Promise<void> = async () => {};

  constructor(
    private readonly endpoints: ReadonlySet<string>,
    private readonly inFlight: Map<string, number> = new Map(),
  ) {}

  readonly handler: JobBatchHandler<WebhookDelivery> = async (batch) => {
    if (batch.length === 0) this.empty++;
    const own = batch.filter((d) => this.endpoints.has(d.endpoint));
    if (own.length === 0) return;
    const keys = [...new Set(own.map(deliveryKey))];
    for (const k of keys) if (this.inFlight.has(k)) this.overlaps.push(k);
    for (const k of keys) this.inFlight.set(k, (this.inFlight.get(k) ?? 0) + 1);
    for (const d of own) {
      this.got.push(structuredClone(d));
      this.seen.add(idOf(d));
    }
    try {
      await this.behaviour(own);
    } finally {
      for (const k of keys) {
        const n = this.inFlight.get(k)! - 1;
        if (n === 0) this.inFlight.delete(k);
        else this.inFlight.set(k, n);
      }
    }
  };

  has(d: WebhookDelivery): boolean {
    return this.seen.has(idOf(d));
  }

  /** The event ids recorded of the ordering key of `like` (`deliveryKey`), in the order handed out. */
  ofKey(like: WebhookDelivery): string[] {
    const key = deliveryKey(like);
    return this.got.filter((d) => deliveryKey(d) === key).map(idOf);
  }

  /** The event ids recorded. */
  ids(): string[] {
    return this.got.map(idOf);
  }
}

/** A gate a handler waits on: `open` resolves it, `fail` rejects it. */
function gate(): { wait: Promise<void>; open: () => void; fail: (err: Error) => void } {
  let open = () => {};
  let fail: (err: Error) => void = () => {};
  const wait = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  // Nobody may be waiting when it fails.
  wait.catch(() => {});
  return { wait, open, fail };
}

/** Registers the webhook queue's conformance tests for one adapter. */
export function webhookQueueSuite(
  name: string,
  make: () => Promise<WebhookQueueHarness>,
  options: WebhookQueueSuiteOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const until = async (what: string, cond: () => boolean, detail = () => '') => {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what} ${detail()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  /** Waits until `r` has recorded every one of `deliveries`. */
  const received = (
    r: Recorder,
    deliveries: readonly WebhookDelivery[],
    what = `${deliveries.length} deliveries`,
  ) =>
    until(
      what,
      () => deliveries.every((d) => r.has(d)),
      () =>
        `(missing: ${deliveries
          .filter((d) => !r.has(d))
          .map(idOf)
          .join(' ')})`,
    );

  defineSuite({ subject: 'WebhookQueue', adapter: name, make, options }, ({ h, check, checkWith, id }) => {
    let n = 0;
    /** An endpoint of this test's own. */
    const endpoint = () => `https://hooks.example.com/${id('e')}`;
    /** A delivery to `url`, ordered by `key` (a conversation of its own unless given). */
    const delivery = (
      url: string,
      key = `g:${id('c')}`,
      data: Record<string, unknown> = {},
    ): WebhookDelivery => {
      n++;
      return {
        endpoint: url,
        key,
        event: {
          id: `message.stored:${key}:${id('ev')}`,
          type: 'message.stored',
          ts: NOW + n,
          data: { conv: key, seq: n, from: 'alice', kind: 'text', ...data },
        },
      };
    };
    /** Starts a consumer recording the deliveries to `endpoints`. */
    const consume = async (
      endpoints: readonly string[],
      inFlight?: Map<string, number>,
    ): Promise<[Recorder, QueueSubscription]> => {
      const r = new Recorder(new Set(endpoints), inFlight);
      return [r, await h().queue.consume(r.handler)];
    };
    /**
     * A delivery to `url` whose ordering key no batch of `held` can hold back (the adapter's
     * `mayHold`), to show that the queue goes on while `held` is being handled.
     */
    const elsewhere = async (url: string, held: WebhookDelivery): Promise<WebhookDelivery> => {
      for (let tries = 0; tries < 1_000; tries++) {
        const d = delivery(url);
        if (!(await h().mayHold?.(deliveryKey(held), deliveryKey(d)))) return d;
      }
      throw new Error('found no ordering key that the held one does not hold');
    };
    const clean = (r: Recorder) => {
      assert.deepEqual(
        r.overlaps,
        [],
        'a key was handed out while an earlier batch holding it was unresolved',
      );
      assert.equal(r.empty, 0, 'a batch was handed out empty');
    };
    const withRestart = checkWith('restart', 'restart (a crash and restart of the queue)');

    check('deliveries are handed out as they were queued, field for field', async () => {
      const [e1, e2] = [endpoint(), endpoint()];
      const conv = `g:${id('c')}`;
      const queued = [
        delivery(e1, conv, { body: 'héllo 👋 "quoted" \\ \n', media: ['m_1', 'm_2'] }),
        delivery(e2, conv, { reply_to: 3, nested: { a: [1, 'x', null, { b: false }], c: 1.5 } }),
        {
          endpoint: e1,
          key: id('u'),
          event: { id: id('user.online:'), type: 'user.online' as const, ts: NOW, data: { user: 'ann' } },
        },
        {
          endpoint: e2,
          key: conv,
          event: {
            id: `group.changed:${conv}:7`,
            type: 'group.changed' as const,
            ts: NOW + 7,
            data: { conv, seq: 7, actor: 'ann', change: { event: 'members_added', users: ['bob'] } },
          },
        },
      ];
      await h().queue.enqueue([]);
      await h().queue.enqueue(queued.slice(0, 1));
      await h().queue.enqueue(queued.slice(1));
      const [r, sub] = await consume([e1, e2]);
      try {
        await received(r, queued);
        // One more per key: once it is here, anything handed out twice would be too.
        const marks = [delivery(e1, conv), delivery(e2, conv), delivery(e1, queued[2]!.key)];
        await h().queue.enqueue(marks);
        await received(r, marks);
        const byId = new Map([...queued, ...marks].map((d) => [idOf(d), d]));
        assert.equal(r.got.length, byId.size, `handed out: ${r.ids().join(' ')}`);
        for (const got of r.got) assert.deepEqual(got, byId.get(idOf(got)));
        clean(r);
      } finally {
        await sub.close();
      }
    });

    check("one key's deliveries are handed out in the order they were queued, across batches", async () => {
      const [e1, e2] = [endpoint(), endpoint()];
      const convs = [`g:${id('c')}`, `g:${id('c')}`, `dm:${id('u')}:${id('u')}`];
      // The same conversation at two endpoints is two keys; each is ordered on its own.
      const keys = [e1, e2].flatMap((e) => convs.map((c) => ({ e, c })));
      const queued = new Map<string, string[]>();
      let k = 0;
      const enqueue = async (count: number) => {
        const batch: WebhookDelivery[] = [];
        for (let i = 0; i < count; i++) {
          const { e, c } = keys[k++ % keys.length]!;
          const d = delivery(e, c);
          batch.push(d);
          const list = queued.get(deliveryKey(d)) ?? [];
          list.push(idOf(d));
          queued.set(deliveryKey(d), list);
        }
        await h().queue.enqueue(batch);
      };
      // Some queued before the consumer starts, more (enough for several batches) while it runs.
      await enqueue(300);
      const [r, sub] = await consume([e1, e2]);
      try {
        for (let i = 0; i < 10; i++) await enqueue(50);
        await until(
          'every delivery',
          () => [...queued.values()].flat().every((i) => r.ids().includes(i)),
          () => `(${r.got.length} of ${[...queued.values()].flat().length})`,
        );
        for (const [key, ids] of queued)
          assert.deepEqual(
            r.got.filter((d) => deliveryKey(d) === key).map(idOf),
            ids,
            `the deliveries of ${key} came out of order`,
          );
        clean(r);
      } finally {
        await sub.close();
      }
    });

    check(
      'no delivery of a key is handed out while an earlier batch holding that key is unresolved',
      async () => {
        const e = endpoint();
        const first = delivery(e);
        const held = gate();
        const [r, sub] = await consume([e]);
        r.behaviour = async (own) => {
          if (own.some((d) => idOf(d) === idOf(first))) await held.wait;
        };
        try {
          await h().queue.enqueue([first]);
          await received(r, [first]);
          const later = [delivery(e, first.key), delivery(e, first.key)];
          await h().queue.enqueue(later);
          // Queued after them: once it is handed out, they could have been too.
          const mark = await elsewhere(e, first);
          await h().queue.enqueue([mark]);
          await received(r, [mark], 'a delivery of another key, queued after');
          assert.deepEqual(r.ofKey(first), [idOf(first)], 'handed out while its key was held');
          held.open();
          await received(r, later, 'the held key, once released');
          assert.deepEqual(r.ofKey(first), [first, ...later].map(idOf));
          clean(r);
        } finally {
          held.open();
          await sub.close();
        }
      },
    );

    check('a slow key holds back no other key it need not', async () => {
      const [slowEndpoint, other] = [endpoint(), endpoint()];
      const slow = delivery(slowEndpoint);
      const held = gate();
      const [r, sub] = await consume([slowEndpoint, other]);
      r.behaviour = async (own) => {
        if (own.some((d) => deliveryKey(d) === deliveryKey(slow))) await held.wait;
      };
      try {
        await h().queue.enqueue([slow]);
        await received(r, [slow]);
        // Other keys: the same conversation at another endpoint, another conversation at the slow
        // endpoint, and ones of their own (all on keys the slow one need not hold).
        const candidates = [
          delivery(other, slow.key),
          delivery(slowEndpoint),
          delivery(other),
          await elsewhere(other, slow),
          await elsewhere(slowEndpoint, slow),
        ];
        const free: WebhookDelivery[] = [];
        for (const d of candidates)
          if (!(await h().mayHold?.(deliveryKey(slow), deliveryKey(d)))) free.push(d);
        const next = delivery(slowEndpoint, slow.key);
        await h().queue.enqueue([candidates[0]!, next]);
        await h().queue.enqueue(candidates.slice(1));
        await received(r, free, 'the other keys, while the slow one is held');
        assert.ok(!r.has(next), "the slow key's next delivery was handed out while its batch was held");
        held.open();
        await received(r, [...candidates, next]);
        assert.deepEqual(r.ofKey(slow), [slow, next].map(idOf));
        clean(r);
      } finally {
        held.open();
        await sub.close();
      }
    });

    check(
      "a batch whose handler rejects is handed out again, before the key's later deliveries",
      async () => {
        const e = endpoint();
        const key = `g:${id('c')}`;
        const rejected = [delivery(e, key), delivery(e, key), delivery(e)];
        const inFlight = new Map<string, number>();
        const [first, sub1] = await consume([e], inFlight);
        first.behaviour = async () => {
          throw new Error('the endpoint is down');
        };
        const later = delivery(e, key);
        try {
          await h().queue.enqueue(rejected);
          await received(first, rejected);
          await h().queue.enqueue([later]);
        } finally {
          await sub1.close();
        }
        const [second, sub2] = await consume([e], inFlight);
        try {
          await received(second, [...rejected, later], 'the rejected deliveries to come back');
          // At least once: what the first consumer was handed again may come again, but in order.
          for (const r of [first, second]) {
            const ofKey = r.ofKey(later);
            const firstLater = ofKey.indexOf(idOf(later));
            if (firstLater >= 0)
              assert.ok(
                ofKey.slice(0, firstLater).lastIndexOf(idOf(rejected[1]!)) >
                  ofKey.slice(0, firstLater).lastIndexOf(idOf(rejected[0]!)),
                `a later delivery overtook the rejected ones: ${ofKey.join(' ')}`,
              );
          }
          const secondOfKey = second.ofKey(later);
          assert.deepEqual(
            secondOfKey.slice(secondOfKey.indexOf(idOf(rejected[0]!))),
            [...rejected.slice(0, 2), later].map(idOf),
            'the rejected deliveries did not come back in order, before the later one',
          );
          clean(first);
          clean(second);
        } finally {
          await sub2.close();
        }
      },
    );

    check('after a consumer closes with deliveries unsettled, the next consumer gets them', async () => {
      const e = endpoint();
      const key = `g:${id('c')}`;
      const held = [delivery(e, key), delivery(e)];
      const waiting = delivery(e, key);
      const inFlight = new Map<string, number>();
      const stop = gate();
      const [first, sub1] = await consume([e], inFlight);
      // As the dispatcher does when it stops: the batch being handled gives up (rejects) once the
      // consumer is closing, leaving its deliveries queued.
      first.behaviour = () => stop.wait;
      await h().queue.enqueue(held);
      // The held key's batch is in hand. The other delivery may be too, or not yet: over Kafka a
      // held batch keeps its broker's other partitions from being fetched (the known limit above).
      // Handed out unsettled or never handed out, the next consumer must get it.
      await received(first, [held[0]!]);
      // Queued while its key is held: not handed out before the close.
      await h().queue.enqueue([waiting]);
      const closing = sub1.close();
      stop.fail(new Error('the dispatcher is stopping'));
      await closing;
      const [second, sub2] = await consume([e], inFlight);
      try {
        await received(second, [...held, waiting], 'the unsettled deliveries to come back');
        const ofKey = second.ofKey(waiting);
        assert.deepEqual(ofKey.slice(ofKey.indexOf(idOf(held[0]!))), [held[0]!, waiting].map(idOf));
        clean(first);
        clean(second);
      } finally {
        await sub2.close();
      }
    });

    check(
      'deliveries whose batch resolved are not handed out again, to this consumer or the next',
      async () => {
        const e = endpoint();
        const key = `g:${id('c')}`;
        const done = [delivery(e, key), delivery(e, key), delivery(e)];
        const [first, sub1] = await consume([e]);
        try {
          await h().queue.enqueue(done);
          await received(first, done);
          // A key's deliveries come in order: one handed out twice would come before this one.
          const mark = delivery(e, key);
          await h().queue.enqueue([mark]);
          await received(first, [mark]);
          assert.deepEqual(first.ofKey(mark), [done[0]!, done[1]!, mark].map(idOf));
          assert.equal(first.got.length, 4, `handed out: ${first.ids().join(' ')}`);
        } finally {
          await sub1.close();
        }
        const [second, sub2] = await consume([e]);
        try {
          const mark = delivery(e, key);
          await h().queue.enqueue([mark]);
          await received(second, [mark]);
          assert.deepEqual(second.ids(), [idOf(mark)], 'handled deliveries were handed out again');
        } finally {
          await sub2.close();
        }
      },
    );

    withRestart(
      'a batch still being handled at a crash is handed out again after the restart',
      async (restart) => {
        const e = endpoint();
        const key = `g:${id('c')}`;
        const held = [delivery(e, key), delivery(e)];
        const waiting = delivery(e, key);
        const never = gate();
        const [first] = await consume([e]);
        first.behaviour = () => never.wait;
        await h().queue.enqueue(held);
        await received(first, held);
        await h().queue.enqueue([waiting]);
        await restart();
        const [second, sub2] = await consume([e]);
        try {
          await received(second, [...held, waiting], 'the deliveries in flight at the crash to come back');
          assert.deepEqual(second.ofKey(waiting), [held[0]!, waiting].map(idOf));
        } finally {
          // The first consumer's handler ends at last: late, it must change nothing nor throw.
          never.open();
          await sub2.close();
        }
      },
    );
  });
}
