/**
 * The inbox appender: where the stages that produce inbox events (fan-out, receipts) hand them.
 * In one process it is the domain's `InboxWriter`; in cluster mode a publisher to the fan-out
 * topic, whose consumer owning each user writes them (`cluster/remote.ts`).
 * @module
 */
import type { FannedMark, InboxEntry } from './inbox-store.js';
import type { StoredMessage } from './message-store.js';

/** An inbox entry to number, with the frame tail that live delivery appends after the number. */
export interface PendingEntry {
  user: string;
  entry: DistributiveOmit<InboxEntry, 'inbox' | 'user'>;
  /** The event's JSON before the inbox number, e.g. `{"type":"message","inbox":`. */
  frameHead: string;
  /** The event's JSON after `…"inbox":N,`, UTF-8 encoded once and shared by all recipients. */
  frameTail: Buffer;
  /** For a message entry: who sent it and its kind (what a push notification names). */
  sender?: { from: string; kind: string };
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A durable message to put in its recipients' inboxes. */
export interface MessageDelivery {
  message: StoredMessage;
  recipients: readonly string[];
}

/**
 * Where the stages that produce inbox events (fan-out, receipts) hand them: the in-process
 * `InboxWriter`, or in cluster mode the fan-out topic, whose consumer owning the user writes them.
 */
export interface InboxAppender {
  /**
   * Runs `fn` (which appends for `users`) once their heads are in memory, keeping them there until
   * it returns; synchronously when they already are.
   */
  withHeads<T>(users: Iterable<string>, fn: () => T): Promise<T>;
  append(pending: readonly PendingEntry[], fanned?: readonly FannedMark[]): void;
  appendMessages(messages: readonly MessageDelivery[], fanned: readonly FannedMark[]): void;
  /** Entries handed in and not stored (or published) yet: how far behind the appender is. */
  readonly backlog: number;
  /**
   * Resolves when everything handed in so far is stored (in process, and delivered) or, for the
   * fan-out topic, durably published (its consumer stores it), whatever is handed in meanwhile. Rejects with `InboxConflictError` when some of it was dropped because
   * another writer took its numbers: the caller hands it in again.
   */
  idle(): Promise<void>;
}
