/**
 * A small SVG line-chart drawer for the self-contained HTML report: axes with round ticks, linear
 * or log y, a legend, and shaded phase bands. No library and no CDN: the report must open
 * anywhere, offline, years later.
 * @module
 */

/** One line. */
export interface Series {
  name: string;
  color: string;
  points: [number, number][];
  dashed?: boolean;
}

/** A shaded interval of x with a label (a phase of the run). */
export interface Band {
  from: number;
  to: number;
  label: string;
}

/** What to draw. */
export interface ChartSpec {
  title: string;
  series: Series[];
  xLabel: string;
  yLabel: string;
  yLog?: boolean;
  /** Fixed x ticks (value already in x units, label to print); automatic when absent. */
  xTicks?: { value: number; label: string }[];
  bands?: Band[];
  width?: number;
  height?: number;
  /** Draw dots at points (for short series). */
  dots?: boolean;
}

/** The palette of the report's lines. */
export const COLORS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
];

/** Escapes text for HTML and SVG. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/** A short label for a number (1.5k, 2M, 0.25). */
export function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 100 || a === 0) return String(Math.round(v));
  return String(+v.toPrecision(3));
}

/** Draws a line chart as an <svg> element. */
export function lineChart(spec: ChartSpec): string {
  const W = spec.width ?? 900;
  // Legend entries wrap onto extra rows below the chart.
  const legend: { name: string; color: string; x: number; row: number }[] = [];
  let lx = 64;
  let row = 0;
  for (const s of spec.series) {
    const w = 24 + s.name.length * 6.5;
    if (lx + w > W - 8 && lx > 64) {
      lx = 64;
      row++;
    }
    legend.push({ name: s.name, color: s.color, x: lx, row });
    lx += w;
  }
  const H = (spec.height ?? 300) + row * 16;
  const m = { l: 64, r: 16, t: 30, b: 58 + row * 16 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const all = spec.series.flatMap((s) => s.points);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(spec.title)}">`,
  );
  parts.push(`<text x="${m.l}" y="18" class="title">${esc(spec.title)}</text>`);
  if (all.length === 0) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="muted">no data</text></svg>`);
    return parts.join('');
  }
  const xs = all.map((p) => p[0]);
  let x0 = Math.min(...xs, ...(spec.xTicks?.map((t) => t.value) ?? []));
  let x1 = Math.max(...xs, ...(spec.xTicks?.map((t) => t.value) ?? []));
  if (x1 === x0) x1 = x0 + 1;
  const ysRaw = all.map((p) => p[1]).filter((y) => Number.isFinite(y));
  let y0: number;
  let y1: number;
  let yTicks: number[];
  const log = spec.yLog === true;
  if (log) {
    const pos = ysRaw.filter((y) => y > 0);
    const lo = pos.length > 0 ? Math.min(...pos) : 0.01;
    const hi = pos.length > 0 ? Math.max(...pos) : 1;
    y0 = 10 ** Math.floor(Math.log10(lo));
    y1 = 10 ** Math.ceil(Math.log10(hi));
    if (y1 <= y0) y1 = y0 * 10;
    yTicks = [];
    for (let v = y0; v <= y1 * 1.0001; v *= 10) yTicks.push(v);
  } else {
    y0 = 0;
    y1 = Math.max(...ysRaw, 0) * 1.08 || 1;
    yTicks = niceTicks(0, y1);
    y1 = Math.max(y1, yTicks.at(-1) ?? y1);
  }
  if (spec.xTicks === undefined) {
    const t = niceTicks(x0, x1, 8);
    x0 = Math.min(x0, t[0] ?? x0);
  }
  const sx = (x: number): number => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => {
    if (log) {
      const v = Math.max(y, y0);
      return m.t + ph - ((Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * ph;
    }
    return m.t + ph - ((y - y0) / (y1 - y0)) * ph;
  };
  // Phase bands.
  (spec.bands ?? []).forEach((b, i) => {
    const a = Math.max(sx(b.from), m.l);
    const z = Math.min(sx(b.to), m.l + pw);
    if (z - a < 1) return;
    parts.push(
      `<rect x="${a.toFixed(1)}" y="${m.t}" width="${(z - a).toFixed(1)}" height="${ph}" class="band${i % 2}"/>`,
    );
    if (z - a > 40)
      parts.push(
        `<text x="${((a + z) / 2).toFixed(1)}" y="${m.t + 12}" text-anchor="middle" class="bandlabel">${esc(b.label.length > (z - a) / 6 ? `${b.label.slice(0, Math.max(3, Math.floor((z - a) / 6) - 1))}…` : b.label)}</text>`,
      );
  });
  // Grid and axes.
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" class="grid"/>`);
    parts.push(
      `<text x="${m.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" class="tick">${fmt(t)}</text>`,
    );
  }
  const xt = spec.xTicks ?? niceTicks(x0, x1, 8).map((v) => ({ value: v, label: fmt(v) }));
  for (const t of xt) {
    if (t.value < x0 || t.value > x1) continue;
    const x = sx(t.value).toFixed(1);
    parts.push(`<line x1="${x}" x2="${x}" y1="${m.t}" y2="${m.t + ph}" class="grid"/>`);
    parts.push(
      `<text x="${x}" y="${m.t + ph + 16}" text-anchor="middle" class="tick">${esc(t.label)}</text>`,
    );
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" class="frame"/>`);
  parts.push(
    `<text x="${m.l + pw / 2}" y="${m.t + ph + 34}" text-anchor="middle" class="axis">${esc(spec.xLabel)}</text>`,
  );
  parts.push(
    `<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle" class="axis">${esc(spec.yLabel)}</text>`,
  );
  // Lines.
  for (const s of spec.series) {
    const pts = s.points.filter((p) => Number.isFinite(p[1]) && (!log || p[1] > 0));
    if (pts.length === 0) continue;
    const d = pts
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`)
      .join('');
    parts.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
    );
    if (spec.dots || pts.length === 1)
      for (const p of pts)
        parts.push(
          `<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="2.5" fill="${s.color}"/>`,
        );
  }
  // Legend.
  for (const e of legend) {
    const y = H - 14 - (row - e.row) * 16;
    parts.push(`<rect x="${e.x}" y="${y}" width="12" height="3" fill="${e.color}"/>`);
    parts.push(`<text x="${e.x + 16}" y="${y + 4}" class="legend">${esc(e.name)}</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
}
