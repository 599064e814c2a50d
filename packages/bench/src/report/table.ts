/**
 * The plain-text report printed on stdout at the end of a run: the headline figures, then one
 * line per phase and latency metric.
 * @module
 */
import type { BenchResult } from '../model.js';

function pad(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows)
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Renders the summary and phase tables as text. */
export function renderTable(r: BenchResult): string {
  const out: string[] = [];
  out.push(`parley-bench ${r.scenario}  (run ${r.runId}, ${r.startedAt})`);
  out.push('');
  out.push(pad(r.summary.map((s) => [s.label, `${s.value}${s.unit ? ` ${s.unit}` : ''}`])));
  out.push('');
  const rows: string[][] = [
    ['phase', 'latency (ms)', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max', 'delivered/s', 'errors'],
  ];
  for (const p of r.phases) {
    const metrics = Object.entries(p.latency).filter(([m]) => m !== 'lag');
    if (metrics.length === 0)
      metrics.push(['-', { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 }]);
    metrics.forEach(([m, l], i) => {
      rows.push([
        i === 0 ? p.name : '',
        m,
        String(l.count),
        String(l.p50),
        String(l.p90),
        String(l.p99),
        String(l.p999),
        String(l.max),
        i === 0 && p.rates.delivered_per_s !== undefined ? String(p.rates.delivered_per_s) : '',
        i === 0 ? String(p.counters.errors ?? 0) : '',
      ]);
    });
  }
  out.push(pad(rows));
  if (r.notes.length > 0) {
    out.push('');
    for (const n of r.notes) out.push(`note: ${n}`);
  }
  return out.join('\n');
}
