/**
 * The conformance suite of the `RateLimiter` port: token buckets that allow a burst, refuse past it
 * with the time until enough tokens are back, refill at the rate, keep keys apart and, for a
 * shared adapter, are shared by every instance. The harness's clock is moved by the tests.
 * @module
 */
import assert from 'node:assert/strict';
import type { RateLimiter } from '../../ports/rate-limiter.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface RateLimiterHarness extends Closable {
  limiter: RateLimiter;
  /**
   * A second instance over the same state, as another process of a cluster has
   * (`MemoryRateLimiter.peer()` in one process). Required: every limiter's buckets are shared.
   */
  peer: RateLimiter;
  /** Moves the clock every instance reads forward by `ms`. */
  advance(ms: number): void;
}

const LIMIT = { ratePerSecond: 10, burst: 5 };

/** Registers the `RateLimiter` conformance tests for one adapter. */
export function rateLimiterSuite(
  name: string,
  make: () => Promise<RateLimiterHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'RateLimiter', adapter: name, make, options }, ({ h, check, checkWith, id }) => {
    const take = (key: string, cost = 1) => h().limiter.take(key, cost, LIMIT);

    check('a full bucket allows the burst, then refuses with the time until a token is back', async () => {
      const k = id('u');
      for (let i = 0; i < 5; i++) assert.equal(await take(k), 0, `take ${i + 1}`);
      const wait = await take(k);
      assert.ok(wait > 0 && wait <= 100, `waits ${wait} ms for one token at 10/s`);
    });

    check('a refused take spends nothing; tokens come back at the rate', async () => {
      const k = id('u');
      for (let i = 0; i < 5; i++) await take(k);
      assert.ok((await take(k)) > 0);
      h().advance(100);
      assert.equal(await take(k), 0, 'one token after 100 ms');
      assert.ok((await take(k)) > 0);
      h().advance(10_000);
      for (let i = 0; i < 5; i++) assert.equal(await take(k), 0, 'refilled to the burst, not beyond');
      assert.ok((await take(k)) > 0);
    });

    check('a cost larger than what is left waits for the difference', async () => {
      const k = id('u');
      assert.equal(await take(k, 4), 0);
      const wait = await take(k, 3);
      assert.ok(wait > 100 && wait <= 200, `waits ${wait} ms for 2 more tokens at 10/s`);
      assert.equal(await take(k, 1), 0, 'the refused take spent nothing');
    });

    check('a negative cost gives tokens back, never beyond the burst', async () => {
      const k = id('u');
      assert.equal(await take(k, 5), 0);
      assert.ok((await take(k)) > 0);
      assert.equal(await take(k, -2), 0);
      assert.equal(await take(k, 2), 0, 'the two given back');
      assert.ok((await take(k)) > 0);
      const full = id('u');
      assert.equal(await take(full, -10), 0);
      for (let i = 0; i < 5; i++) assert.equal(await take(full), 0);
      assert.ok((await take(full)) > 0, 'a refund to a full bucket adds nothing');
    });

    check('a spend goes into debt, down to minus the burst; takes wait until it is paid back', async () => {
      const k = id('u');
      await h().limiter.spend(k, 8, LIMIT);
      const wait = await take(k);
      assert.ok(wait > 300 && wait <= 400, `3 tokens of debt and 1 to take at 10/s: ${wait} ms`);
      h().advance(400);
      assert.equal(await take(k), 0, 'paid back');
      const deep = id('u');
      await h().limiter.spend(deep, 1000, LIMIT);
      const capped = await take(deep);
      assert.ok(capped > 500 && capped <= 600, `debt stops at minus the burst: ${capped} ms`);
    });

    check('keys have buckets of their own', async () => {
      const a = id('u');
      const b = id('u');
      for (let i = 0; i < 5; i++) await take(a);
      assert.ok((await take(a)) > 0);
      assert.equal(await take(b), 0);
    });

    checkWith('peer', 'second instance')('every instance draws from the same bucket', async (peer) => {
      const k = id('u');
      for (let i = 0; i < 3; i++) assert.equal(await take(k), 0);
      for (let i = 0; i < 2; i++) assert.equal(await peer.take(k, 1, LIMIT), 0);
      assert.ok((await peer.take(k, 1, LIMIT)) > 0);
      assert.ok((await take(k)) > 0);
    });
  });
}
