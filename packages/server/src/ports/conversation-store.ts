/** A member's receipt watermarks in a conversation: max-registers, merged by maximum. */
export interface Watermark {
  conv: string;
  user: string;
  delivered: number;
  read: number;
}

/** A group member's record; removed members keep theirs with `removedSeq` set. */
export interface MemberRecord {
  conv: string;
  user: string;
  role: 'admin' | 'member';
  /** Seq of the system message that added the user (the first seq they may see). */
  joinedSeq: number;
  /** Seq of the system message that removed the user (the last one they receive). */
  removedSeq?: number;
  /** The group's name and member count right after the removal: what the removed user keeps seeing. */
  nameAtRemoval?: string;
  membersAtRemoval?: number;
}

/**
 * A change to a group, stored atomically with the system message (at `seq`) that records it, so
 * membership and the conversation log can never disagree after a crash.
 */
export type GroupEffect =
  | {
      type: 'create';
      conv: string;
      seq: number;
      name: string;
      createdTs: number;
      members: { user: string; role: 'admin' | 'member' }[];
    }
  | { type: 'join'; conv: string; seq: number; users: string[] }
  | {
      type: 'remove';
      conv: string;
      seq: number;
      users: string[];
      /** The group's name and member count after the removal, kept for the removed users. */
      name?: string;
      members?: number;
    }
  | { type: 'role'; conv: string; seq: number; user: string; role: 'admin' | 'member' }
  | { type: 'rename'; conv: string; seq: number; name: string };

/** What the store knows about a conversation. */
export interface ConversationMeta {
  conv: string;
  kind: 'direct' | 'group';
  name?: string;
  createdTs: number;
  lastSeq: number;
  lastTs: number;
}

/**
 * Conversation metadata and receipt watermarks. Watermark writes merge by maximum in the store
 * too, so a late or repeated write never moves a watermark back.
 */
export interface ConversationStore {
  get(conv: string): Promise<ConversationMeta | null>;
  /** Every member record of a group, removed members included, by joined seq then user. */
  members(conv: string): Promise<MemberRecord[]>;
  /** Watermarks of `conv` (of the given users only, when given); users without any are absent. */
  watermarks(conv: string, users?: readonly string[]): Promise<Watermark[]>;
  /** Merges watermarks by maximum; resolves once durable. */
  mergeWatermarks(rows: readonly Watermark[]): Promise<void>;
}
