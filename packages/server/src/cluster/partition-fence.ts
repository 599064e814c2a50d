import { EpochFencedError, type PartitionEpochs } from '../ports/epoch-fencing.js';
import type { Logger } from '../ports/logger.js';

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
