/**
 * The self-contained HTML report: headline table, notes, charts (throughput and latency
 * percentiles over time, connections, server RSS and CPU, latency distributions of the measured
 * phases), the phase table and the environment, in one file with inline CSS and inline SVG.
 * @module
 */
import type { BenchResult, PhaseResult } from '../model.js';
import { type Band, COLORS, esc, lineChart } from './svg.js';

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:960px;color:#222;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777;fill:#777}
.notes li{margin:2px 0}svg{display:block;margin:8px 0;max-width:100%;height:auto}
svg .title{font-size:14px;font-weight:600;fill:#222}svg .tick{font-size:11px;fill:#555}svg .axis{font-size:12px;fill:#333}
svg .legend{font-size:12px;fill:#333}svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#999}
svg .band0{fill:#f3f6fb}svg .band1{fill:#fbf6ef}svg .bandlabel{font-size:10px;fill:#888}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}`;

/** Percentile-spectrum x position: log10(1 / (1 − p)), so 90, 99, 99.9 … are evenly spaced. */
function spectrumX(p: number): number {
  return Math.log10(1 / Math.max(1e-6, 1 - p / 100));
}

const SPECTRUM_TICKS = [0, 90, 99, 99.9, 99.99, 99.999].map((p) => ({ value: spectrumX(p), label: `${p}%` }));

const METRIC_LABELS: Record<string, string> = {
  reply: 'send→reply',
  deliver: 'send→deliver',
  last_delivery: 'send→last delivery',
  connect: 'connect',
  synced: 'reconnect→synced',
  ping: 'heartbeat ping→reply',
  lag: 'generator send lag',
  push: 'message ts→push arrival',
};

function bands(r: BenchResult): Band[] {
  return r.phases
    .filter((p) => p.endS - p.startS >= 0.5)
    .map((p) => ({ from: p.startS, to: p.endS, label: p.name }));
}

function timelineCharts(r: BenchResult): string[] {
  const tl = r.timeline;
  const b = bands(r);
  const out: string[] = [];
  const rateKeys = [
    'sent',
    'replied',
    'delivered',
    'notified',
    'connected',
    'synced',
    'receipts_sent',
    'errors',
  ].filter((k) => tl.some((p) => (p.counters[k] ?? 0) > 0));
  out.push(
    lineChart({
      title: 'Throughput over time (per second, all load processes)',
      xLabel: 'seconds since start',
      yLabel: 'per second',
      bands: b,
      series: rateKeys.map((k, i) => ({
        name: `${k}/s`,
        color: k === 'errors' ? '#d62728' : COLORS[i % COLORS.length]!,
        points: tl.map((p) => [p.t, p.counters[k] ?? 0] as [number, number]),
      })),
    }),
  );
  const metrics = ['push', 'deliver', 'reply', 'last_delivery', 'synced', 'connect'].filter((m) =>
    tl.some((p) => p.latency[m]),
  );
  for (const m of metrics.slice(0, 2)) {
    out.push(
      lineChart({
        title: `${METRIC_LABELS[m] ?? m} latency percentiles over time (samples completed in each second, warm-up included)`,
        xLabel: 'seconds since start',
        yLabel: 'ms (log scale)',
        yLog: true,
        bands: b,
        series: (['p50', 'p90', 'p99', 'max'] as const).map((q, i) => ({
          name: q,
          color: COLORS[i]!,
          dashed: q === 'max',
          points: tl.filter((p) => p.latency[m]).map((p) => [p.t, p.latency[m]![q]] as [number, number]),
        })),
      }),
    );
  }
  out.push(
    lineChart({
      title: 'Open connections (load side) and load-process CPU',
      xLabel: 'seconds since start',
      yLabel: 'connections / % of a core',
      bands: b,
      series: [
        { name: 'open connections', color: COLORS[0]!, points: tl.map((p) => [p.t, p.open]) },
        {
          name: 'load processes CPU %',
          color: COLORS[3]!,
          points: tl.map((p) => [p.t, p.genCpuPct]),
          dashed: true,
        },
      ],
    }),
  );
  const kinds = [...new Set(r.server.map((s) => s.target))];
  if (kinds.length > 0) {
    out.push(
      lineChart({
        title: 'Server RSS (summed over its processes, from /proc)',
        xLabel: 'seconds since start',
        yLabel: 'MiB',
        bands: b,
        series: kinds.map((k, i) => ({
          name: `${k} RSS`,
          color: COLORS[i]!,
          points: r.server
            .filter((s) => s.target === k)
            .map((s) => [s.t, s.rssBytes / 1048576] as [number, number]),
        })),
      }),
    );
    out.push(
      lineChart({
        title: 'Server CPU (% of one core, summed over its processes, from /proc)',
        xLabel: 'seconds since start',
        yLabel: '% of a core',
        bands: b,
        series: kinds.map((k, i) => ({
          name: `${k} CPU`,
          color: COLORS[i + 2]!,
          points: r.server.filter((s) => s.target === k).map((s) => [s.t, s.cpuPct] as [number, number]),
        })),
      }),
    );
  }
  return out;
}

function distributionCharts(r: BenchResult): string[] {
  const measured = r.phases.filter((p) => Object.keys(p.spectrum).some((m) => m !== 'lag' && m !== 'ping'));
  const out: string[] = [];
  for (const metric of ['push', 'deliver', 'reply', 'last_delivery', 'synced', 'connect']) {
    const withData = measured.filter((p) => p.spectrum[metric]?.length);
    if (withData.length === 0) continue;
    // Measured runs first, then the latest probe steps, at most 8 lines.
    const phases = [
      ...withData.filter((p) => !p.facts.probe),
      ...withData.filter((p) => p.facts.probe).reverse(),
    ].slice(0, 8);
    out.push(
      lineChart({
        title: `${METRIC_LABELS[metric] ?? metric} latency distribution (measured windows)`,
        xLabel: 'percentile',
        yLabel: 'ms (log scale)',
        yLog: true,
        xTicks: SPECTRUM_TICKS,
        dots: true,
        series: phases.map((p, i) => ({
          name: p.name,
          color: COLORS[i % COLORS.length]!,
          points: p.spectrum[metric]!.map((s) => [spectrumX(s.percentile), s.ms] as [number, number]),
        })),
      }),
    );
  }
  return out;
}

function cell(v: unknown): string {
  return typeof v === 'number' ? `<td class="num">${v}</td>` : `<td>${esc(String(v ?? ''))}</td>`;
}

function phaseTable(phases: PhaseResult[]): string {
  const rows = phases.flatMap((p) => {
    const metrics = Object.entries(p.latency);
    const head = `<td rowspan="${Math.max(1, metrics.length)}">${esc(p.name)}<br><span class="muted">${p.startS}–${p.endS} s${
      p.offeredRate !== undefined ? `, offered ${Math.round(p.offeredRate)}/s` : ''
    }${p.rates.delivered_per_s !== undefined ? `, delivered ${p.rates.delivered_per_s}/s` : ''}, errors ${p.counters.errors ?? 0}</span></td>`;
    if (metrics.length === 0)
      return [`<tr>${head}<td colspan="7" class="muted">no latency samples</td></tr>`];
    return metrics.map(
      ([m, l], i) =>
        `<tr>${i === 0 ? head : ''}<td>${esc(METRIC_LABELS[m] ?? m)}</td>${[l.count, l.p50, l.p90, l.p99, l.p999, l.max].map(cell).join('')}</tr>`,
    );
  });
  return `<table><tr><th>phase</th><th>latency (ms)</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>${rows.join('')}</table>`;
}

function kvTable(entries: [string, unknown][]): string {
  return `<table>${entries.map(([k, v]) => `<tr><th>${esc(k)}</th>${cell(v)}</tr>`).join('')}</table>`;
}

/** Renders a result as one self-contained HTML document. */
export function renderHtml(r: BenchResult): string {
  const summary = `<table><tr><th>figure</th><th>value</th></tr>${r.summary
    .map((s) => `<tr><td>${esc(s.label)}</td>${cell(s.unit ? `${s.value} ${s.unit}` : s.value)}</tr>`)
    .join('')}</table>`;
  const notes =
    r.notes.length > 0
      ? `<h2>Notes</h2><ul class="notes">${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`
      : '';
  const serverMetrics = r.serverMetrics
    .map((m) => `<h3>${esc(m.from)} (${m.intervalS} s)</h3>${kvTable(Object.entries(m.values))}`)
    .join('');
  const facts = r.phases
    .filter((p) => Object.keys(p.facts).length > 0 || Object.keys(p.rates).length > 0)
    .map(
      (p) =>
        `<h3>${esc(p.name)}</h3>${kvTable([...Object.entries(p.rates), ...Object.entries(p.facts), ...Object.entries(p.counters)])}`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Parley bench: ${esc(r.scenario)} ${esc(r.startedAt)}</title><style>${CSS}</style></head><body>
<h1>Parley bench: ${esc(r.scenario)}</h1>
<div class="muted">${esc(r.startedAt)} → ${esc(r.finishedAt)} · run ${esc(r.runId)} · <code>${esc(r.argv.join(' '))}</code></div>
<h2>Results</h2>${summary}${notes}
<h2>Over time</h2>${timelineCharts(r).join('\n')}
<h2>Latency distribution</h2>${distributionCharts(r).join('\n') || '<p class="muted">no latency samples</p>'}
<h2>Phases</h2>${phaseTable(r.phases)}
<p class="muted">Latency is measured from each message's intended send time (open loop: the schedule never waits for the server), so queueing anywhere counts. Warm-up samples are excluded from the phase figures; the over-time charts include them.</p>
<h2>Server metrics (/metrics, start and end of each load window)</h2>${serverMetrics || '<p class="muted">none</p>'}
<h2>Phase details</h2>${facts}
<h2>Environment and targets</h2>${kvTable(Object.entries(r.environment))}
${r.targets.map((t) => kvTable(Object.entries(t).map(([k, v]) => [k, Array.isArray(v) ? v.join(' ') : v]))).join('')}
<details><summary>Options</summary><pre>${esc(JSON.stringify(r.options, null, 2))}</pre></details>
</body></html>
`;
}
