import type { RateLimit, RateLimiter } from '../ports/rate-limiter.js';
import { ParleyError } from './errors.js';

/**
 * The kinds of work a user's requests cost the server, each with a budget of its own. A budget
 * counts work, not requests: a send to a 512-member group costs 512 inbox rows of fan-out, a
 * `sync` costs the rows and bytes it reads, a typing event the frames it delivers.
 */
export interface WorkLimits {
  /** Messages and group changes. */
  send: RateLimit;
  /** Inbox entries written by the user's messages (one per recipient). */
  fanout: RateLimit;
  /** Read work: one per request, one per row, one per KiB of reply. */
  read: RateLimit;
  /** Typing frames delivered to other members' devices (one per member). */
  typing: RateLimit;
  /** Users named in presence subscriptions. */
  presence: RateLimit;
  /** Account requests: device listings and revocations, push registrations, mutes (one each). */
  account: RateLimit;
  /** Key uploads and counts, `to_device` acknowledgements (one each). */
  keys: RateLimit;
  /** Device bundles claimed by the user (one per device handed out). */
  keysClaim: RateLimit;
  /** The user's device bundles claimed by others (one per device handed out). */
  keysClaimed: RateLimit;
  /** `to_device` messages sent. */
  toDevice: RateLimit;
  /** `media_upload` and `media_download` requests. */
  media: RateLimit;
  /** Bytes uploaded (declared size of each `media_upload`). */
  uploadBytes: RateLimit;
}

export type WorkKind = keyof WorkLimits;

/** Bytes of reply that cost one unit of read work (beside one unit per row). */
export const READ_BYTES_PER_UNIT = 1024;

/** The read work of a reply: the request, its rows, its bytes. */
export function readCost(rows: number, bytes: number): number {
  return 1 + rows + Math.ceil(bytes / READ_BYTES_PER_UNIT);
}

/**
 * Per-user budgets over the RateLimiter port (one process's buckets embedded, Redis in cluster
 * mode, so a budget holds over all of a user's devices and gateways). Work whose cost is known
 * before it runs is taken first (a send's fan-out is charged at the group's known or largest
 * size, the overcharge given back once sequenced). Reads are known only afterwards: each takes
 * one unit to start and is charged the rest when done, which may put the budget into debt; a
 * user's reads in flight are few (two per connection), so the overshoot is bounded.
 */
export class WorkBudget {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly limits: WorkLimits,
    /** Told of every refusal (a metric: a budget refusing often is an abuser, or a limit too low). */
    private readonly onRefused: (kind: WorkKind) => void = () => {},
  ) {}

  /**
   * Takes `cost` units of `kind` from `user`'s budget, or throws `rate_limited` with the wait.
   * Resolves with the units taken: a cost above the burst, which could never be had, takes the
   * whole burst.
   */
  async take(kind: WorkKind, user: string, cost: number): Promise<number> {
    const limit = this.limits[kind];
    const units = Math.min(cost, limit.burst);
    const wait = await this.limiter.take(`${kind}:${user}`, units, limit);
    if (wait > 0) {
      this.onRefused(kind);
      throw new ParleyError('rate_limited', `too much ${kind} work; retry in ${wait} ms`, wait);
    }
    return units;
  }

  /**
   * Charges work already done whose cost was known only afterwards: the budget may go into debt,
   * and the next request waits until it is paid back (best effort).
   */
  charge(kind: WorkKind, user: string, units: number): void {
    if (units <= 0) return;
    void this.limiter.spend(`${kind}:${user}`, units, this.limits[kind]).catch(() => {});
  }

  /** Gives back units taken for work that turned out smaller than charged (best effort). */
  refund(kind: WorkKind, user: string, units: number): void {
    if (units <= 0) return;
    void this.limiter.take(`${kind}:${user}`, -units, this.limits[kind]).catch(() => {});
  }
}
