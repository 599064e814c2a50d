/**
 * What a load process has measured since its last snapshot: counters, latency histograms (all
 * samples for the live view and the time series; measured-window samples for the results) and,
 * for groups, per-message last-delivery partials.
 * @module
 */
import { LatencyHistogram } from './histogram.js';
import type { LastDeliveryPartials } from './ipc.js';

/** Interval counters and histograms; `snapshot()` returns the increments and starts a new interval. */
export class Recorder {
  private counters: Record<string, number> = {};
  private readonly all = new Map<string, LatencyHistogram>();
  private readonly win = new Map<string, LatencyHistogram>();
  private last: LastDeliveryPartials = {};
  private lastSize = 0;

  /** Adds `n` to a counter. */
  count(name: string, n = 1): void {
    this.counters[name] = (this.counters[name] ?? 0) + n;
  }

  /** Records a latency (ms); `measured` also puts it into the measured-window histogram. */
  latency(name: string, ms: number, measured: boolean): void {
    let h = this.all.get(name);
    if (!h) {
      h = new LatencyHistogram();
      this.all.set(name, h);
      this.win.set(name, new LatencyHistogram());
    }
    h.recordMs(ms);
    if (measured) this.win.get(name)!.recordMs(ms);
  }

  /** Notes one delivery of a tracked (group) message. */
  lastDelivery(key: string, ms: number, measured: boolean): void {
    const p = this.last[key];
    if (p) {
      p[0]++;
      if (ms > p[1]) p[1] = ms;
    } else {
      this.last[key] = [1, ms, measured ? 1 : 0];
      this.lastSize++;
    }
  }

  /** The increments since the previous snapshot, encoded for IPC; resets them. */
  snapshot(): {
    counters: Record<string, number>;
    hist: Record<string, { all: string; win: string }>;
    last?: LastDeliveryPartials;
  } {
    const hist: Record<string, { all: string; win: string }> = {};
    for (const [name, h] of this.all) {
      if (h.count === 0) continue;
      const w = this.win.get(name)!;
      hist[name] = { all: h.encode(), win: w.count > 0 ? w.encode() : '' };
      h.reset();
      w.reset();
    }
    const counters = this.counters;
    this.counters = {};
    const out: ReturnType<Recorder['snapshot']> = { counters, hist };
    if (this.lastSize > 0) {
      out.last = this.last;
      this.last = {};
      this.lastSize = 0;
    }
    return out;
  }
}
