/**
 * The push queue: durable jobs, one per offline device and message, waiting to be sent to a push
 * provider. Embedded: a table in the store. Cluster: the Kafka `push` topic, keyed by user.
 * @module
 */
import type {
  DeadLetterStore,
  JobBatchHandler,
  JobQueue,
  SettledEarly as JobSettledEarly,
  QueueSubscription,
} from './job-queue.js';

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

/** Push's batch handler and early settlement (see `JobQueue`). */
export type SettledEarly = JobSettledEarly<PushJob>;
export type PushBatchHandler = JobBatchHandler<PushJob>;
export type PushQueueSubscription = QueueSubscription;

/**
 * A `JobQueue` keyed by user: jobs of one user arrive in the order they were queued. A queue may
 * merge a job into a queued, not yet handed out job of the same user, device and conversation
 * (keeping the later message's fields): one notification stands for both anyway. The handler must
 * settle every job in its batch (send it, drop it, or dead-letter it) before resolving.
 */
export type PushQueue = JobQueue<PushJob>;

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
export type PushDeadLetters = DeadLetterStore<DeadLetter>;
