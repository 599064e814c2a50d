import type { RateLimit, RateLimiter } from '../../ports/rate-limiter.js';

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept before full ones are dropped (a full bucket is the same as none). */
const SWEEP_AT = 100_000;

/** Token buckets in one process. */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly now: () => number = Date.now) {}

  async take(key: string, cost: number, limit: RateLimit): Promise<number> {
    return this.takeNow(key, cost, limit);
  }

  /** The same as `take`, answered synchronously. */
  takeNow(key: string, cost: number, limit: RateLimit): number {
    const now = this.now();
    const b = this.buckets.get(key);
    const tokens = b
      ? Math.min(limit.burst, b.tokens + ((now - b.at) / 1000) * limit.ratePerSecond)
      : limit.burst;
    if (tokens >= cost) {
      if (!b && this.buckets.size >= SWEEP_AT) this.sweep(now, limit);
      this.buckets.set(key, { tokens: Math.min(limit.burst, tokens - cost), at: now });
      return 0;
    }
    return Math.ceil(((cost - tokens) / limit.ratePerSecond) * 1000);
  }

  async spend(key: string, cost: number, limit: RateLimit): Promise<void> {
    const now = this.now();
    const b = this.buckets.get(key);
    const tokens = b
      ? Math.min(limit.burst, b.tokens + ((now - b.at) / 1000) * limit.ratePerSecond)
      : limit.burst;
    if (!b && this.buckets.size >= SWEEP_AT) this.sweep(now, limit);
    this.buckets.set(key, { tokens: Math.max(-limit.burst, tokens - cost), at: now });
  }

  private sweep(now: number, limit: RateLimit): void {
    for (const [k, b] of this.buckets)
      if (b.tokens + ((now - b.at) / 1000) * limit.ratePerSecond >= limit.burst) this.buckets.delete(k);
  }
}
