/**
 * What the hostile-users suite shares: a spawned `parley serve` with its defaults (only the
 * secret and data directory set), its resident memory read from /proc while an attack runs, a
 * bystander in its own process, and the small attack tools (frames written in one TCP write,
 * windowed request pumps).
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type WebSocket from 'ws';
import { mintToken } from '../../src/gateway/auth.js';
import { type ChildServer, spawnServer } from '../child-server.js';
import { type Frame, TEST_SECRET, TestClient, tempDir } from '../helpers.js';

const BYSTANDER = fileURLToPath(new URL('./bystander.ts', import.meta.url));
const MIB = 1024 * 1024;

/** A spawned server under attack. */
export interface Hostile {
  server: ChildServer;
  token(user: string): Promise<string>;
  /** Opens a socket (default options: no compression) and completes `connect`. */
  client(user: string, device?: string, options?: WebSocket.ClientOptions): Promise<TestClient>;
  /** Peak VmRSS of the server process since start (or the last `resetPeak`), MiB. */
  peakRssMiB(): number;
  resetPeak(): void;
  /** True while the server process runs. */
  alive(): boolean;
  stop(): Promise<void>;
}

/** VmRSS of a process in MiB (0 when it is gone). */
export function rssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Spawns `parley serve` with its defaults and a fresh data directory. */
export async function startHostile(env: Record<string, string> = {}): Promise<Hostile> {
  const tmp = tempDir('parley-hostile-');
  const server = await spawnServer({ PARLEY_JWT_SECRET: TEST_SECRET, PARLEY_DATA_DIR: tmp.dir, ...env });
  let exited = false;
  void server.exited.then(() => {
    exited = true;
  });
  let peak = rssMiB(server.proc.pid!);
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMiB(server.proc.pid!));
  }, 50);
  const clients: TestClient[] = [];
  const token = (user: string) =>
    mintToken(new TextEncoder().encode(TEST_SECRET), { user, ttlSeconds: 3600 });
  return {
    server,
    token,
    async client(user, device = 'd1', options = {}) {
      const c = await TestClient.open(server.url, { perMessageDeflate: false, ...options });
      clients.push(c);
      // An oversized frame or a reset surfaces as an 'error' event; the close code tells the test.
      c.ws.on('error', () => {});
      const reply = await c.request({ type: 'connect', token: await token(user), device }, 15_000);
      if (!reply.ok) throw new Error(`connect failed: ${JSON.stringify(reply)}`);
      return c;
    },
    peakRssMiB: () => Math.max(peak, rssMiB(server.proc.pid!)),
    resetPeak: () => {
      peak = rssMiB(server.proc.pid!);
    },
    alive: () => !exited,
    async stop() {
      clearInterval(sampler);
      for (const c of clients) c.close();
      if (!exited) {
        server.kill('SIGKILL');
        await server.exited;
      }
      tmp.remove();
    },
  };
}

/** What the bystander measured (latencies in ms). */
export interface BystanderReport {
  connectError?: string;
  sent: number;
  undelivered: number;
  unansweredPings: number;
  deliver: { count: number; p50: number; p99: number; max: number };
  ping: { count: number; p50: number; p99: number; max: number };
  errors: Record<string, number>;
  closes: number[];
}

/** A bystander process doing 1:1 messaging (20 sends/s) and pings (10/s) during an attack. */
export interface Bystander {
  proc: ChildProcess;
  /** Stops sending, waits for what is in flight, and returns the figures. */
  stop(): Promise<BystanderReport>;
}

/** Starts the bystander (from 127.0.0.2 by default) and waits until both users are connected. */
export async function startBystander(
  h: Hostile,
  o: { localAddress?: string; ratePerS?: number; pingEveryMs?: number; prefix?: string } = {},
): Promise<Bystander> {
  const users: [string, string] = [`${o.prefix ?? 'bys'}-a`, `${o.prefix ?? 'bys'}-b`];
  const args = {
    url: h.server.url,
    users,
    tokens: [await h.token(users[0]), await h.token(users[1])],
    localAddress: o.localAddress ?? '127.0.0.2',
    ratePerS: o.ratePerS ?? 20,
    pingEveryMs: o.pingEveryMs ?? 100,
  };
  const proc = spawn(process.execPath, ['--import', 'tsx', BYSTANDER, JSON.stringify(args)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let report: BystanderReport | null = null;
  let onReport: ((r: BystanderReport) => void) | null = null;
  const ready = new Promise<void>((resolve, reject) => {
    proc.on('message', (m: { type: string } & Partial<BystanderReport>) => {
      if (m.type === 'ready') resolve();
      if (m.type === 'report') {
        report = m as BystanderReport;
        if (m.connectError) reject(new Error(`bystander could not connect: ${m.connectError}`));
        onReport?.(report);
      }
    });
    proc.once('exit', (code) => reject(new Error(`bystander exited (${code}) before it was ready`)));
  });
  await ready;
  return {
    proc,
    stop() {
      if (report) return Promise.resolve(report);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          proc.kill('SIGKILL');
          reject(new Error('bystander did not report'));
        }, 15_000);
        onReport = (r) => {
          clearTimeout(timer);
          resolve(r);
        };
        proc.send({ op: 'stop' });
      });
    },
  };
}

/**
 * Asserts the bystander was served: everything delivered, nothing closed, send→deliver and ping
 * p99 under `boundMs` (generous: the attacker, the server and the bystander share two cores).
 */
export function bystanderProblems(r: BystanderReport, boundMs = 1000): string[] {
  const out: string[] = [];
  if (r.connectError) return [`bystander could not connect: ${r.connectError}`];
  if (r.deliver.count === 0) out.push('bystander delivered nothing');
  if (r.undelivered > 0) out.push(`${r.undelivered} of ${r.sent} bystander messages undelivered`);
  if (r.closes.length > 0) out.push(`bystander closed: ${r.closes.join(',')}`);
  if (r.deliver.p99 >= boundMs) out.push(`bystander send→deliver p99 ${r.deliver.p99} ms ≥ ${boundMs}`);
  if (r.ping.p99 >= boundMs) out.push(`bystander ping p99 ${r.ping.p99} ms ≥ ${boundMs}`);
  return out;
}

/** The TCP socket under a `ws` client. */
export function socketOf(c: TestClient): Socket {
  return (c.ws as unknown as { _socket: Socket })._socket;
}

/** Writes `frames` as WebSocket frames in one socket write (so the server reads them at once). */
export function writeAtOnce(c: TestClient, frames: string[]): void {
  const sock = socketOf(c);
  sock.cork();
  for (const f of frames) c.ws.send(f);
  sock.uncork();
}

/**
 * Sends `n` requests made by `make(i)`, at most `window` unanswered at once; returns every reply
 * (or `{closed: code}` entries when the socket was closed meanwhile).
 */
export async function pump(
  c: TestClient,
  n: number,
  make: (i: number) => Frame,
  window = 16,
  deadline = Number.POSITIVE_INFINITY,
): Promise<Frame[]> {
  const replies: Frame[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n && Date.now() < deadline) {
      const i = next++;
      if (c.closeCode !== null) {
        replies[i] = { ok: false, closed: c.closeCode };
        continue;
      }
      try {
        replies[i] = await c.request(make(i), 60_000);
      } catch (err) {
        replies[i] = { ok: false, error: { code: 'no_reply', message: String(err) }, closed: c.closeCode };
      }
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return replies;
}

/**
 * `GET /healthz` from 127.0.0.2 on the client port, or on the admin listener when the client port
 * does not serve it (it moved there with /metrics).
 */
export async function healthz(h: Hostile): Promise<number> {
  const r = await httpGet(`${h.server.httpUrl}/healthz`);
  const admin = (h.server as { adminUrl?: string | null }).adminUrl;
  if (r.status === 404 && admin)
    return (await httpGet(`${admin}/healthz`, { localAddress: '127.0.0.1' })).status;
  return r.status;
}

/** An HTTP GET from a given source address: status and body (body cut at 1 MiB). */
export function httpGet(
  url: string,
  o: { localAddress?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { localAddress: o.localAddress ?? '127.0.0.2', headers: o.headers ?? {}, agent: false },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          if (body.length < MIB) body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(o.timeoutMs ?? 5000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Stores `n` messages of `body` in `conv` as `user` (device `filler`), `window` unanswered at a
 * time, reconnecting when the server closes the socket (the old server closed a sender that did
 * not read its own echoes fast enough) and waiting out `rate_limited`.
 */
export async function fill(
  h: Hostile,
  user: string,
  conv: string,
  n: number,
  body: string,
  window = 8,
): Promise<void> {
  const done = new Set<number>();
  for (let attempt = 0; attempt < 6 && done.size < n; attempt++) {
    const c = await h.client(user, 'filler');
    const todo = Array.from({ length: n }, (_, i) => i).filter((i) => !done.has(i));
    const replies = await pump(
      c,
      todo.length,
      (j) => ({ type: 'send', conv, cmid: `fill-${todo[j]}`, kind: 'text', body }),
      window,
    );
    let wait = 0;
    replies.forEach((r, j) => {
      if (r.ok) done.add(todo[j]!);
      else if (r.error?.code === 'rate_limited') wait = Math.max(wait, Number(r.error.retry_after_ms ?? 100));
    });
    c.close();
    if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, 5000)));
  }
  if (done.size < n) throw new Error(`fill: only ${done.size} of ${n} messages stored`);
}

/** A 64 KiB message body (the default body limit). */
export const BIG_BODY = 'x'.repeat(64 * 1024);
