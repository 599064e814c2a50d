import { EpochFencedError, type EpochInbox, headsOf, type WrittenHead } from '../ports/epoch-fencing.js';
import {
  type FannedMark,
  fanoutEntries,
  type InboxEntry,
  type InboxStore,
  type MessageFanout,
} from '../ports/inbox-store.js';
import type { Logger } from '../ports/logger.js';
import type { ConsumedRecord, PartitionHandler } from '../ports/partitioned-log.js';
import type { PartitionFence } from './partition-fence.js';

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
 * anything, a revocation gives them up, and `afterBatch` runs after each batch (the fan-out
 * stage publishes the entries it adopted from a former owner).
 */
export function fencedStage(
  stage: PartitionHandler,
  fence: PartitionFence,
  afterBatch: () => Promise<void> = async () => {},
  onRevoked: () => void = () => {},
): PartitionHandler {
  return {
    async onAssigned(partitions: readonly number[]) {
      await fence.assigned(partitions);
      await stage.onAssigned(partitions);
    },
    async onRevoked(partitions: readonly number[]) {
      await stage.onRevoked(partitions);
      fence.revoked();
      onRevoked();
    },
    async onRecords(partition: number, records: readonly ConsumedRecord[]) {
      await stage.onRecords(partition, records);
      await afterBatch();
    },
  };
}
