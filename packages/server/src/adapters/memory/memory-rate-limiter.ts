import { type Clock, systemClock } from '../../ports/clock.js';
import type { RateLimit, RateLimiter } from '../../ports/rate-limiter.js';

interface Bucket {
  tokens: number;
  at: number;
}

/** A bucket's tokens at `now`: refilled at the rate since it was last touched, up to the burst. */
function level(b: Bucket | undefined, now: number, limit: RateLimit): number {
  return b ? Math.min(limit.burst, b.tokens + ((now - b.at) / 1000) * limit.ratePerSecond) : limit.burst;
}

/** Buckets kept before full ones are dropped (a full bucket is the same as none). */
const SWEEP_AT = 100_000;

/**
 * Token buckets in one process. Several instances may share the buckets (`peer()`), as the
 * processes of a deployment share Redis.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets: Map<string, Bucket>;

  /** New buckets read with `clock`, or, given `shared`, another instance over `shared`'s buckets. */
  constructor(
    private readonly clock: Clock = systemClock,
    shared?: MemoryRateLimiter,
  ) {
    this.buckets = shared ? shared.buckets : new Map();
  }

  /** Another instance over the same buckets and clock, as another process of the deployment has. */
  peer(): MemoryRateLimiter {
    return new MemoryRateLimiter(this.clock, this);
  }

  async take(key: string, cost: number, limit: RateLimit): Promise<number> {
    return this.takeNow(key, cost, limit);
  }

  /** The same as `take`, answered synchronously. */
  takeNow(key: string, cost: number, limit: RateLimit): number {
    const now = this.clock.now();
    const b = this.buckets.get(key);
    const tokens = level(b, now, limit);
    if (tokens >= cost) {
      if (!b && this.buckets.size >= SWEEP_AT) this.sweep(now, limit);
      this.buckets.set(key, { tokens: Math.min(limit.burst, tokens - cost), at: now });
      return 0;
    }
    return Math.ceil(((cost - tokens) / limit.ratePerSecond) * 1000);
  }

  async spend(key: string, cost: number, limit: RateLimit): Promise<void> {
    const now = this.clock.now();
    const b = this.buckets.get(key);
    const tokens = level(b, now, limit);
    if (!b && this.buckets.size >= SWEEP_AT) this.sweep(now, limit);
    this.buckets.set(key, { tokens: Math.max(-limit.burst, tokens - cost), at: now });
  }

  private sweep(now: number, limit: RateLimit): void {
    for (const [k, b] of this.buckets) if (level(b, now, limit) >= limit.burst) this.buckets.delete(k);
  }
}
