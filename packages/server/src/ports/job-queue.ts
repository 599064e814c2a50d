/**
 * A durable queue of jobs handed out at least once, in order per key: the shape the push queue and
 * the webhook queue share. Embedded: a table in the store. Cluster: a topic of the partitioned log
 * (Kafka), keyed so one key's jobs share a partition.
 * @module
 */

/**
 * What a handler calls for jobs of its batch settled before the whole batch is: a queue that can
 * drop them at once does (a table), so a crash does not hand them out again; a log, which can only
 * commit a batch's records together, ignores it.
 */
export type SettledEarly<J> = (jobs: readonly J[]) => void;

/** A batch handler: resolves once every job is settled; may report some earlier. */
export type JobBatchHandler<J> = (jobs: readonly J[], settled: SettledEarly<J>) => Promise<void>;

/** A consumer's hold on a queue; `close` stops taking jobs (jobs being handled are finished). */
export interface QueueSubscription {
  close(): Promise<void>;
}

/**
 * Jobs are handed out at least once: a batch leaves the queue when its handler resolves, and a
 * batch whose handler never resolved (a crash) comes back to the next consumer. Jobs of one key
 * arrive in the order they were queued, and no job of a key is handed out while an earlier one of
 * the same key is still being handled. The handler must settle every job in its batch before
 * resolving.
 */
export interface JobQueue<J> {
  /** Queues jobs; resolves once they are durable. */
  enqueue(jobs: readonly J[]): Promise<void>;
  /** Starts handing queued jobs to `handler`, in batches. */
  consume(handler: JobBatchHandler<J>): Promise<QueueSubscription>;
}

/**
 * A store of letters: jobs that could not be done, kept for an operator to inspect, replay or
 * purge. Ids are ULIDs, increasing in the order letters are added (within one process at least);
 * listing is oldest first.
 */
export interface DeadLetterStore<L extends { id: string }> {
  /** Stores letters; resolves once durable. */
  add(letters: readonly L[]): Promise<void>;
  /** Up to `limit` letters with ids after `after` (all when absent), oldest first. */
  list(limit: number, after?: string): Promise<L[]>;
  get(id: string): Promise<L | null>;
  /** Deletes letters (unknown ids are ignored); reports how many were deleted. */
  remove(ids: readonly string[]): Promise<number>;
}
