import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { ConfigInput } from '../src/config/schema.js';
import { mintToken } from '../src/gateway/auth.js';
import type { ParleyServer } from '../src/main.js';
import { startDeployment, testMode } from './deployments.js';

export const TEST_SECRET = 'test-secret-test-secret-test-secret-0123456789';

/** A throwaway data directory, removed by the returned function. */
export function tempDir(prefix = 'parley-test-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestServer {
  server: ParleyServer;
  url: string;
  httpUrl: string;
  /** The admin listener (/metrics, /healthz, /readyz); on a free port unless overridden. */
  adminUrl: string | null;
  /** The server API listener; null unless `serverApiKeysFile` is set. */
  serverApiUrl: string | null;
  dataDir: string;
  token(user: string, opts?: { device?: string; ttlSeconds?: number }): Promise<string>;
  /** Connects a client as `user`/`device` and completes `connect`. */
  client(user: string, device?: string): Promise<TestClient>;
  stop(): Promise<void>;
}

/**
 * Starts a server on a free port with a temporary data directory, in the deployment that
 * `PARLEY_TEST_MODE` names (see `deployments.ts`): `embedded` (default), `workers` (`parley serve
 * --workers 2` as a child process) or `cluster-memory` (two cluster processes in this one, on
 * shared in-process adapters; clients connect to them in turn). The behaviour suites run in each.
 */
export async function startServer(overrides: ConfigInput = {}, dataDir?: string): Promise<TestServer> {
  const tmp = dataDir ? null : tempDir();
  const dir = dataDir ?? tmp!.dir;
  const d = await startDeployment(testMode(), {
    port: 0,
    adminPort: 0,
    serverApiPort: 0,
    dataDir: dir,
    jwtSecret: TEST_SECRET,
    drainMs: 0,
    ...overrides,
  });
  const token = (user: string, opts: { device?: string; ttlSeconds?: number } = {}) => {
    const claims: Parameters<typeof mintToken>[1] = { user, ttlSeconds: opts.ttlSeconds ?? 3600 };
    if (opts.device) claims.device = opts.device;
    return mintToken(new TextEncoder().encode(TEST_SECRET), claims);
  };
  const clients: TestClient[] = [];
  let next = 0;
  return {
    server: d.server,
    url: d.urls[0]!,
    httpUrl: d.httpUrl,
    adminUrl: d.adminUrl,
    serverApiUrl: d.serverApiUrl,
    dataDir: dir,
    token,
    async client(user, device = 'd1') {
      const c = await TestClient.open(d.urls[next++ % d.urls.length]!);
      clients.push(c);
      const reply = await c.request({ type: 'connect', token: await token(user), device });
      if (!reply.ok) throw new Error(`connect failed: ${JSON.stringify(reply)}`);
      return c;
    },
    async stop() {
      for (const c of clients) c.close();
      await d.stop();
      tmp?.remove();
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: test frames are free-form JSON
export type Frame = Record<string, any>;

/** A plain WebSocket client that matches replies by id and queues events. */
export class TestClient {
  readonly events: Frame[] = [];
  closeCode: number | null = null;
  closeReason = '';
  private readonly waiters = new Map<string, (f: Frame) => void>();
  private readonly eventWaiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  private readonly closeWaiters: (() => void)[] = [];
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.onFrame(JSON.parse(data.toString()) as Frame));
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      for (const w of this.closeWaiters.splice(0)) w();
    });
  }

  static open(
    url: string,
    options: WebSocket.ClientOptions & { protocols?: string[] } = {},
  ): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options.protocols ?? ['parley.v1.json'], options);
      const c = new TestClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    });
  }

  /** Sends a frame with a fresh id and waits for its reply. */
  request(frame: Frame, timeoutMs = 5000): Promise<Frame> {
    const id = frame.id ?? `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no reply to ${JSON.stringify(frame).slice(0, 200)}`)),
        timeoutMs,
      );
      this.waiters.set(id, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  /** Sends raw text (or any frame) without waiting. */
  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  /** Waits for the first queued or future event matching `pred`, removing it from the queue. */
  nextEvent(pred: (f: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    const i = this.events.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.events.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for an event')), timeoutMs);
      this.eventWaiters.push({
        pred,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  }

  /** Waits until the server closes the socket. */
  closed(timeoutMs = 5000): Promise<number> {
    if (this.closeCode !== null) return Promise.resolve(this.closeCode);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('socket not closed')), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve(this.closeCode!);
      });
    });
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.terminate();
  }

  private onFrame(f: Frame): void {
    if (f.type === 'reply' && typeof f.id === 'string' && this.waiters.has(f.id)) {
      const w = this.waiters.get(f.id)!;
      this.waiters.delete(f.id);
      w(f);
      return;
    }
    const i = this.eventWaiters.findIndex((w) => w.pred(f));
    if (i >= 0) {
      this.eventWaiters.splice(i, 1)[0]!.resolve(f);
      return;
    }
    this.events.push(f);
  }
}

/** Waits `ms` milliseconds (for short settling pauses only; prefer waiting for an event). */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Retries `fn` every 200 ms until it resolves, for up to `ms` (then its last error is thrown). */
export async function eventually(fn: () => Promise<unknown>, ms = 8_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await fn();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

/** Collects `n` events matching `pred` from a client, in arrival order. */
export async function collectEvents(
  c: TestClient,
  n: number,
  pred: (f: Frame) => boolean,
  timeoutMs = 10_000,
): Promise<Frame[]> {
  const out: Frame[] = [];
  while (out.length < n) out.push(await c.nextEvent(pred, timeoutMs));
  return out;
}

/** Syncs a user's whole inbox after `after`, page by page, and returns its events in order. */
export async function syncAll(c: TestClient, after = 0, limit = 1000): Promise<Frame[]> {
  const events: Frame[] = [];
  let cursor = after;
  for (;;) {
    const r = await c.request({ type: 'sync', after: cursor, limit });
    if (!r.ok) throw new Error(`sync failed: ${JSON.stringify(r)}`);
    events.push(...r.events);
    cursor = r.events.at(-1)?.inbox ?? cursor;
    if (!r.more) return events;
  }
}

/** Reads a conversation's whole history (oldest first) with `after` pages of 200. */
export async function historyAll(c: TestClient, conv: string): Promise<Frame[]> {
  const out: Frame[] = [];
  let after = 0;
  for (;;) {
    const r = await c.request({ type: 'history', conv, after, limit: 200 });
    if (!r.ok) throw new Error(`history failed: ${JSON.stringify(r)}`);
    out.push(...r.messages);
    after = r.messages.at(-1)?.seq ?? after;
    if (!r.more) return out;
  }
}

/**
 * Records every non-reply frame a client receives from now on, with its arrival time
 * (`performance.now()`), independently of the client's event queue (which `nextEvent` consumes).
 */
export function recordEvents(c: TestClient): { frames: Frame[]; at: number[] } {
  const rec = { frames: [] as Frame[], at: [] as number[] };
  c.ws.on('message', (data) => {
    const f = JSON.parse(data.toString()) as Frame;
    if (f.type === 'reply') return;
    rec.frames.push(f);
    rec.at.push(performance.now());
  });
  return rec;
}
