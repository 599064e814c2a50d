/** A member's receipt watermarks in a conversation: max-registers, merged by maximum. */
export interface Watermark {
  conv: string;
  user: string;
  delivered: number;
  read: number;
}

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
  /** Watermarks of `conv` (of the given users only, when given); users without any are absent. */
  watermarks(conv: string, users?: readonly string[]): Promise<Watermark[]>;
  /** Merges watermarks by maximum; resolves once durable. */
  mergeWatermarks(rows: readonly Watermark[]): Promise<void>;
}
