// Runs the RateLimiter conformance suite against real Redis, with two instances sharing buckets.
import { randomBytes } from 'node:crypto';
import { rateLimiterSuite } from '@parley/server/adapters/conformance/rate-limiter.suite';
import { requireEngine } from '@parley/server/test/engines';
import { RedisRateLimiter } from './redis-rate-limiter.js';

const url = requireEngine('redis', 'RedisRateLimiter against real Redis');

if (url !== undefined) {
  rateLimiterSuite('RedisRateLimiter', async () => {
    let clock = 1_000_000;
    const now = () => clock;
    const prefix = `parley-test-${randomBytes(4).toString('hex')}:`;
    const limiter = await RedisRateLimiter.open(url, { prefix, now });
    const peer = await RedisRateLimiter.open(url, { prefix, now });
    return {
      limiter,
      peer,
      advance: (ms) => (clock += ms),
      close: async () => {
        await limiter.close();
        await peer.close();
      },
    };
  });
}
