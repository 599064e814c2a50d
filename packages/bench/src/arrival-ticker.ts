import { epochNow } from './clock.js';
import type { LatencyHistogram } from './histogram.js';
import type { Run } from './run.js';

/**
 * Adds an out-of-band endpoint's arrivals (push notifications, webhook events) to the timeline
 * every second, just after each whole second, as the stats of a pseudo-worker (`notified`).
 * Returns the function that stops it.
 */
export function startArrivalTicker(run: Run, worker: number, source: { countSince(): number }): () => void {
  let last = epochNow();
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    const t = epochNow();
    const cpu = process.cpuUsage();
    run.cluster.ingest({
      type: 'stats',
      worker,
      t,
      from: last,
      open: 0,
      counters: { notified: source.countSince() },
      hist: {},
      cpuMs: (cpu.user + cpu.system) / 1000,
      rss: process.memoryUsage.rss(),
    });
    last = t;
    schedule();
  };
  const schedule = (): void => {
    const now = epochNow();
    timer = setTimeout(tick, Math.floor(now / 1000) * 1000 + 1001 - now);
    timer.unref();
  };
  schedule();
  return () => clearTimeout(timer);
}

/**
 * Hands an out-of-band delay (`metric`: push's, a webhook's) to the recorder as a pseudo-worker's
 * stats: one histogram per second of arrival for the timeline, and the measured window's for the
 * phase.
 */
export function ingestDelays(
  run: Run,
  worker: number,
  metric: string,
  perSecond: ReadonlyMap<number, LatencyHistogram>,
  win: LatencyHistogram,
): void {
  const stats = (t: number, from: number, hist: { all: string; win: string }) =>
    run.cluster.ingest({
      type: 'stats',
      worker,
      t,
      from,
      open: 0,
      counters: {},
      hist: { [metric]: hist },
      cpuMs: 0,
      rss: 0,
    });
  for (const [sec, h] of [...perSecond].sort((x, y) => x[0] - y[0]))
    stats(sec * 1000 + 999, sec * 1000 - 1, { all: h.encode(), win: '' });
  if (win.count > 0) stats(epochNow(), epochNow() - 1, { all: '', win: win.encode() });
}
