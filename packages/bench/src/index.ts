/**
 * @parley/bench: Parley's load generator. The CLI (`npm run bench -- <scenario>`) is the main
 * entry; this module exports the result model and the report renderers for tools that read or
 * compare the JSON results.
 * @module
 */
export type { LatencySummary, SpectrumPoint } from './histogram.js';
export { LatencyHistogram } from './histogram.js';
export type {
  BenchResult,
  PhaseResult,
  ServerMetricsSummary,
  ServerSample,
  SummaryRow,
  TargetInfo,
  TimelinePoint,
} from './model.js';
export { startRelay } from './relay-server.js';
export { renderHtml } from './report/html.js';
export { renderTable } from './report/table.js';
