import type { MessageObject } from '@parley/protocol';
import type { GroupEffect } from './conversation-store.js';

/** A message as stored: exactly the protocol's message object. */
export type StoredMessage = MessageObject;

/** The durable head of a conversation's sequence. */
export interface ConversationHead {
  lastSeq: number;
  lastTs: number;
}

/** Selects a page of a conversation, ascending by seq. `before` and `after` are exclusive. */
export interface PageQuery {
  before?: number;
  after?: number;
  limit: number;
  /** Lowest seq the reader may see (a member's joined seq); nothing below it is returned. */
  floor?: number;
}

/**
 * The conversation log: messages keyed by (conv, seq), each stored once. Writes come only from
 * the conversation's single sequencer, so the store never assigns numbers itself. Listing the
 * messages whose fan-out a crash interrupted is not part of it: a store that can do it also offers
 * the `FanoutRecovery` capability (`ports/fanout-recovery.ts`).
 */
export interface MessageStore {
  /**
   * Stores messages and advances their conversations' heads; resolves only once they are durable.
   * `effects` (group changes recorded by system messages among them) are applied in the same
   * durable step. Writing the same (conv, seq) again with the same content changes nothing.
   */
  append(messages: readonly StoredMessage[], effects?: readonly GroupEffect[]): Promise<void>;
  /**
   * The durable head of `conv`, or null when it has no messages. A store offering `EpochMessages`
   * answers its published head: messages written past it are not visible (to `page` and
   * `findByCmid` either) until published.
   */
  head(conv: string): Promise<ConversationHead | null>;
  /** The (seq, ts) already stored for a sender's client message id, if any (idempotent send). */
  findByCmid(conv: string, from: string, cmid: string): Promise<{ seq: number; ts: number } | null>;
  /** A page of messages, ascending by seq, at most `limit`, newest page first when `before`/`after` are absent. */
  page(conv: string, query: PageQuery): Promise<StoredMessage[]>;
  /** The messages at the given positions, in the same order; missing ones are undefined. */
  getMany(refs: readonly { conv: string; seq: number }[]): Promise<(StoredMessage | undefined)[]>;
  /** Distinct senders of the messages with after < seq <= upto, system messages excluded (at most `max` names). */
  senders(conv: string, after: number, upto: number, max: number): Promise<string[]>;
}

/**
 * A capability of a store with one writer that commits in issue order and fails closed (SQLite's
 * writer thread): a write issued after another is never durable without it, and once a write fails
 * every later one fails too. The sequencer then hands a batch to its listeners when its append is
 * issued rather than when it is durable, so the fan-out's inbox entries join the same commit; the
 * sender's reply and every delivery still wait for durability.
 */
export interface OrderedWrites {
  readonly writesInOrder: true;
}
