/** What an inbox entry points at or carries. */
export type InboxEntry =
  | { user: string; inbox: number; ts: number; type: 'message'; conv: string; seq: number }
  | {
      user: string;
      inbox: number;
      ts: number;
      type: 'receipt';
      conv: string;
      seq: number;
      /** The user whose watermark moved. */
      actor: string;
      kind: 'delivered' | 'read';
    };

/** Marks a message's fan-out as complete, recorded atomically with its inbox entries. */
export interface FannedMark {
  conv: string;
  seq: number;
}

/** One row of a user's chat list. */
export interface UserConversation {
  conv: string;
  lastTs: number;
}

/**
 * Per-user inboxes: every event a user's devices must not miss, numbered 1, 2, 3, … per user by
 * the user's single inbox writer. A message entry also records the conversation's activity in the
 * user's chat list.
 */
export interface InboxStore {
  /**
   * Stores entries and fan-out marks in one durable step; resolves once durable. Entries of one
   * user arrive in inbox order without gaps after the stored head.
   */
  append(entries: readonly InboxEntry[], fanned: readonly FannedMark[]): Promise<void>;
  /** The highest inbox number ever stored for `user` (0 when none); never decreases, even after pruning. */
  head(user: string): Promise<number>;
  /** Entries with inbox > after, ascending, at most `limit`. */
  read(user: string, after: number, limit: number): Promise<InboxEntry[]>;
  /** The lowest inbox number still retained for `user`; head + 1 when none is. */
  floor(user: string): Promise<number>;
  /** Deletes entries stored before `beforeTs`; returns how many. */
  prune(beforeTs: number): Promise<number>;
  /** The user's conversations by last activity, newest first, strictly before `beforeTs` when given. */
  conversations(user: string, limit: number, beforeTs?: number): Promise<UserConversation[]>;
}
