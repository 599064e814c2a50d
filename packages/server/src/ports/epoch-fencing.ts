/**
 * Writes fenced by an ownership epoch: a capability of the stores that several processes share
 * (cluster mode), so that a stage member (sequencer, fan-out) pays for fencing once per partition
 * assignment instead of one conditional write (a Paxos round in Cassandra) per conversation or
 * per user per flush. The inbox's protocol is described here; the message log's is the same, with
 * the derived rows (dedup, group changes, the conversation's head) as what publishes a message
 * (`EpochMessages`, `cluster/fenced-messages.ts`).
 *
 * How the fan-out stage uses it (`cluster/fenced-inbox.ts`): on each assignment a member takes a
 * new epoch (`PartitionEpochs.take`), higher than any taken before in its stage, and only then
 * loads its users' heads (`writtenHead`); it writes entries stamped with its epoch (`write`), then
 * reads the stage's epochs (`PartitionEpochs.held`) and only if every partition it owns is still
 * at its epoch does it `publish` the heads and deliver. A paused former owner (a zombie) either
 * finished its writes before that read (then the new owner, which loads after its own take, sees
 * them and numbers after them), or it hears the newer epoch and publishes nothing; a row it wrote
 * late loses to the new owner's row under the same number, whatever the order of arrival.
 * Readers (`InboxStore.read` and `head`) see entries up to the published head only, so nobody
 * reads an entry that a newer owner may still overwrite.
 * @module
 */
import type { GroupEffect } from './conversation-store.js';
import { InboxConflictError, type InboxEntry } from './inbox-store.js';
import type { ConversationHead, StoredMessage } from './message-store.js';

/** The ownership epochs of one consumer group's partitions ("stage"), shared by its members. */
export interface PartitionEpochs {
  /**
   * Records `owner` as the holder of `partitions` under a new epoch, higher than every epoch taken
   * before in `stage` (taken once, by a linearizable write); resolves with it once durable. A
   * partition's record is replaced only by a higher epoch, whatever the order of arrival.
   */
  take(stage: string, partitions: readonly number[], owner: string): Promise<number>;
  /** Each partition of `stage` with the epoch it is held under now (a read that sees every completed `take`). */
  held(stage: string): Promise<ReadonlyMap<number, number>>;
}

/** The written (not necessarily published) end of a user's inbox. */
export interface WrittenHead {
  /** What readers see: the highest number published. */
  published: number;
  /** The highest number written, published or not (at least `published`). */
  written: number;
}

/** An `InboxStore`'s entries written under an epoch and published by heads (see the module). */
export interface EpochInbox {
  /**
   * Stores entries, each stamped with `epoch`; resolves once durable. Under a number that already
   * holds a row, the row with the higher epoch stands (equal epochs: the same row, written again).
   * Not visible to readers until a head covering it is published.
   */
  write(entries: readonly InboxEntry[], epoch: number): Promise<void>;
  /**
   * Makes each user's written entries up to `heads.get(user)` visible to readers: raises the
   * published head (never lowers it) and records the chat-list activity of `entries` (the
   * written entries being published).
   */
  publish(entries: readonly InboxEntry[], heads: ReadonlyMap<string, number>): Promise<void>;
  /** The user's published head and the highest number written past it. */
  writtenHead(user: string): Promise<WrittenHead>;
  /** Written entries, published or not, with inbox > after, ascending, at most `limit`. */
  readWritten(user: string, after: number, limit: number): Promise<InboxEntry[]>;
}

/** A conversation's published head and the messages written past it. */
export interface WrittenLog {
  /** What readers see (`MessageStore.head`); null when nothing is published. */
  head: ConversationHead | null;
  /** Messages written past the published head, ascending (a writer died or was fenced before publishing them). */
  beyond: StoredMessage[];
  /** The group changes of `beyond`. */
  effects: GroupEffect[];
}

/** A `MessageStore`'s messages written under an epoch and published by their derived rows. */
export interface EpochMessages {
  /**
   * Stores messages (with their group changes) stamped with `epoch`; resolves once durable. Under
   * a seq that already holds a row, the row with the higher epoch stands. Not visible to readers
   * (`head`, `page`, `findByCmid`, the group's members) until published.
   */
  write(rows: readonly StoredMessage[], effects: readonly GroupEffect[], epoch: number): Promise<void>;
  /** Publishes written messages: their dedup rows, group changes and conversations' heads. */
  publish(rows: readonly StoredMessage[], effects: readonly GroupEffect[]): Promise<void>;
  /** The published head and the messages written past it. */
  writtenHead(conv: string): Promise<WrittenLog>;
}

/**
 * A fenced append refused: a partition this member owns is held under another member's epoch (this
 * one was paused, or is being paused), or entries were numbered from a head loaded under an older
 * epoch. Nothing was published; like any inbox conflict, the caller drops its numbered work and
 * reloads (after taking a new epoch, when fenced).
 */
export class EpochFencedError extends InboxConflictError {
  constructor(message: string) {
    super(message);
    this.name = 'EpochFencedError';
  }
}

/** Each user's highest inbox number in `entries`: the heads that publish them. */
export function headsOf(entries: readonly InboxEntry[]): Map<string, number> {
  const heads = new Map<string, number>();
  for (const e of entries) heads.set(e.user, Math.max(heads.get(e.user) ?? 0, e.inbox));
  return heads;
}
