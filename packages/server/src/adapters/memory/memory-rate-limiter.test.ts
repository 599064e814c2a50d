// Runs the RateLimiter conformance suite against the in-process buckets, with a second instance
// over the same buckets as the peer.
import { rateLimiterSuite } from '../conformance/rate-limiter.suite.js';
import { MemoryRateLimiter } from './memory-rate-limiter.js';

rateLimiterSuite('MemoryRateLimiter', async () => {
  let clock = 1_000_000;
  const limiter = new MemoryRateLimiter({ now: () => clock });
  return { limiter, peer: limiter.peer(), advance: (ms) => (clock += ms), close: async () => {} };
});
