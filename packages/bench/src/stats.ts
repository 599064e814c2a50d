/**
 * The parent's side of measurement: load processes' snapshots are added into the run's
 * per-second timeline and into the current phase's totals; group messages' last deliveries are
 * merged across processes here, since a group's members are spread over several of them.
 * @module
 */
import { LatencyHistogram, round3 } from './histogram.js';
import type { StatsMessage } from './ipc.js';
import type { PhaseResult, TimelinePoint } from './model.js';

/** Merges a counter map into another. */
function addCounters(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

function histFor(map: Map<string, LatencyHistogram>, name: string): LatencyHistogram {
  let h = map.get(name);
  if (!h) {
    h = new LatencyHistogram();
    map.set(name, h);
  }
  return h;
}

interface Bucket {
  phase: string;
  counters: Record<string, number>;
  hist: Map<string, LatencyHistogram>;
  open: Map<number, number>;
  cpu: Map<number, number>;
  rss: Map<number, number>;
}

/** Per-second aggregation of every snapshot, for the progress line and the charts. */
export class Timeline {
  private readonly buckets = new Map<number, Bucket>();
  private readonly lastCpu = new Map<number, { t: number; cpuMs: number }>();
  /** Latest open-connection count per load process. */
  readonly open = new Map<number, number>();

  constructor(readonly startedAt: number) {}

  add(s: StatsMessage, phase: string, decoded: Map<string, LatencyHistogram>): void {
    // Keyed by the wall-clock second the increments happened in (snapshots are aligned to seconds).
    const sec = Math.floor((s.from + 1) / 1000);
    let b = this.buckets.get(sec);
    if (!b) {
      b = { phase, counters: {}, hist: new Map(), open: new Map(), cpu: new Map(), rss: new Map() };
      this.buckets.set(sec, b);
    }
    if (phase) b.phase = phase;
    addCounters(b.counters, s.counters);
    for (const [name, h] of decoded) histFor(b.hist, name).add(h);
    b.open.set(s.worker, s.open);
    this.open.set(s.worker, s.open);
    b.rss.set(s.worker, s.rss);
    const prev = this.lastCpu.get(s.worker);
    if (prev && s.t > prev.t) {
      const pct = ((s.cpuMs - prev.cpuMs) / (s.t - prev.t)) * 100;
      b.cpu.set(s.worker, Math.max(b.cpu.get(s.worker) ?? 0, pct));
    }
    this.lastCpu.set(s.worker, { t: s.t, cpuMs: s.cpuMs });
  }

  /** Open connections now, over all load processes. */
  openNow(): number {
    let n = 0;
    for (const v of this.open.values()) n += v;
    return n;
  }

  /** The wall-clock second `sec` (epoch seconds; for the live progress line). */
  bucket(sec: number): { counters: Record<string, number>; hist: Map<string, LatencyHistogram> } | undefined {
    return this.buckets.get(sec);
  }

  points(): TimelinePoint[] {
    const secs = [...this.buckets.keys()].sort((a, b) => a - b);
    const out: TimelinePoint[] = [];
    let open = 0;
    for (const sec of secs) {
      const b = this.buckets.get(sec)!;
      if (b.open.size > 0) open = [...b.open.values()].reduce((x, y) => x + y, 0);
      const latency: TimelinePoint['latency'] = {};
      for (const [name, h] of b.hist) {
        latency[name] = {
          p50: round3(h.at(50)),
          p90: round3(h.at(90)),
          p99: round3(h.at(99)),
          max: round3(h.at(100)),
          count: h.count,
        };
      }
      out.push({
        t: Math.round((sec * 1000 + 500 - this.startedAt) / 100) / 10,
        phase: b.phase,
        open,
        counters: b.counters,
        latency,
        genCpuPct: Math.round([...b.cpu.values()].reduce((x, y) => x + y, 0)),
        genRssBytes: [...b.rss.values()].reduce((x, y) => x + y, 0),
      });
    }
    return out;
  }
}

/** How to merge group messages' partial last deliveries: expected deliveries per message key. */
export type ExpectedDeliveries = (key: string) => number;

/** Totals of one phase. */
export class PhaseRecorder {
  readonly counters: Record<string, number> = {};
  private readonly win = new Map<string, LatencyHistogram>();
  private readonly partial = new Map<string, { count: number; max: number; measured: boolean }>();
  readonly facts: PhaseResult['facts'] = {};
  endedAt = 0;

  constructor(
    readonly name: string,
    readonly target: 'parley' | 'relay',
    readonly startedAt: number,
    private readonly expected?: ExpectedDeliveries,
  ) {}

  add(s: StatsMessage, decodedWin: Map<string, LatencyHistogram>): void {
    addCounters(this.counters, s.counters);
    for (const [name, h] of decodedWin) histFor(this.win, name).add(h);
    if (s.last && this.expected) {
      const all = histFor(this.win, 'last_delivery_all');
      for (const [key, [count, max, measured]] of Object.entries(s.last)) {
        let p = this.partial.get(key);
        if (!p) {
          p = { count: 0, max: 0, measured: measured === 1 };
          this.partial.set(key, p);
        }
        p.count += count;
        if (max > p.max) p.max = max;
        if (p.count >= this.expected(key)) {
          this.partial.delete(key);
          all.recordMs(p.max);
          if (p.measured) histFor(this.win, 'last_delivery').recordMs(p.max);
          this.counters.messages_fully_delivered = (this.counters.messages_fully_delivered ?? 0) + 1;
        }
      }
    }
  }

  /** A counter's value (0 when never counted). */
  counter(name: string): number {
    return this.counters[name] ?? 0;
  }

  /** The current measured-window histogram of a metric, if any sample was recorded. */
  histogram(name: string): LatencyHistogram | undefined {
    return this.win.get(name);
  }

  /** Freezes the phase into its result; `runStart` converts times to offsets. */
  result(runStart: number, extra: Partial<PhaseResult> = {}): PhaseResult {
    const measuredPartials = [...this.partial.values()].filter((p) => p.measured).length;
    if (this.expected && measuredPartials > 0) this.counters.messages_not_fully_delivered = measuredPartials;
    const latency: PhaseResult['latency'] = {};
    const spectrum: PhaseResult['spectrum'] = {};
    const histograms: PhaseResult['histograms'] = {};
    for (const [name, h] of this.win) {
      if (h.count === 0 || name === 'last_delivery_all') continue;
      latency[name] = h.summary();
      spectrum[name] = h.spectrum();
      histograms[name] = h.encode();
    }
    return {
      name: this.name,
      target: this.target,
      startS: round3((this.startedAt - runStart) / 1000),
      endS: round3(((this.endedAt || this.startedAt) - runStart) / 1000),
      counters: { ...this.counters },
      rates: {},
      latency,
      spectrum,
      histograms,
      facts: { ...this.facts },
      ...extra,
    };
  }
}
