// Fencing by partition epochs, for both cluster stages (the protocol is in
// `ports/epoch-fencing.ts`; why this design, in docs/architecture.md, "Fencing"): a member's hold
// on its partitions (`PartitionFence`), the sequencer's fenced message log (`FencedMessages`), the
// fan-out stage's fenced inboxes (`FencedInbox`), and the stage wrapper that takes an epoch at
// each assignment (`fencedStage`).
import type { GroupEffect } from '../ports/conversation-store.js';
import {
  EpochFencedError,
  type EpochInbox,
  type EpochMessages,
  headsOf,
  type PartitionEpochs,
  type WrittenHead,
} from '../ports/epoch-fencing.js';
import {
  type FannedMark,
  fanoutEntries,
  type InboxEntry,
  type InboxStore,
  type MessageFanout,
} from '../ports/inbox-store.js';
import type { Logger } from '../ports/logger.js';
import type { ConversationHead, MessageStore, PageQuery, StoredMessage } from '../ports/message-store.js';
import type { ConsumedRecord, PartitionHandler } from '../ports/partitioned-log.js';

/** Keys (users, conversations) whose state was loaded under the current epoch, at most: past it, all reload. */
const MAX_LOADED_KEYS = 4_000_000;

/**
 * One stage member's hold on its partitions (the protocol is in `ports/epoch-fencing.ts`): a new
 * epoch at each assignment, and again after a check found this member fenced, always before any
 * state is loaded; a check (one read for the whole stage) before anything is published; and a
 * record of the epoch under which each key's state was loaded, so that work numbered from state
 * loaded under an older epoch is refused and redone.
 */
export class PartitionFence {
  private current = 0;
  private partitions: readonly number[] = [];
  /** A check found another member's epoch: the next load takes a new epoch first. */
  private stale = false;
  private taking: Promise<void> | null = null;
  private readonly loadedUnder = new Map<string, number>();

  constructor(
    private readonly epochs: PartitionEpochs,
    private readonly stage: string,
    private readonly owner: string,
    private readonly log: Logger,
  ) {}

  /** The epoch writes are stamped with now (0: none held). */
  get epoch(): number {
    return this.current;
  }

  /**
   * Holds `partitions` (every partition this member owns) under a new epoch. Never rejects: when
   * the store cannot take one now (it is down), nothing is written until a load takes it.
   */
  async assigned(partitions: readonly number[]): Promise<void> {
    this.partitions = [...partitions];
    try {
      await this.take();
    } catch (err) {
      this.log.warn(
        { stage: this.stage, err: String(err) },
        'no partition epoch taken yet; retried before the next load',
      );
    }
  }

  /** Holds nothing: everything is refused until the next assignment. */
  revoked(): void {
    this.partitions = [];
    this.current = 0;
    this.stale = false;
    this.loadedUnder.clear();
  }

  /** Before loading state: takes a new epoch if a check found this member fenced since the last take. */
  async beforeLoad(): Promise<void> {
    if (!this.stale) return;
    this.taking ??= this.take().finally(() => {
      this.taking = null;
    });
    await this.taking;
  }

  /** Records that `key`'s state was loaded under `epoch` (read before the load began). */
  loaded(key: string, epoch: number): void {
    if (this.loadedUnder.size >= MAX_LOADED_KEYS) this.loadedUnder.clear();
    this.loadedUnder.set(key, epoch);
  }

  /** Refuses work on keys whose state was loaded under another epoch than `epoch` (it may miss another member's writes). */
  refuseStale(keys: Iterable<string>, epoch: number): void {
    for (const key of keys) {
      if (epoch === 0 || this.loadedUnder.get(key) !== epoch)
        throw new EpochFencedError(`${this.stage}: ${key} was loaded before epoch ${epoch}; reload it`);
    }
  }

  /** Rejects unless every partition this member owns is still held under `epoch`. */
  async check(epoch: number): Promise<void> {
    if (this.partitions.length === 0)
      throw new EpochFencedError(`${this.stage}: this member holds no partition`);
    const held = await this.epochs.held(this.stage);
    for (const p of this.partitions) {
      const now = held.get(p);
      if (now !== epoch) {
        this.stale = true;
        throw new EpochFencedError(
          `${this.stage} partition ${p} is held under epoch ${now ?? 'none'}, not ${epoch}: another member took it`,
        );
      }
    }
  }

  /** Takes a new epoch; until it is taken nothing is written (and if it fails, the next load tries again). */
  private async take(): Promise<void> {
    this.stale = true;
    this.current = 0;
    this.loadedUnder.clear();
    const partitions = this.partitions;
    const epoch = partitions.length === 0 ? 0 : await this.epochs.take(this.stage, partitions, this.owner);
    // Revoked (or reassigned) meanwhile: that change's own take decides.
    if (partitions !== this.partitions) return;
    this.current = epoch;
    this.stale = false;
    this.log.info({ stage: this.stage, partitions, epoch }, 'partition epoch taken');
  }
}

/**
 * The sequencer stage's message log, fenced by ownership epochs instead of a conditional write
 * per conversation per batch (the protocol is in `ports/epoch-fencing.ts`): messages are written
 * under the member's epoch, one check per batch confirms every partition it owns is still at that
 * epoch, and only then are they published (dedup rows, group changes, the conversation's head)
 * and the senders answered. A fenced append rejects with `EpochFencedError`: the sequencer drops
 * the conversation's state and its senders hear `unavailable` (they retry, through the new owner).
 *
 * A conversation's head is loaded as written: messages a former owner wrote and did not publish
 * (it died, or was fenced) are real sends of the log, so they are published here, after a check,
 * before the head is answered: the sequencer then finds them by cmid when their sends come again.
 */
export class FencedMessages implements MessageStore {
  constructor(
    private readonly store: MessageStore,
    private readonly fenced: EpochMessages,
    readonly fence: PartitionFence,
  ) {}

  async head(conv: string): Promise<ConversationHead | null> {
    await this.fence.beforeLoad();
    const epoch = this.fence.epoch;
    const { head, beyond, effects } = await this.fenced.writtenHead(conv);
    if (beyond.length > 0) {
      await this.fence.check(epoch);
      await this.fenced.publish(beyond, effects);
    }
    this.fence.loaded(conv, epoch);
    const last = beyond.at(-1);
    return last ? { lastSeq: last.seq, lastTs: Math.max(last.ts, head?.lastTs ?? 0) } : head;
  }

  async append(messages: readonly StoredMessage[], effects: readonly GroupEffect[] = []): Promise<void> {
    const epoch = this.fence.epoch;
    this.fence.refuseStale(new Set(messages.map((m) => m.conv)), epoch);
    await this.fenced.write(messages, effects, epoch);
    await this.fence.check(epoch);
    await this.fenced.publish(messages, effects);
  }

  findByCmid(conv: string, from: string, cmid: string) {
    return this.store.findByCmid(conv, from, cmid);
  }

  page(conv: string, query: PageQuery): Promise<StoredMessage[]> {
    return this.store.page(conv, query);
  }

  getMany(refs: readonly { conv: string; seq: number }[]) {
    return this.store.getMany(refs);
  }

  senders(conv: string, after: number, upto: number, max: number): Promise<string[]> {
    return this.store.senders(conv, after, upto, max);
  }
}

/**
 * The fan-out stage's inbox as its inbox writer sees it, fenced by ownership epochs instead of a
 * conditional write per user (the protocol is in `ports/epoch-fencing.ts`): entries are written
 * under the member's epoch, one check per flush (whatever the number of users) confirms every
 * partition it owns is still at that epoch, and only then are the heads published and the frames
 * delivered. A fenced append rejects with `EpochFencedError` (an `InboxConflictError`), so the
 * writer drops its numbered work and the stage reloads and redoes it.
 *
 * Heads here are written heads: a former owner that died (or was fenced) after writing entries but
 * before publishing them left them past the published head. They are real events of the log, so
 * this member numbers after them ("adopts" them), and publishes them after its next passing check.
 */
export class FencedInbox implements InboxStore {
  /** Users with written entries past their published head, to publish after the next passing check. */
  private readonly adopted = new Map<string, WrittenHead>();

  constructor(
    private readonly store: InboxStore,
    private readonly fenced: EpochInbox,
    readonly fence: PartitionFence,
    private readonly log: Logger,
  ) {}

  async head(user: string): Promise<number> {
    await this.fence.beforeLoad();
    const epoch = this.fence.epoch;
    const h = await this.fenced.writtenHead(user);
    if (h.written > h.published) this.adopted.set(user, h);
    this.fence.loaded(user, epoch);
    return h.written;
  }

  /** Entries written, published or not: what the fan-out stage deduplicates against. */
  read(user: string, after: number, limit: number): Promise<InboxEntry[]> {
    return this.fenced.readWritten(user, after, limit);
  }

  async append(
    entries: readonly InboxEntry[],
    _fanned: readonly FannedMark[],
    fanouts: readonly MessageFanout[] = [],
  ): Promise<void> {
    const rows = fanouts.length > 0 ? [...entries, ...fanoutEntries(fanouts)] : entries;
    const epoch = this.fence.epoch;
    this.fence.refuseStale(
      rows.map((e) => e.user),
      epoch,
    );
    await this.fenced.write(rows, epoch);
    await this.fence.check(epoch);
    const heads = headsOf(rows);
    if (this.adopted.size === 0) return this.fenced.publish(rows, heads);
    const adopted = await this.drainAdopted();
    for (const [user, h] of adopted.heads) heads.set(user, Math.max(heads.get(user) ?? 0, h));
    await this.fenced.publish([...adopted.entries, ...rows], heads);
  }

  /** Publishes adopted entries (after a passing check); a member fenced meanwhile leaves them. */
  async publishAdopted(): Promise<void> {
    if (this.adopted.size === 0) return;
    try {
      await this.fence.check(this.fence.epoch);
    } catch (err) {
      if (!(err instanceof EpochFencedError)) throw err;
      this.adopted.clear();
      return;
    }
    const adopted = await this.drainAdopted();
    await this.fenced.publish(adopted.entries, adopted.heads);
  }

  /** Forgets adopted entries (the partitions moved: their next owner adopts them). */
  revoked(): void {
    this.adopted.clear();
  }

  floor(user: string): Promise<number> {
    return this.store.floor(user);
  }

  conversations(user: string, limit: number, beforeTs?: number) {
    return this.store.conversations(user, limit, beforeTs);
  }

  lastSeqs(user: string, convs: readonly string[]): Promise<Map<string, number>> {
    return this.store.lastSeqs(user, convs);
  }

  /** The adopted users' entries past their published heads, and the heads that publish them. */
  private async drainAdopted(): Promise<{ entries: InboxEntry[]; heads: Map<string, number> }> {
    const entries: InboxEntry[] = [];
    const heads = new Map<string, number>();
    const users = [...this.adopted];
    this.adopted.clear();
    for (const [user, h] of users) {
      entries.push(...(await this.fenced.readWritten(user, h.published, h.written - h.published)));
      heads.set(user, h.written);
    }
    this.log.warn(
      { users: users.length },
      'fanout: publishing entries a former owner wrote and did not publish',
    );
    return { entries, heads };
  }
}

/**
 * A stage with its partitions fenced: each assignment takes a new epoch before the stage loads
 * anything, a revocation gives them up; the fan-out stage's `FencedInbox` publishes after each
 * batch the entries it adopted from a former owner, and forgets them when its partitions move.
 */
export function fencedStage(
  stage: PartitionHandler,
  fence: PartitionFence,
  inbox?: FencedInbox,
): PartitionHandler {
  return {
    async onAssigned(partitions: readonly number[]) {
      await fence.assigned(partitions);
      await stage.onAssigned(partitions);
    },
    async onRevoked(partitions: readonly number[]) {
      await stage.onRevoked(partitions);
      fence.revoked();
      inbox?.revoked();
    },
    async onRecords(partition: number, records: readonly ConsumedRecord[]) {
      await stage.onRecords(partition, records);
      await inbox?.publishAdopted();
    },
  };
}
