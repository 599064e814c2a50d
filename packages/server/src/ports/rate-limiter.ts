/** A token bucket's shape: `ratePerSecond` tokens are added per second, up to `burst`. */
export interface RateLimit {
  ratePerSecond: number;
  burst: number;
}

/**
 * Per-key token buckets (key: a user, an IP, …). Embedded: a table in the process. Cluster: Redis,
 * so a user's limit holds across every gateway. Soft state: losing it only forgets spent tokens.
 */
export interface RateLimiter {
  /**
   * Takes `cost` tokens from `key`'s bucket; resolves with 0 when they were there (and taken), or
   * with how many ms until they will be (nothing is taken then). A negative `cost` gives tokens
   * back (work charged at its bound that turned out smaller), never beyond `burst`.
   */
  take(key: string, cost: number, limit: RateLimit): Promise<number>;
  /**
   * Spends `cost` tokens whether or not they are there (work already done whose cost is known only
   * afterwards): the bucket may go into debt, down to minus `burst`, and takes refuse until it is
   * paid back at the rate.
   */
  spend(key: string, cost: number, limit: RateLimit): Promise<void>;
}
