#!/usr/bin/env node
// Draws a V8 CPU profile (`node --cpu-prof`, a .cpuprofile file) as a flame graph: a
// self-contained SVG, widths proportional to sampled time, hover a frame for its name, file and
// share. Idle samples are left out, so 100 % is the thread's busy time.
//   node scripts/flamegraph.mjs <in.cpuprofile> <out.svg> [title]
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output, title = input] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: node scripts/flamegraph.mjs <in.cpuprofile> <out.svg> [title]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(input, 'utf8'));
const WIDTH = 1200;
const ROW = 16;
const MIN_WIDTH = 0.3; // px: narrower frames are not drawn (their time stays in the parent)

const byId = new Map(profile.nodes.map((n) => [n.id, { ...n, self: 0, total: 0 }]));
for (const n of byId.values()) for (const c of n.children ?? []) byId.get(c).parent = n;
profile.samples.forEach((id, i) => {
  byId.get(id).self += profile.timeDeltas[i] ?? 0;
});
const idle = (n) => n.callFrame.functionName === '(idle)' || n.callFrame.functionName === '(program)';
function total(n) {
  n.total = idle(n) ? 0 : n.self + (n.children ?? []).reduce((s, c) => s + total(byId.get(c)), 0);
  return n.total;
}
const root = byId.get(profile.nodes[0].id);
const busy = total(root);

const label = (n) => {
  const f = n.callFrame;
  const file = f.url ? f.url.replace(/^.*\/(node_modules\/|packages\/)/, '$1') : '';
  return `${f.functionName || '(anonymous)'}${file ? ` ${file}:${f.lineNumber + 1}` : ''}`;
};
const colour = (n) => {
  const u = n.callFrame.url;
  if (u.includes('/packages/')) return 'hsl(30, 85%, 60%)'; // Parley's own code
  if (u.includes('node_modules')) return 'hsl(200, 60%, 65%)'; // libraries
  if (u.startsWith('node:')) return 'hsl(120, 40%, 62%)'; // Node's own JavaScript
  return 'hsl(0, 0%, 72%)'; // native, GC, program
};
const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const rects = [];
let depth = 0;
function draw(n, x, level) {
  const w = (n.total / busy) * WIDTH;
  if (w < MIN_WIDTH) return;
  depth = Math.max(depth, level);
  rects.push({ n, x, w, level });
  let cx = x;
  for (const c of n.children ?? []) {
    const child = byId.get(c);
    draw(child, cx, level + 1);
    cx += (child.total / busy) * WIDTH;
  }
}
draw(root, 0, 0);
const height = (depth + 1) * ROW + 40;
const body = rects
  .map(({ n, x, w, level }) => {
    const y = height - (level + 1) * ROW;
    const name = label(n);
    const share = ((100 * n.total) / busy).toFixed(2);
    const text =
      w > 40
        ? `<text x="${(x + 3).toFixed(1)}" y="${y + 11}">${esc(name.slice(0, Math.floor(w / 6.5)))}</text>`
        : '';
    return `<g><title>${esc(name)} — ${share} %</title><rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${ROW - 1}" fill="${colour(n)}"/>${text}</g>`;
  })
  .join('\n');
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="monospace" font-size="11">
<title>${esc(`Flame graph: ${title}`)}</title>
<rect width="100%" height="100%" fill="#fff"/>
<text x="4" y="16" font-size="13">${esc(title)} — ${(busy / 1e6).toFixed(1)} s busy; orange Parley, blue libraries, green Node, grey native/GC</text>
${body}
</svg>
`;
writeFileSync(output, svg);
console.log(`${output}: ${rects.length} frames, ${(busy / 1e6).toFixed(1)} s busy`);
