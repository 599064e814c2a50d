// Durable 1:1 sends over real WebSockets against `parley serve` in its own process: throughput,
// send→reply and send→deliver latency, the server's store batches and its longest event-loop stall
// (from /metrics). A first, simple load tool; packages/bench supersedes it.
//   npm run bench:send -- [--pairs 50] [--seconds 10] [--window 20]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { mintToken } from '../src/gateway/auth.js';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '10' },
    window: { type: 'string', default: '20' },
  },
});
const pairs = Number(values.pairs);
const seconds = Number(values.seconds);
const window = Number(values.window);
const SECRET = 'bench-secret-bench-secret-bench-secret-0000';
const dir = mkdtempSync(join(tmpdir(), 'parley-load-'));

const cli = new URL('../dist/cli.js', import.meta.url).pathname;
const proc = spawn(
  process.execPath,
  [
    ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
    ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
    cli,
    'serve',
  ],
  {
    env: {
      ...process.env,
      PARLEY_PORT: '0',
      PARLEY_DATA_DIR: dir,
      PARLEY_JWT_SECRET: SECRET,
      PARLEY_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const port = await new Promise<number>((resolve) => {
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => {
    if (process.env.BENCH_NODE_ARGS) process.stderr.write(c);
    out += c;
    const m = /"port":(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
});
const base = `http://127.0.0.1:${port}`;

async function open(user: string): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, 'parley.v1.json');
  await new Promise((r) => ws.once('open', r));
  const token = await mintToken(new TextEncoder().encode(SECRET), { user, ttlSeconds: 3600 });
  ws.send(JSON.stringify({ type: 'connect', id: 'c', token, device: 'd' }));
  await new Promise((r) => ws.once('message', r));
  return ws;
}

const replyLat: number[] = [];
const deliverLat: number[] = [];
let acked = 0;
let delivered = 0;
let running = true;
const started = performance.now();

async function pair(i: number): Promise<void> {
  const a = await open(`la${i}`);
  const b = await open(`lb${i}`);
  const conv = `dm:la${i}:lb${i}`;
  const sentAt = new Map<string, number>();
  let inflight = 0;
  let n = 0;
  const pump = () => {
    while (running && inflight < window) {
      const cmid = `${i}-${n++}`;
      sentAt.set(cmid, performance.now());
      inflight++;
      a.send(JSON.stringify({ type: 'send', id: cmid, conv, cmid, kind: 'text', body: 'x'.repeat(100) }));
    }
  };
  a.on('message', (d: Buffer) => {
    const f = JSON.parse(d.toString());
    if (f.type === 'reply' && f.ok) {
      replyLat.push(performance.now() - sentAt.get(f.id)!);
      acked++;
      inflight--;
      pump();
    }
  });
  b.on('message', (d: Buffer) => {
    const f = JSON.parse(d.toString());
    if (f.type === 'message') {
      const t = sentAt.get(f.cmid);
      if (t !== undefined) {
        deliverLat.push(performance.now() - t);
        sentAt.delete(f.cmid);
      }
      delivered++;
    }
  });
  pump();
}

await fetch(`${base}/metrics`); // resets the max-stall gauge
await Promise.all(Array.from({ length: pairs }, (_, i) => pair(i)));
await new Promise((r) => setTimeout(r, seconds * 1000));
running = false;
const elapsed = (performance.now() - started) / 1000;
await new Promise((r) => setTimeout(r, 500));
const metrics = await (await fetch(`${base}/metrics`)).text();
proc.kill(process.env.BENCH_CPU_PROF ? 'SIGINT' : 'SIGKILL');
await new Promise((r) => proc.once('exit', r));
rmSync(dir, { recursive: true, force: true });

const metric = (name: string) =>
  Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length
    ? Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(2))
    : Number.NaN;
};
const commits = metric('parley_store_batch_operations_count');
const row = {
  pairs,
  window,
  seconds: Number(elapsed.toFixed(1)),
  acked_per_s: Math.round(acked / elapsed),
  delivered_per_s: Math.round(delivered / elapsed),
  reply_p50_ms: pct(replyLat, 50),
  reply_p99_ms: pct(replyLat, 99),
  deliver_p50_ms: pct(deliverLat, 50),
  deliver_p99_ms: pct(deliverLat, 99),
  commits_per_s: Math.round(commits / elapsed),
  server_max_loop_stall_ms: Number((metric('parley_event_loop_delay_max_seconds') * 1000).toFixed(1)),
};
console.table([row]);
console.log(JSON.stringify(row));
process.exit(0);
