/**
 * The conformance suite of the `PushQueue` port: every adapter runs it through its own runner and
 * must pass it. It pins down the contract written in the doc comments of `ports/push-queue.ts`:
 * every queued job is handed out, with its fields, in non-empty batches; a user's jobs in the
 * order they were queued; a batch leaves the queue when its handler resolves (and only then: a
 * batch whose handler rejected, or was still running at a crash, comes back); `close` waits for
 * the batches in flight; and merging, where an adapter merges, keeps the later job and never
 * loses a job queued while an earlier one of the same key is being handled.
 *
 * The queue is shared by the suite's tests (a cluster's queue is a topic other runs may use too),
 * so each test works on users of its own and its handler settles other users' jobs at once. Waits
 * poll with a deadline; nothing depends on an adapter's timing.
 *
 * The suite never runs on its own: an adapter's test file calls `pushQueueSuite`.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { PushJob, PushQueue, PushQueueSubscription } from '../../ports/push-queue.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface PushQueueHarness extends Closable {
  /** The queue under test; `restart` replaces it. */
  queue: PushQueue;
  /**
   * Simulates a crash and a restart of the process holding the queue: its consumers stop at once,
   * their handlers are not waited for (they may never resolve) and their batches are not settled;
   * then `queue` is a queue on the same durable state, as the restarted process opens it. Tests
   * that need it fail without it, telling the runner to skip them.
   */
  restart?: () => Promise<void>;
}

/** Options of the suite. */
export interface PushQueueSuiteOptions extends SuiteOptions {
  /** How long to wait for jobs to be handed out, in ms (default 10,000). */
  timeoutMs?: number;
}

const NOW = Date.now();

/** A job's identity in failure messages and lookups: all its fields. */
const show = (j: PushJob) => JSON.stringify([j.user, j.device, j.conv, j.seq, j.from, j.kind, j.inbox, j.ts]);

/**
 * A consumer's handler that records the jobs of the test's users, in the order they are handed
 * out, and settles other users' jobs at once. What it does with a batch holding jobs of the test's
 * users is `behaviour` (default: resolve).
 */
class Recorder {
  readonly jobs: PushJob[] = [];
  /** `show` of each job recorded. */
  private readonly seen = new Set<string>();
  /** Batches handed out empty: must stay 0. */
  empty = 0;
  behaviour: (jobs: readonly PushJob[]) => Promise<void> = async () => {};

  constructor(private readonly users: ReadonlySet<string>) {}

  readonly handler = async (batch: readonly PushJob[]): Promise<void> => {
    if (batch.length === 0) this.empty++;
    const own = batch.filter((j) => this.users.has(j.user));
    if (own.length === 0) return;
    for (const j of own) {
      this.jobs.push({ ...j });
      this.seen.add(show(j));
    }
    await this.behaviour(own);
  };

  has(job: PushJob): boolean {
    return this.seen.has(show(job));
  }

  /** The jobs recorded, as `show` strings. */
  shown(): string[] {
    return this.jobs.map(show);
  }
}

/** Lets pending callbacks and I/O of the event loop run (not a timed wait). */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Registers the `PushQueue` conformance tests for one adapter. */
export function pushQueueSuite(
  name: string,
  make: () => Promise<PushQueueHarness>,
  options: PushQueueSuiteOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const until = async (what: string, cond: () => boolean, detail = () => '') => {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what} ${detail()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  /** Waits until `r` has recorded every one of `jobs`. */
  const received = (r: Recorder, jobs: readonly PushJob[], what = `${jobs.length} jobs`) =>
    until(
      what,
      () => jobs.every((j) => r.has(j)),
      () =>
        `(missing: ${jobs
          .filter((j) => !r.has(j))
          .map(show)
          .join(' ')})`,
    );

  defineSuite({ subject: 'PushQueue', adapter: name, make, options }, ({ h, check, checkWith, id }) => {
    let n = 0;
    /** A job of `user` for a conversation of its own (so no two jobs share a key), unless `over` says. */
    const job = (user: string, over: Partial<PushJob> = {}): PushJob => {
      n++;
      return {
        user,
        device: 'phone',
        conv: `g:${id('c')}`,
        seq: n,
        from: 'alice',
        kind: 'text',
        inbox: 1_000 + n,
        ts: NOW + n,
        ...over,
      };
    };
    /** Starts a consumer recording the jobs of `users`. */
    const consume = async (users: readonly string[]): Promise<[Recorder, PushQueueSubscription]> => {
      const r = new Recorder(new Set(users));
      return [r, await h().queue.consume(r.handler)];
    };
    const withRestart = checkWith('restart', 'restart (a crash and restart of the queue)');

    check('every queued job is handed out once, with its fields, in non-empty batches', async () => {
      const [a, b, c] = [id('u'), id('u'), id('u')];
      const before = [job(a), job(b), job(a, { kind: 'image', from: 'bob' }), job(c)];
      await h().queue.enqueue(before);
      await h().queue.enqueue([]);
      const [r, sub] = await consume([a, b, c]);
      try {
        await received(r, before);
        // Jobs queued while the consumer runs, one by one and together.
        const later = [job(b), job(c, { device: 'laptop' }), job(a)];
        await h().queue.enqueue([later[0]!]);
        await h().queue.enqueue(later.slice(1));
        await received(r, later);
        // One more job of each user: once it is here, anything handed out twice would be too.
        const last = [job(a), job(b), job(c)];
        await h().queue.enqueue(last);
        await received(r, last);
        const all = [...before, ...later, ...last].map(show).sort();
        assert.deepEqual([...r.shown()].sort(), all);
        assert.equal(r.empty, 0, 'a batch was handed out empty');
      } finally {
        await sub.close();
      }
    });

    check('jobs of one user are handed out in the order they were queued, across batches', async () => {
      const users = [id('u'), id('u'), id('u')];
      const queued = new Map<string, PushJob[]>(users.map((u) => [u, []]));
      let k = 0;
      const enqueue = async (count: number) => {
        const jobs: PushJob[] = [];
        for (let i = 0; i < count; i++) {
          const u = users[k++ % users.length]!;
          const j = job(u, { device: i % 2 === 0 ? 'phone' : 'tablet' });
          jobs.push(j);
          queued.get(u)!.push(j);
        }
        await h().queue.enqueue(jobs);
      };
      // Some queued before the consumer starts, more (enough for several batches) while it runs.
      await enqueue(200);
      const [r, sub] = await consume(users);
      try {
        for (let i = 0; i < 10; i++) await enqueue(60);
        const all = [...queued.values()].flat();
        await received(r, all);
        for (const u of users) {
          assert.deepEqual(
            r.jobs.filter((j) => j.user === u).map(show),
            queued.get(u)!.map(show),
            `the jobs of ${u} came out of order`,
          );
        }
      } finally {
        await sub.close();
      }
    });

    check(
      'a batch whose handler rejects is handed out again, to the next consumer at the latest',
      async () => {
        const u = id('u');
        const jobs = [job(u), job(u), job(u, { device: 'tablet' })];
        const [first, sub1] = await consume([u]);
        first.behaviour = async () => {
          throw new Error('the provider is down');
        };
        try {
          await h().queue.enqueue(jobs);
          await received(first, jobs);
        } finally {
          await sub1.close();
        }
        const [second, sub2] = await consume([u]);
        try {
          await received(second, jobs, 'the rejected jobs to come back');
        } finally {
          await sub2.close();
        }
      },
    );

    withRestart(
      'a batch still being handled at a crash is handed out again after the restart',
      async (restart) => {
        const [u, v] = [id('u'), id('u')];
        const jobs = [job(u), job(v), job(u, { device: 'tablet' })];
        let release = () => {};
        const never = new Promise<void>((r) => {
          release = r;
        });
        const [first] = await consume([u, v]);
        first.behaviour = () => never;
        await h().queue.enqueue(jobs);
        await received(first, jobs);
        await restart();
        const [second, sub2] = await consume([u, v]);
        try {
          await received(second, jobs, 'the jobs in flight at the crash to come back');
        } finally {
          // The first consumer's handler ends at last: late, it must change nothing nor throw.
          release();
          await turns();
          await sub2.close();
        }
      },
    );

    withRestart('queued jobs survive a restart', async (restart) => {
      const [u, v] = [id('u'), id('u')];
      const jobs = [job(u), job(v), job(u), job(v, { device: 'tablet', kind: 'file' })];
      await h().queue.enqueue(jobs.slice(0, 2));
      await h().queue.enqueue(jobs.slice(2));
      await restart();
      const [r, sub] = await consume([u, v]);
      try {
        await received(r, jobs);
        for (const user of [u, v])
          assert.deepEqual(
            r.jobs.filter((j) => j.user === user).map(show),
            jobs.filter((j) => j.user === user).map(show),
          );
      } finally {
        await sub.close();
      }
    });

    check('jobs whose handler resolved are not handed out again, to this consumer or the next', async () => {
      const u = id('u');
      const jobs = [job(u), job(u), job(u, { device: 'tablet' })];
      const [first, sub1] = await consume([u]);
      try {
        await h().queue.enqueue(jobs);
        await received(first, jobs);
        // A user's jobs come in order: a job handed out twice would come before this one.
        const mark = job(u);
        await h().queue.enqueue([mark]);
        await received(first, [mark]);
        assert.deepEqual(first.shown(), [...jobs, mark].map(show));
      } finally {
        await sub1.close();
      }
      const [second, sub2] = await consume([u]);
      try {
        const mark = job(u);
        await h().queue.enqueue([mark]);
        await received(second, [mark]);
        assert.deepEqual(second.shown(), [show(mark)], 'handled jobs were handed out again');
      } finally {
        await sub2.close();
      }
      const restart = h().restart;
      if (!restart) return;
      await restart();
      const [third, sub3] = await consume([u]);
      try {
        const mark = job(u);
        await h().queue.enqueue([mark]);
        await received(third, [mark]);
        assert.deepEqual(third.shown(), [show(mark)], 'handled jobs came back after a restart');
      } finally {
        await sub3.close();
      }
    });

    check('close waits for the batches in flight, which are then done', async () => {
      const u = id('u');
      const jobs = [job(u), job(u)];
      const events: string[] = [];
      let release = () => {};
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const [first, sub1] = await consume([u]);
      first.behaviour = async () => {
        await gate;
        events.push('handled');
      };
      await h().queue.enqueue(jobs);
      await received(first, jobs);
      const closing = sub1.close().then(() => events.push('closed'));
      await turns();
      assert.deepEqual(events, [], 'close resolved while a batch was in flight');
      release();
      await closing;
      assert.deepEqual(events, ['handled', 'closed']);
      const [second, sub2] = await consume([u]);
      try {
        const mark = job(u);
        await h().queue.enqueue([mark]);
        await received(second, [mark]);
        assert.deepEqual(second.shown(), [show(mark)], 'the batch finished during close came back');
      } finally {
        await sub2.close();
      }
    });

    check('jobs of one key queued together: the later one is handed out, fields never mixed', async () => {
      const u = id('u');
      const conv = `g:${id('c')}`;
      const [k1, k2, k3] = [
        job(u, { conv }),
        job(u, { conv, kind: 'image' }),
        job(u, { conv, from: 'carol' }),
      ];
      // The later message queued first, the earlier one after it (a retried scheduler batch).
      const lconv = `g:${id('c')}`;
      const l2 = job(u, { conv: lconv, seq: 50, inbox: 9_050 });
      const l1 = job(u, { conv: lconv, seq: 40, inbox: 9_040 });
      // Same conversation on another device, and another conversation: other keys, never merged.
      const otherDevice = job(u, { conv, device: 'tablet' });
      const otherConv = job(u);
      // No consumer yet, so nothing is handed out: a merging queue may merge all of these.
      await h().queue.enqueue([k1]);
      await h().queue.enqueue([k2]);
      await h().queue.enqueue([l2, otherDevice]);
      await h().queue.enqueue([k3, l1, otherConv]);
      const [r, sub] = await consume([u]);
      try {
        const mark = job(u);
        await h().queue.enqueue([mark]);
        await received(r, [k3, l2, otherDevice, otherConv, mark]);
        const all = [k1, k2, k3, l1, l2, otherDevice, otherConv, mark].map(show);
        for (const got of r.shown()) assert.ok(all.includes(got), `a job not queued was handed out: ${got}`);
        const ofK = r.shown().filter((s) => [k1, k2, k3].map(show).includes(s));
        assert.equal(ofK.at(-1), show(k3), 'the later job of a key was not the last one handed out');
        assert.deepEqual(
          ofK,
          [k1, k2, k3].map(show).filter((s) => ofK.includes(s)),
          'the jobs of a key came out of order',
        );
      } finally {
        await sub.close();
      }
    });

    check('a job queued while a batch with the same key is in flight is handed out too', async () => {
      const u = id('u');
      const conv = `g:${id('c')}`;
      const j1 = job(u, { conv });
      const j2 = job(u, { conv });
      let release = () => {};
      const gate = new Promise<void>((r) => {
        release = r;
      });
      const [r, sub] = await consume([u]);
      r.behaviour = async (jobs) => {
        if (jobs.some((j) => show(j) === show(j1))) await gate;
      };
      try {
        await h().queue.enqueue([j1]);
        await received(r, [j1]);
        await h().queue.enqueue([j2]);
        await turns();
        release();
        await received(r, [j2], 'the job queued while its key was in flight');
        assert.deepEqual(r.shown(), [show(j1), show(j2)]);
      } finally {
        release();
        await sub.close();
      }
    });
  });
}
