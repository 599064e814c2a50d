/**
 * One clock for every load process: wall-clock milliseconds with sub-millisecond resolution
 * (`performance.timeOrigin + performance.now()`), shifted by an offset measured against the parent
 * process at start-up. Intended send times are written into messages in this clock and read back
 * by receivers that may live in another process, so all of them must agree on it.
 * @module
 */

let offsetMs = 0;

/** Milliseconds since the Unix epoch, fractional, monotonic within a process, aligned across load processes. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now() + offsetMs;
}

/** Shifts this process's clock so that it agrees with the parent's (see `estimateOffset`). */
export function setClockOffset(ms: number): void {
  offsetMs = ms;
}

/**
 * The offset that makes a child's clock agree with the parent's, from ping-pong samples: for each,
 * the parent's time at the midpoint of the round trip minus the child's reading. The sample with
 * the shortest round trip is the most accurate.
 */
export function estimateOffset(samples: { sentAt: number; childTime: number; receivedAt: number }[]): number {
  let best = samples[0];
  for (const s of samples) if (best && s.receivedAt - s.sentAt < best.receivedAt - best.sentAt) best = s;
  if (!best) return 0;
  return (best.sentAt + best.receivedAt) / 2 - best.childTime;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
