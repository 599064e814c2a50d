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

/**
 * Marks a message's fan-out as complete, recorded atomically with its inbox entries. A store that
 * offers `FanoutRecovery` keeps the marks (and lists what lags them); one that does not may ignore
 * them (cluster mode's fan-out progress is the fan-out topic's committed offsets).
 */
export interface FannedMark {
  conv: string;
  seq: number;
}

/**
 * One message's inbox entries for many recipients, without an object per recipient (a group
 * message reaches up to 512 inboxes): recipient `users[i]` gets number `inboxes[i]`.
 */
export interface MessageFanout {
  conv: string;
  seq: number;
  ts: number;
  users: readonly string[];
  inboxes: readonly number[];
}

/** Expands fan-outs into plain message entries (for adapters that store entries one by one). */
export function fanoutEntries(fanouts: readonly MessageFanout[]): InboxEntry[] {
  const out: InboxEntry[] = [];
  for (const f of fanouts) {
    for (let i = 0; i < f.users.length; i++) {
      out.push({
        user: f.users[i]!,
        inbox: f.inboxes[i]!,
        ts: f.ts,
        type: 'message',
        conv: f.conv,
        seq: f.seq,
      });
    }
  }
  return out;
}

/**
 * An append met another entry under one of its numbers: another writer (one that lost the user's
 * inbox) numbered it. The first write stands; the caller must reload the head and renumber.
 */
export class InboxConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InboxConflictError';
  }

  /** `inbox` of `user` already holds another entry: a conditional write lost to another writer. */
  static taken(user: string, inbox: number): InboxConflictError {
    return new InboxConflictError(
      `inbox ${inbox} of ${user} already holds another entry: this writer no longer owns the inbox`,
    );
  }
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
   * Stores entries, fan-outs (message entries in compact form, stored after `entries`) and fan-out
   * marks in one durable step; resolves once durable. Entries of one user arrive in inbox order
   * without gaps after the stored head. Appending an entry already stored changes nothing; other
   * content under a stored number changes nothing either (the first write stands), and an adapter
   * shared by several processes rejects such an append with `InboxConflictError`.
   */
  append(
    entries: readonly InboxEntry[],
    fanned: readonly FannedMark[],
    fanouts?: readonly MessageFanout[],
  ): Promise<void>;
  /**
   * The highest inbox number stored for `user` (0 when none); never decreases, even after entries
   * are pruned or expire. A store offering `EpochInbox` answers its published head: entries written
   * past it are not visible (to `read` either) until a head covering them is published.
   */
  head(user: string): Promise<number>;
  /** Entries with inbox > after, ascending, at most `limit`. */
  read(user: string, after: number, limit: number): Promise<InboxEntry[]>;
  /** The lowest inbox number still retained for `user`; head + 1 when none is. */
  floor(user: string): Promise<number>;
  /** The user's conversations by last activity, newest first, strictly before `beforeTs` when given. */
  conversations(user: string, limit: number, beforeTs?: number): Promise<UserConversation[]>;
  /**
   * For each of `convs`, the highest message seq ever appended to the user's inbox (kept after its
   * entries are pruned or expire); a conversation without one is absent. A fan-out redone long
   * after the first one (a retried send) is recognised by it.
   */
  lastSeqs(user: string, convs: readonly string[]): Promise<Map<string, number>>;
}
