import type { PushBatchHandler, PushJob, PushQueue, PushQueueSubscription } from '../../ports/push-queue.js';
import type { WriterClient } from './writer-client.js';

/** Jobs handed to one handler call at most. */
export const PUSH_BATCH_SIZE = 256;
/** Batches one consumer has in flight at most, so a slow one (a provider retrying) holds no others. */
export const PUSH_BATCHES_IN_FLIGHT = 4;
/** How long the jobs of a batch whose handler rejected wait before they are handed out again. */
const RETRY_AFTER_REJECT_MS = 1_000;

/** A queued job as `push_jobs` holds it. */
export interface PushJobRow {
  id: number;
  user: string;
  device: string;
  conv: string;
  seq: number;
  sender: string;
  kind: string;
  inbox: number;
  ts: number;
}

/** Reads up to `limit` queued jobs, in queue order, of users not in `busy` (a JSON array). */
export type TakePushJobs = (busy: string, limit: number) => PushJobRow[];

function toJob(r: PushJobRow): PushJob {
  return {
    user: r.user,
    device: r.device,
    conv: r.conv,
    seq: r.seq,
    from: r.sender,
    kind: r.kind,
    inbox: r.inbox,
    ts: r.ts,
  };
}

/**
 * The embedded push queue: the `push_jobs` table. `enqueue` writes through the writer thread (one
 * row per user, device and conversation: see `enqueuePush` in writer-apply.ts); each consumer is a
 * loop in this process that reads the queued jobs in id order, up to `PUSH_BATCH_SIZE` per batch
 * and `PUSH_BATCHES_IN_FLIGHT` batches at once, and deletes a batch's rows (through the writer,
 * durably) once its handler resolved. Nothing about a hand-out is written: after a restart every
 * row left is handed out again.
 *
 * A user with a batch in flight is busy: no later job of theirs is handed out until that batch is
 * done, so a user's jobs are handled in queue order, one batch at a time, while other users' jobs
 * go on. A batch whose handler rejects keeps its rows and its users busy for
 * `RETRY_AFTER_REJECT_MS`, then is handed out again (at once to another consumer when this one
 * closes). Consumers wake when this process enqueues, and poll every `pollMs` for jobs another
 * process queued (the CLI replaying dead letters).
 */
export class SqlitePushQueue implements PushQueue {
  private readonly consumers = new Set<Consumer>();
  /** Users with a batch in flight or waiting to be retried, over all consumers of this queue. */
  readonly busy = new Set<string>();
  private waking = false;

  constructor(
    readonly take: TakePushJobs,
    readonly writer: WriterClient,
    readonly pollMs: number,
  ) {}

  async enqueue(jobs: readonly PushJob[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.writer.write({ op: 'pushEnqueue', jobs });
    this.wake();
  }

  async consume(handler: PushBatchHandler): Promise<PushQueueSubscription> {
    const consumer = new Consumer(this, handler);
    this.consumers.add(consumer);
    this.wake();
    return {
      close: async () => {
        this.consumers.delete(consumer);
        await consumer.close();
        // Jobs it gave back go to the others.
        this.wake();
      },
    };
  }

  /**
   * Lets every consumer look for jobs, soon: in a later turn of the event loop, so that wakes
   * coming together look once, and a handler that settles at once never starves the loop.
   */
  wake(): void {
    if (this.waking) return;
    this.waking = true;
    setImmediate(() => {
      this.waking = false;
      for (const c of this.consumers) c.pump();
    });
  }

  /**
   * Stops every consumer at once, without waiting for handlers (the store is closing): the rows of
   * their batches stay, for the next store opened on the file.
   */
  abandon(): void {
    for (const c of this.consumers) c.abandon();
    this.consumers.clear();
  }
}

class Consumer {
  private closed = false;
  private abandoned = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** Batches whose handler rejected, waiting to be handed out again: their timers and users. */
  private readonly retries = new Map<NodeJS.Timeout, readonly string[]>();
  private readonly poll: NodeJS.Timeout;

  constructor(
    private readonly queue: SqlitePushQueue,
    private readonly handler: PushBatchHandler,
  ) {
    this.poll = setInterval(() => this.pump(), queue.pollMs);
    this.poll.unref();
  }

  /** Hands out batches while there are jobs of users not busy and room for batches in flight. */
  pump(): void {
    while (!this.closed && this.inFlight.size < PUSH_BATCHES_IN_FLIGHT) {
      let rows: PushJobRow[];
      try {
        rows = this.queue.take(JSON.stringify([...this.queue.busy]), PUSH_BATCH_SIZE);
      } catch {
        return; // The next wake or poll tries again.
      }
      if (rows.length === 0) return;
      this.run(rows);
    }
  }

  private run(rows: readonly PushJobRow[]): void {
    const users = [...new Set(rows.map((r) => r.user))];
    for (const u of users) this.queue.busy.add(u);
    const batch = (async () => {
      let done = false;
      try {
        const jobs = rows.map(toJob);
        const idOf = new Map(jobs.map((j, i) => [j, rows[i]!.id]));
        await this.handler(jobs, (settled) => {
          // Deleted now, so a crash before the batch ends does not send them again; the
          // batch's own delete below covers them too if this one fails.
          const ids = settled.flatMap((j) => idOf.get(j) ?? []);
          if (ids.length > 0 && !this.abandoned)
            this.queue.writer.write({ op: 'pushDone', ids }).catch(() => {});
        });
        await this.queue.writer.write({ op: 'pushDone', ids: rows.map((r) => r.id) });
        done = true;
      } catch {
        // The handler rejected, or the rows could not be deleted: they stay queued.
      }
      if (this.abandoned) return;
      if (done || this.closed) this.release(users);
      else {
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          this.release(users);
          this.queue.wake();
        }, RETRY_AFTER_REJECT_MS);
        this.retries.set(timer, users);
      }
    })();
    this.inFlight.add(batch);
    void batch.finally(() => {
      this.inFlight.delete(batch);
      this.queue.wake();
    });
  }

  private release(users: readonly string[]): void {
    for (const u of users) this.queue.busy.delete(u);
  }

  /** Stops taking jobs, gives back the batches waiting for a retry, and waits for those in flight. */
  async close(): Promise<void> {
    this.stop();
    for (const users of this.retries.values()) this.release(users);
    this.retries.clear();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  abandon(): void {
    this.abandoned = true;
    this.stop();
    this.retries.clear();
  }

  private stop(): void {
    this.closed = true;
    clearInterval(this.poll);
    for (const timer of this.retries.keys()) clearTimeout(timer);
  }
}
