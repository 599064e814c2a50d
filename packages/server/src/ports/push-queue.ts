/**
 * The push queue: durable jobs, one per offline device and message, waiting to be sent to a push
 * provider. Embedded: a table in the store. Cluster: the Kafka `push` topic, keyed by user.
 * @module
 */

/** Wake `device` of `user`: a message it has not received live. Never the message's text. */
export interface PushJob {
  user: string;
  device: string;
  conv: string;
  seq: number;
  from: string;
  kind: string;
  /** The recipient's inbox number of the message event. */
  inbox: number;
  /** The message's time (ms since the epoch): a job's age when sent is the push's delay. */
  ts: number;
}

/**
 * What a handler calls for jobs of its batch settled before the whole batch is: a queue that can
 * drop them at once does (a table), so a crash does not send them again; a log, which can only
 * commit a batch's records together, ignores it.
 */
export type SettledEarly = (jobs: readonly PushJob[]) => void;

/** A batch handler: resolves once every job is settled; may report some earlier. */
export type PushBatchHandler = (jobs: readonly PushJob[], settled: SettledEarly) => Promise<void>;

/** A consumer's hold on the queue; `close` stops taking jobs (jobs being handled are finished). */
export interface PushQueueSubscription {
  close(): Promise<void>;
}

/**
 * Jobs are handed out at least once: a batch leaves the queue when its handler resolves, and a
 * batch whose handler never resolved (a crash) comes back to the next consumer. Jobs of one user
 * arrive in the order they were queued. A queue may merge a job into a queued, not yet handed out
 * job of the same user, device and conversation (keeping the later message's fields): one
 * notification stands for both anyway. The handler must settle every job in its batch (send it,
 * drop it, or dead-letter it) before resolving.
 */
export interface PushQueue {
  /** Queues jobs; resolves once they are durable. */
  enqueue(jobs: readonly PushJob[]): Promise<void>;
  /** Starts handing queued jobs to `handler`, in batches. */
  consume(handler: PushBatchHandler): Promise<PushQueueSubscription>;
}

/** A job that could not be sent, kept for an operator to inspect, replay or purge. */
export interface DeadLetter {
  /** Unique, and increasing in the order letters were added (within one process at least). */
  id: string;
  job: PushJob;
  /** Which provider platform refused it, and why (the provider's reason or the last error). */
  platform: string;
  reason: string;
  /** Sends tried before giving up. */
  attempts: number;
  /** When it was dead-lettered. */
  ts: number;
}

/**
 * The dead-letter store of push jobs (a table embedded and in Cassandra). Listing is oldest first;
 * `parley push dlq` reads and edits it while the server runs.
 */
export interface PushDeadLetters {
  /** Stores letters; resolves once durable. */
  add(letters: readonly DeadLetter[]): Promise<void>;
  /** Up to `limit` letters with ids after `after` (all when absent), oldest first. */
  list(limit: number, after?: string): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | null>;
  /** Deletes letters (unknown ids are ignored); reports how many were deleted. */
  remove(ids: readonly string[]): Promise<number>;
}
