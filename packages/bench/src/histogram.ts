/**
 * Latency histograms: HdrHistogram (hdr-histogram-js) recording microseconds with 3 significant
 * digits, so p99.9 and max are exact to 0.1 %, whatever the sample count. Load processes send
 * interval snapshots to the parent as compressed base64, which the parent adds up.
 * @module
 */
import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type Histogram,
} from 'hdr-histogram-js';

/** p50/p90/p99/p99.9/max (and mean) of a latency histogram, in milliseconds. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** One point of a percentile spectrum: the latency (ms) at or under which `percentile` % of samples fall. */
export interface SpectrumPoint {
  percentile: number;
  ms: number;
}

/** Percentiles of the latency-distribution chart (the classic HdrHistogram percentile plot). */
const SPECTRUM = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100];

/** A latency histogram in microseconds (1 µs … 1 h, auto-resizing beyond). */
export class LatencyHistogram {
  readonly h: Histogram;

  constructor(h?: Histogram) {
    this.h =
      h ??
      build({
        lowestDiscernibleValue: 1,
        highestTrackableValue: 3_600_000_000,
        numberOfSignificantValueDigits: 3,
      });
  }

  /** Records one latency given in milliseconds (negative values, from clock jitter, count as 0). */
  recordMs(ms: number): void {
    this.h.recordValue(ms > 0 ? Math.round(ms * 1000) : 0);
  }

  get count(): number {
    return this.h.totalCount;
  }

  /** Adds another histogram's counts to this one. */
  add(other: LatencyHistogram): void {
    if (other.count > 0) this.h.add(other.h);
  }

  reset(): void {
    this.h.reset();
  }

  /** The value at a percentile (0..100), in milliseconds. */
  at(percentile: number): number {
    return this.h.getValueAtPercentile(percentile) / 1000;
  }

  summary(): LatencySummary {
    const n = this.h.totalCount;
    if (n === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    const max = this.h.maxValue / 1000;
    // A percentile is reported as the top of its bucket, which can pass the exact max.
    const q = (p: number): number => round3(Math.min(this.at(p), max));
    return {
      count: n,
      mean: round3(this.h.mean / 1000),
      p50: q(50),
      p90: q(90),
      p99: q(99),
      p999: q(99.9),
      max: round3(max),
    };
  }

  /** Latency at fixed percentiles from 0 to 100, for the distribution chart. */
  spectrum(): SpectrumPoint[] {
    if (this.h.totalCount === 0) return [];
    return SPECTRUM.map((p) => ({
      percentile: p,
      ms: round3(Math.min(this.at(p), this.h.maxValue / 1000)),
    }));
  }

  /** Compressed base64 (HdrHistogram's V2 encoding): what crosses IPC and what the JSON report keeps. */
  encode(): string {
    return encodeIntoCompressedBase64(this.h);
  }

  /** Reads a histogram written by `encode`. */
  static decode(base64: string): LatencyHistogram {
    return new LatencyHistogram(decodeFromCompressedBase64(base64));
  }
}

/** Rounds to 3 decimals (microsecond precision for milliseconds). */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
