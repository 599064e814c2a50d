/**
 * Reconnect and retry delays: exponential backoff with full jitter (as in centrifuge-js
 * `src/utils.ts` and the AWS architecture blog's "Exponential Backoff And Jitter"). Full jitter
 * spreads a crowd of clients that lost their server at the same moment evenly over the window,
 * instead of bringing them back in synchronized waves.
 *
 * @module
 */

/** Attempts beyond this do not grow the window further (and keep `2 ** attempt` finite). */
const MAX_EXPONENT = 30;

/**
 * The delay before retry number `attempt` (0 for the first retry):
 * `random() * min(maxMs, minMs * 2 ** attempt)`, so a value in `[0, min(maxMs, minMs * 2^attempt))`.
 *
 * @param attempt - consecutive failures so far, 0-based; negative or fractional values are floored at 0.
 * @param minMs - the window of the first retry.
 * @param maxMs - the largest window.
 * @param random - a source of numbers in `[0, 1)`; injectable for deterministic tests.
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  const a = Math.min(MAX_EXPONENT, Math.max(0, Math.floor(attempt) || 0));
  const lo = Math.max(0, minMs);
  const hi = Math.max(lo, maxMs);
  const cap = Math.min(hi, lo * 2 ** a);
  const r = random();
  const u = r >= 0 && r < 1 ? r : 0;
  return below(Math.floor(u * cap), cap);
}

/**
 * The delay after a "come back later" signal (close 4429 too many connections, 1013 try again
 * later): uniformly in `[maxMs / 2, maxMs)`, never short, still jittered.
 */
export function hardBackoffDelay(maxMs: number, random: () => number): number {
  const hi = Math.max(0, maxMs);
  const r = random();
  const u = r >= 0 && r < 1 ? r : 0;
  return below(Math.floor(hi / 2 + (u * hi) / 2), hi);
}

/** Keeps a floored product strictly below a positive bound (floating point can round u * x up to x). */
function below(value: number, bound: number): number {
  return bound > 0 ? Math.min(value, Math.ceil(bound) - 1) : 0;
}
