/**
 * The shape of a benchmark result: what the JSON file holds, what the table and the HTML report
 * are made from. Times are seconds since the run started unless a name says otherwise; latencies
 * are milliseconds.
 * @module
 */
import type { LatencySummary, SpectrumPoint } from './histogram.js';

/** One phase of a run (connect, a throughput probe step, the measured load, the resync…). */
export interface PhaseResult {
  name: string;
  /** Which system it ran against. */
  target: 'parley' | 'relay';
  startS: number;
  endS: number;
  /** Offered rate (messages/s, all load processes), for load phases. */
  offeredRate?: number;
  warmupS?: number;
  /** Length of the measured window. */
  durationS?: number;
  /** Counters summed over load processes (sent, replied, delivered, errors, error:<code>, …). */
  counters: Record<string, number>;
  /** Per-second rates over the measured window (by arrival time for replies and deliveries). */
  rates: Record<string, number>;
  /** Latency of samples whose intended time fell in the measured window. */
  latency: Record<string, LatencySummary>;
  spectrum: Record<string, SpectrumPoint[]>;
  /** The measured-window histograms, HdrHistogram compressed base64 (µs), for later analysis. */
  histograms: Record<string, string>;
  /** Free-form facts of the phase (saturated, achieved rate, …). */
  facts: Record<string, number | string | boolean>;
}

/** One second of the run, all load processes together. */
export interface TimelinePoint {
  t: number;
  phase: string;
  /** Open authenticated connections at the end of the second. */
  open: number;
  /** Counter increments in this second. */
  counters: Record<string, number>;
  /** Latency of samples completed in this second (all samples, warm-up included). */
  latency: Record<string, { p50: number; p90: number; p99: number; max: number; count: number }>;
  /** Load processes' CPU (% of one core, summed) and RSS. */
  genCpuPct: number;
  genRssBytes: number;
}

/** A sample of the server's processes from /proc. */
export interface ServerSample {
  t: number;
  target: 'parley' | 'relay';
  pids: number;
  rssBytes: number;
  /** CPU since the previous sample, % of one core summed over the processes. */
  cpuPct: number;
  cpuSeconds: number;
}

/** What is known about a system under test. */
export interface TargetInfo {
  kind: 'parley' | 'relay';
  url: string;
  metricsUrl?: string;
  spawned: boolean;
  command?: string[];
  /** The pids given or spawned (their child processes are sampled too). */
  pids: number[];
  /** Every pid sampled at some point (roots and descendants). */
  sampledPids: number[];
}

/** Server metrics scraped from /metrics at the start and end of the measured part. */
export interface ServerMetricsSummary {
  target: 'parley' | 'relay';
  from: string;
  to: string;
  intervalS: number;
  values: Record<string, number>;
}

/** One line of the headline table. */
export interface SummaryRow {
  label: string;
  value: number | string;
  unit?: string;
}

/** A whole run. */
export interface BenchResult {
  tool: 'parley-bench';
  formatVersion: 1;
  scenario: string;
  runId: string;
  startedAt: string;
  finishedAt: string;
  argv: string[];
  options: Record<string, unknown>;
  environment: Record<string, string | number>;
  targets: TargetInfo[];
  summary: SummaryRow[];
  phases: PhaseResult[];
  timeline: TimelinePoint[];
  server: ServerSample[];
  serverMetrics: ServerMetricsSummary[];
  notes: string[];
}
