import { epochNow } from './clock.js';
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
