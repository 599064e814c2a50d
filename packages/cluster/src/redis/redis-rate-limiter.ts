import type { RateLimit, RateLimiter } from '@parley/server/ports/rate-limiter';
import { Redis } from 'ioredis';
import type { RedisClientOptions } from './redis-presence.js';

/**
 * KEYS: the bucket. ARGV: now (ms), cost, rate per second, burst. Returns 0 (taken) or the wait in
 * ms. The bucket expires once it would be full again, so idle keys cost no memory.
 */
const TAKE = `
local now, cost, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if b[1] then tokens = math.min(burst, tonumber(b[1]) + (now - tonumber(b[2])) / 1000 * rate) end
if tokens < cost then return math.ceil((cost - tokens) / rate * 1000) end
tokens = math.min(burst, tokens - cost)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return 0
`;

/** KEYS: the bucket. ARGV: now (ms), cost, rate per second, burst. Spends, into debt down to -burst. */
const SPEND = `
local now, cost, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if b[1] then tokens = math.min(burst, tonumber(b[1]) + (now - tonumber(b[2])) / 1000 * rate) end
tokens = math.max(-burst, tokens - cost)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return 0
`;

type LimiterRedis = Redis & {
  rateTake(key: string, ...args: (string | number)[]): Promise<number>;
  rateSpend(key: string, ...args: (string | number)[]): Promise<number>;
};

/** Token buckets in Redis, shared by every process of a cluster (one atomic script per take). */
export class RedisRateLimiter implements RateLimiter {
  private constructor(
    private readonly redis: LimiterRedis,
    private readonly prefix: string,
    private readonly now: () => number,
  ) {}

  static async open(
    url: string,
    options: { prefix?: string; now?: () => number; redis?: RedisClientOptions } = {},
  ): Promise<RedisRateLimiter> {
    const redis = new Redis(url, {
      lazyConnect: true,
      commandTimeout: 2_000,
      maxRetriesPerRequest: 2,
      enableAutoPipelining: true,
      ...options.redis,
    }) as LimiterRedis;
    redis.defineCommand('rateTake', { numberOfKeys: 1, lua: TAKE });
    redis.defineCommand('rateSpend', { numberOfKeys: 1, lua: SPEND });
    await redis.connect();
    return new RedisRateLimiter(redis, options.prefix ?? 'parley:', options.now ?? Date.now);
  }

  take(key: string, cost: number, limit: RateLimit): Promise<number> {
    return this.redis.rateTake(
      `${this.prefix}rl:{${key}}`,
      this.now(),
      cost,
      limit.ratePerSecond,
      limit.burst,
    );
  }

  async spend(key: string, cost: number, limit: RateLimit): Promise<void> {
    await this.redis.rateSpend(
      `${this.prefix}rl:{${key}}`,
      this.now(),
      cost,
      limit.ratePerSecond,
      limit.burst,
    );
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}
