// Runs the RateLimiter conformance suite against the in-process buckets.
import { rateLimiterSuite } from '../conformance/rate-limiter.suite.js';
import { MemoryRateLimiter } from './memory-rate-limiter.js';

rateLimiterSuite(
  'MemoryRateLimiter',
  async () => {
    let clock = 1_000_000;
    return {
      limiter: new MemoryRateLimiter(() => clock),
      advance: (ms) => (clock += ms),
      close: async () => {},
    };
  },
  { skip: { 'every instance draws from the same bucket': 'MemoryRateLimiter is one process’s table' } },
);
