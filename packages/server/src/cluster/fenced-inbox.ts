import {
  EpochFencedError,
  type EpochInbox,
  headsOf,
  type PartitionEpochs,
  type WrittenHead,
} from '../ports/epoch-inbox.js';
import {
  type FannedMark,
  fanoutEntries,
  type InboxEntry,
  type InboxStore,
  type MessageFanout,
} from '../ports/inbox-store.js';
import type { Logger } from '../ports/logger.js';
import type { ConsumedRecord, PartitionHandler } from '../ports/partitioned-log.js';

/** Users whose heads were loaded under the current epoch, at most: past it, a new epoch reloads all. */
const MAX_LOADED_USERS = 4_000_000;

/**
 * The fan-out stage's inbox as its inbox writer sees it, fenced by ownership epochs instead of a
 * conditional write per user (the protocol is in `ports/epoch-inbox.ts`): a member takes a new
 * epoch when its partitions are assigned, and again after any check found it fenced, always before
 * it loads a head; it writes entries under its epoch, checks that every partition it owns is still
 * at that epoch (one read per flush, whatever the number of users), and only then publishes the
 * heads and lets the writer deliver. A fenced append rejects with `EpochFencedError` (an
 * `InboxConflictError`), so the writer drops its numbered work and the stage reloads and redoes it.
 *
 * Heads here are written heads: a former owner that died (or was fenced) after writing entries but
 * before publishing them left them past the published head. They are real events of the log, so
 * this member numbers after them ("adopts" them), and publishes them after its next passing check.
 */
export class FencedInbox implements InboxStore {
  private epoch = 0;
  private partitions: readonly number[] = [];
  /** A check found another member's epoch: the next head load takes a new epoch first. */
  private stale = false;
  private taking: Promise<void> | null = null;
  /** The epoch each user's head was loaded under: an append numbered from an older one is refused. */
  private readonly loadedUnder = new Map<string, number>();
  /** Users with written entries past their published head, to publish after the next passing check. */
  private readonly adopted = new Map<string, WrittenHead>();

  constructor(
    private readonly store: InboxStore,
    private readonly fenced: EpochInbox,
    private readonly epochs: PartitionEpochs,
    private readonly stage: string,
    private readonly owner: string,
    private readonly log: Logger,
  ) {}

  /** Holds `partitions` (every partition this member owns) under a new epoch. */
  async assigned(partitions: readonly number[]): Promise<void> {
    this.partitions = [...partitions];
    await this.take();
  }

  /** Holds nothing: every append is refused until the next assignment. */
  revoked(): void {
    this.partitions = [];
    this.epoch = 0;
    this.adopted.clear();
    this.loadedUnder.clear();
  }

  async head(user: string): Promise<number> {
    await this.current();
    const epoch = this.epoch;
    const h = await this.fenced.writtenHead(user);
    if (h.written > h.published) this.adopted.set(user, h);
    if (this.loadedUnder.size >= MAX_LOADED_USERS) this.loadedUnder.clear();
    this.loadedUnder.set(user, epoch);
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
    const epoch = this.epoch;
    for (const e of rows) {
      // Numbered from a head loaded before the current epoch, which may miss another member's
      // entries: refused, so the writer reloads it (no new epoch is needed for that).
      if (epoch === 0 || this.loadedUnder.get(e.user) !== epoch)
        throw new EpochFencedError(`inbox of ${e.user} numbered from a head loaded before epoch ${epoch}`);
    }
    await this.fenced.write(rows, epoch);
    await this.check(epoch);
    const adopted = await this.drainAdopted();
    const heads = headsOf(rows);
    for (const [user, h] of adopted.heads) heads.set(user, Math.max(heads.get(user) ?? 0, h));
    await this.fenced.publish([...adopted.entries, ...rows], heads);
  }

  /** Publishes adopted entries (after a passing check); a member fenced meanwhile leaves them. */
  async publishAdopted(): Promise<void> {
    if (this.adopted.size === 0) return;
    try {
      await this.check(this.epoch);
    } catch (err) {
      if (!(err instanceof EpochFencedError)) throw err;
      this.adopted.clear();
      return;
    }
    const adopted = await this.drainAdopted();
    await this.fenced.publish(adopted.entries, adopted.heads);
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

  /** Takes a new epoch if a check found this member fenced since the last take (one take at a time). */
  private async current(): Promise<void> {
    if (!this.stale) return;
    this.taking ??= this.take().finally(() => {
      this.taking = null;
    });
    await this.taking;
  }

  private async take(): Promise<void> {
    this.stale = false;
    this.adopted.clear();
    this.loadedUnder.clear();
    this.epoch =
      this.partitions.length === 0 ? 0 : await this.epochs.take(this.stage, this.partitions, this.owner);
    this.log.info(
      { stage: this.stage, partitions: this.partitions, epoch: this.epoch },
      'partition epoch taken',
    );
  }

  /** Rejects unless every partition this member owns is still held under `epoch`. */
  private async check(epoch: number): Promise<void> {
    const held = await this.epochs.held(this.stage);
    for (const p of this.partitions) {
      const now = held.get(p);
      if (now !== epoch) {
        throw this.fencedAt(p, epoch, now);
      }
    }
    if (this.partitions.length === 0)
      throw new EpochFencedError(`${this.stage}: this member holds no partition`);
  }

  private fencedAt(partition: number, epoch: number, held: number | undefined): EpochFencedError {
    this.stale = true;
    return new EpochFencedError(
      `${this.stage} partition ${partition} is held under epoch ${held ?? 'none'}, not ${epoch}: another member took it`,
    );
  }

  /** The adopted users' entries past their published heads, and the heads that publish them. */
  private async drainAdopted(): Promise<{ entries: InboxEntry[]; heads: Map<string, number> }> {
    const entries: InboxEntry[] = [];
    const heads = new Map<string, number>();
    if (this.adopted.size === 0) return { entries, heads };
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
 * The fan-out stage with its inbox fenced: each assignment takes a new epoch before the stage
 * loads anything, and entries adopted from a former owner are published after each batch.
 */
export function fencedStage(stage: PartitionHandler, inbox: FencedInbox): PartitionHandler {
  return {
    async onAssigned(partitions: readonly number[]) {
      await inbox.assigned(partitions);
      await stage.onAssigned(partitions);
    },
    async onRevoked(partitions: readonly number[]) {
      await stage.onRevoked(partitions);
      inbox.revoked();
    },
    async onRecords(partition: number, records: readonly ConsumedRecord[]) {
      await stage.onRecords(partition, records);
      await inbox.publishAdopted();
    },
  };
}
