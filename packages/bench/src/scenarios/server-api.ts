/**
 * `server-api`: the server API's call rate for `SendMessage`, as an app backend posting messages
 * for its users would drive it, against a spawned `parley serve` (its server API on a free port,
 * with a key made for the run) or `--url` with `--api-url` and `--api-key`.
 *
 * `--api-clients` connections (HTTP/2 for gRPC) each keep `--window` calls in flight for
 * `--warmup` + `--duration` seconds; each call sends a `--body-bytes` message from one of `--users`
 * users to their partner (pairs, as `direct`), with a fresh cmid. Reported over the measured
 * window: calls/s, latency p50/p99/max, calls refused, and the server's CPU (% of one core).
 * The per-key and per-user budgets are lifted for the run: it measures the path, not the budgets.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServerClient, type ServerClient } from '@parley/server-client';
import { epochNow } from '../clock.js';
import type { Run } from '../run.js';

/** A free TCP port on loopback (for the spawned server's API listener). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Starts (or attaches to) the server; resolves with the API's URL and key. */
async function target(run: Run): Promise<{ baseUrl: string; apiKey: string; cleanup: () => void }> {
  const o = run.opts;
  if (o.url) {
    if (!o.apiUrl || !o.apiKey) throw new Error('server-api with --url needs --api-url and --api-key');
    await run.parley();
    return { baseUrl: o.apiUrl, apiKey: o.apiKey, cleanup: () => {} };
  }
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-api-'));
  const apiKey = randomBytes(24).toString('base64url');
  const keysFile = join(dir, 'api-keys.json');
  writeFileSync(keysFile, JSON.stringify({ keys: [{ name: 'bench', key: apiKey, scopes: ['messages'] }] }));
  const port = await freePort();
  await run.parley({
    PARLEY_SERVER_API_KEYS_FILE: keysFile,
    PARLEY_SERVER_API_PORT: String(port),
    PARLEY_SERVER_API_RATE: '1000000',
    PARLEY_SERVER_API_BURST: '1000000',
    PARLEY_SEND_RATE_PER_SECOND: '1000000',
    PARLEY_SEND_BURST: '1000000',
    PARLEY_FANOUT_RATE_PER_SECOND: '1000000',
    PARLEY_FANOUT_BURST: '1000000',
  });
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    apiKey,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs `server-api`. */
export async function serverApi(run: Run): Promise<void> {
  const o = run.opts;
  const { baseUrl, apiKey, cleanup } = await target(run);
  const parley = run.targets[0]!;
  const body = 'x'.repeat(o.bodyBytes);
  const pairs = Math.max(1, Math.floor(o.users / 2));
  const clients: ServerClient[] = Array.from({ length: o.apiClients }, () =>
    createServerClient({ baseUrl, apiKey, protocol: o.apiProtocol }),
  );
  const started = epochNow();
  const measureFrom = started + o.warmup * 1000;
  const stopAt = measureFrom + o.duration * 1000;
  const latencies: number[] = [];
  const refusals = new Map<string, number>();
  let next = 0;
  let cpu0: ReturnType<typeof parley.sampleNow> = null;
  const warm = setTimeout(() => {
    cpu0 = parley.sampleNow();
  }, o.warmup * 1000);
  const caller = async (client: ServerClient) => {
    while (epochNow() < stopAt) {
      const pair = next++ % pairs;
      const [a, b] = [`${run.runId}-a${pair}`, `${run.runId}-b${pair}`];
      const t0 = epochNow();
      try {
        await client.sendMessage({
          asUser: a,
          conv: `dm:${a}:${b}`,
          cmid: randomBytes(8).toString('hex'),
          body,
        });
        if (t0 >= measureFrom && t0 < stopAt) latencies.push(epochNow() - t0);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        refusals.set(String(code), (refusals.get(String(code)) ?? 0) + 1);
      }
    }
  };
  run.log(`${o.apiClients} ${o.apiProtocol} clients × ${o.window} calls in flight → ${baseUrl}`);
  await Promise.all(clients.flatMap((c) => Array.from({ length: o.window }, () => caller(c))));
  clearTimeout(warm);
  const cpu1 = parley.sampleNow();
  cleanup();
  report(run, latencies, refusals, cpu0, cpu1);
}

function report(
  run: Run,
  latencies: number[],
  refusals: Map<string, number>,
  cpu0: { at: number; cpuSeconds: number } | null,
  cpu1: { at: number; cpuSeconds: number } | null,
): void {
  const o = run.opts;
  latencies.sort((x, y) => x - y);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  run.row(
    `SendMessage over ${o.apiProtocol}: calls/s (measured ${o.duration} s)`,
    Math.round(latencies.length / o.duration),
  );
  run.row(
    'latency p50 / p99 / max',
    `${at(0.5).toFixed(1)} / ${at(0.99).toFixed(1)} / ${(latencies.at(-1) ?? 0).toFixed(1)}`,
    'ms',
  );
  run.row(
    'calls failed',
    [...refusals.values()].reduce((x, y) => x + y, 0),
  );
  for (const [code, n] of refusals) run.notes.push(`${n} calls failed with code ${code}`);
  if (cpu0 && cpu1 && cpu1.at > cpu0.at) {
    const pct = ((cpu1.cpuSeconds - cpu0.cpuSeconds) / ((cpu1.at - cpu0.at) / 1000)) * 100;
    run.row('server CPU (% of one core)', Math.round(pct));
    if (latencies.length > 0)
      run.row(
        'server CPU per call',
        Math.round(((cpu1.cpuSeconds - cpu0.cpuSeconds) * 1e6) / latencies.length),
        'µs',
      );
  } else run.notes.push('server CPU not sampled: pass --server-pids with --url');
}
