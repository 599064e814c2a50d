import type { JobBatchHandler, JobQueue, QueueSubscription } from '../../ports/job-queue.js';
import type { WriteOp } from './write-ops.js';
import type { WriterClient } from './writer-client.js';

/** Jobs handed to one handler call at most. */
export const JOB_BATCH_SIZE = 256;
/** Batches one consumer has in flight at most, so a slow one (a provider retrying) holds no others. */
export const JOB_BATCHES_IN_FLIGHT = 4;
/** How long the jobs of a batch whose handler rejected wait before they are handed out again. */
const RETRY_AFTER_REJECT_MS = 1_000;

/** A queued job as a queue's table holds it: its row id and ordering key. */
export interface QueuedRow<J> {
  id: number;
  key: string;
  job: J;
}

/** How one queue's table is read and written. */
export interface JobTable<J> {
  /** Reads up to `limit` queued jobs, in queue order, whose keys are not in `busy` (a JSON array). */
  take(busy: string, limit: number): QueuedRow<J>[];
  /** The write that queues jobs. */
  enqueue(jobs: readonly J[]): WriteOp;
  /** The write that deletes handed-out jobs by row id. */
  done(ids: readonly number[]): WriteOp;
}

/**
 * An embedded job queue: a table of the store (`push_jobs`, `webhook_jobs`). `enqueue` writes
 * through the writer thread; each consumer is a loop in this process that reads the queued jobs in
 * id order, up to `JOB_BATCH_SIZE` per batch and `JOB_BATCHES_IN_FLIGHT` batches at once, and
 * deletes a batch's rows (through the writer, durably) once its handler resolved. Nothing about a
 * hand-out is written: after a restart every row left is handed out again.
 *
 * A key (push: a user) with a batch in flight is busy: no later job of it is handed out until that
 * batch is done, so a key's jobs are handled in queue order, one batch at a time, while other keys'
 * jobs go on. A batch whose handler rejects keeps its rows and its keys busy for
 * `RETRY_AFTER_REJECT_MS`, then is handed out again (at once to another consumer when this one
 * closes). Consumers wake when this process enqueues, and poll every `pollMs` for jobs another
 * process queued (the CLI replaying dead letters).
 */
export class SqliteJobQueue<J> implements JobQueue<J> {
  private readonly consumers = new Set<Consumer<J>>();
  /** Keys with a batch in flight or waiting to be retried, over all consumers of this queue. */
  readonly busy = new Set<string>();
  private waking = false;

  constructor(
    readonly table: JobTable<J>,
    readonly writer: WriterClient,
    readonly pollMs: number,
  ) {}

  async enqueue(jobs: readonly J[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.writer.write(this.table.enqueue(jobs));
    this.wake();
  }

  async consume(handler: JobBatchHandler<J>): Promise<QueueSubscription> {
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

class Consumer<J> {
  private closed = false;
  private abandoned = false;
  private readonly inFlight = new Set<Promise<void>>();
  /** Batches whose handler rejected, waiting to be handed out again: their timers and keys. */
  private readonly retries = new Map<NodeJS.Timeout, readonly string[]>();
  private readonly poll: NodeJS.Timeout;

  constructor(
    private readonly queue: SqliteJobQueue<J>,
    private readonly handler: JobBatchHandler<J>,
  ) {
    this.poll = setInterval(() => this.pump(), queue.pollMs);
    this.poll.unref();
  }

  /** Hands out batches while there are jobs of keys not busy and room for batches in flight. */
  pump(): void {
    while (!this.closed && this.inFlight.size < JOB_BATCHES_IN_FLIGHT) {
      let rows: QueuedRow<J>[];
      try {
        rows = this.queue.table.take(JSON.stringify([...this.queue.busy]), JOB_BATCH_SIZE);
      } catch {
        return; // The next wake or poll tries again.
      }
      if (rows.length === 0) return;
      this.run(rows);
    }
  }

  private run(rows: readonly QueuedRow<J>[]): void {
    const keys = [...new Set(rows.map((r) => r.key))];
    for (const u of keys) this.queue.busy.add(u);
    const batch = (async () => {
      let done = false;
      try {
        const jobs = rows.map((r) => r.job);
        const idOf = new Map(rows.map((r) => [r.job, r.id]));
        await this.handler(jobs, (settled) => {
          // Deleted now, so a crash before the batch ends does not send them again; the
          // batch's own delete below covers them too if this one fails.
          const ids = settled.flatMap((j) => idOf.get(j) ?? []);
          if (ids.length > 0 && !this.abandoned)
            this.queue.writer.write(this.queue.table.done(ids)).catch(() => {});
        });
        await this.queue.writer.write(this.queue.table.done(rows.map((r) => r.id)));
        done = true;
      } catch {
        // The handler rejected, or the rows could not be deleted: they stay queued.
      }
      if (this.abandoned) return;
      if (done || this.closed) this.release(keys);
      else {
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          this.release(keys);
          this.queue.wake();
        }, RETRY_AFTER_REJECT_MS);
        this.retries.set(timer, keys);
      }
    })();
    this.inFlight.add(batch);
    void batch.finally(() => {
      this.inFlight.delete(batch);
      this.queue.wake();
    });
  }

  private release(keys: readonly string[]): void {
    for (const u of keys) this.queue.busy.delete(u);
  }

  /** Stops taking jobs, gives back the batches waiting for a retry, and waits for those in flight. */
  async close(): Promise<void> {
    this.stop();
    for (const keys of this.retries.values()) this.release(keys);
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
