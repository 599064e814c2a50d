/**
 * The `hostile` scenario's attacker, a process of its own (forked by scenarios/hostile.ts, so the
 * parent's sampling and the bystander are not stalled by it): one attack of issue 10, prepared on
 * `{op:'setup'}` (fill an inbox, create a group, connect members) and then repeated for
 * `durationMs` on `{op:'run'}`, answered by `{type:'done', counters}` (replies by code, closes by
 * code, frames and bytes received, largest frame…). Every attack stays within the server's
 * defaults (send budget 100/s, burst 1,000): the server's limits are what is attacked.
 * @module
 */
import { connect as netConnect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { mintToken } from '../tokens.js';
import type { Attack } from './hostile-attacks.js';

/** What the parent passes (JSON in argv[2]). */
export interface AttackerArgs {
  attack: Attack;
  url: string;
  port: number;
  secret: string;
  /** Prefix of every user id (unique per run). */
  prefix: string;
}

type Frame = Record<string, unknown> & { error?: { code?: string; retry_after_ms?: number } };

const args = JSON.parse(process.argv[2] ?? '{}') as AttackerArgs;
const secret = new TextEncoder().encode(args.secret);
const counters: Record<string, number> = {};
const BIG = 'x'.repeat(64 * 1024);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function count(key: string, n = 1): void {
  counters[key] = (counters[key] ?? 0) + n;
}

function maxOf(key: string, v: number): void {
  counters[key] = Math.max(counters[key] ?? 0, v);
}

/** A socket with request/reply matching; `onFrame` sees every other frame. */
class Conn {
  closeCode: number | null = null;
  private next = 0;
  private readonly waiting = new Map<string, (f: Frame) => void>();
  onFrame: ((f: Frame, bytes: number) => void) | null = null;
  onRaw: ((bytes: number) => void) | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on('error', () => {});
    ws.on('close', (code) => {
      this.closeCode = code;
      count(`closed:${code}`);
      for (const w of this.waiting.values()) w({ ok: false, error: { code: `closed_${code}` } });
      this.waiting.clear();
    });
    ws.on('message', (data: Buffer) => {
      count('frames_in');
      count('bytes_in', data.length);
      maxOf('largest_frame_bytes', data.length);
      this.onRaw?.(data.length);
      // Large frames are only measured, not parsed, unless someone waits for them.
      const f = JSON.parse(data.toString()) as Frame;
      if (f.type === 'reply' && typeof f.id === 'string') {
        const w = this.waiting.get(f.id);
        if (w) {
          this.waiting.delete(f.id);
          w(f);
          return;
        }
      }
      this.onFrame?.(f, data.length);
    });
  }

  static async open(user: string, device = 'd1', maxPayload = 256 * 1024 * 1024): Promise<Conn> {
    const token = await mintToken(secret, user, 3600);
    const ws = new WebSocket(args.url, ['parley.v1.json'], { perMessageDeflate: false, maxPayload });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const c = new Conn(ws);
    const r = await c.request({ type: 'connect', token, device });
    if (!r.ok) throw new Error(`connect ${user}: ${JSON.stringify(r.error)}`);
    return c;
  }

  request(frame: Frame, timeoutMs = 30_000): Promise<Frame> {
    if (this.closeCode !== null)
      return Promise.resolve({ ok: false, error: { code: `closed_${this.closeCode}` } });
    const id = `a${this.next++}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve({ ok: false, error: { code: 'no_reply' } });
      }, timeoutMs);
      this.waiting.set(id, (f) => {
        clearTimeout(timer);
        resolve(f);
      });
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  /** Writes frames in one socket write. */
  burst(frames: string[]): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const sock = (this.ws as unknown as { _socket: Socket })._socket;
    sock.cork();
    for (const f of frames) this.ws.send(f);
    sock.uncork();
  }

  close(): void {
    this.ws.terminate();
  }
}

function noteReply(r: Frame): void {
  count(r.ok ? 'reply:ok' : `reply:${r.error?.code ?? '?'}`);
}

/** `n` requests, `window` unanswered at a time; stops early at `deadline`. */
async function pump(c: Conn, n: number, make: (i: number) => Frame, window: number, deadline = Infinity) {
  let next = 0;
  const replies: Frame[] = [];
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < n && Date.now() < deadline && c.closeCode === null) {
        const i = next++;
        const r = await c.request(make(i));
        replies[i] = r;
        noteReply(r);
        if (r.error?.code === 'rate_limited')
          await sleep(Math.min(Number(r.error.retry_after_ms ?? 100), 2000));
      }
    }),
  );
  return replies;
}

/** Stores `n` messages in a note-to-self, reconnecting when closed and waiting out rate limits. */
async function fillNotes(user: string, n: number, body: string, window = 8): Promise<void> {
  const conv = `dm:${user}:${user}`;
  let stored = 0;
  for (let attempt = 0; attempt < 20 && stored < n; attempt++) {
    const c = await Conn.open(user, 'filler');
    const start = stored;
    const replies = await pump(
      c,
      n - start,
      (i) => ({ type: 'send', conv, cmid: `fill-${start + i}`, kind: 'text', body }),
      window,
    );
    // Count only a prefix of successes: a retry reuses the cmids after it.
    let k = 0;
    while (k < replies.length && replies[k]?.ok) k++;
    stored += k;
    c.close();
  }
  counters.filled = stored;
}

const u = (name: string) => `${args.prefix}-${name}`;
let state: {
  members?: Conn[];
  conv?: string;
  typing?: number[];
  atk?: Conn;
} = {};

async function setup(): Promise<void> {
  switch (args.attack) {
    case 'sync-flood':
      return fillNotes(u('mallory'), 1000, BIG);
    case 'http-history':
      return fillNotes(u('reader'), 200, BIG);
    case 'read-flood':
      return fillNotes(u('leech'), 1000, 'y'.repeat(1024), 32);
    case 'typing-flood': {
      const atk = await Conn.open(u('typist'));
      const names = Array.from({ length: 60 }, (_, i) => u(`tm${i}`));
      const g = await atk.request({ type: 'create_group', name: 'typing', members: names });
      if (!g.ok) throw new Error(`create_group: ${JSON.stringify(g.error)}`);
      const members = await Promise.all(names.map((n) => Conn.open(n)));
      const typing = members.map(() => 0);
      members.forEach((m, i) => {
        m.onFrame = (f) => {
          if (f.type === 'typing') typing[i]!++;
        };
      });
      state = { atk, members, conv: String(g.conv), typing };
      return;
    }
    case 'group-fanout': {
      const atk = await Conn.open(u('spammer'));
      const names = Array.from({ length: 511 }, (_, i) => u(`gm${i}`));
      const g = await atk.request({ type: 'create_group', name: 'big', members: names });
      if (!g.ok) throw new Error(`create_group: ${JSON.stringify(g.error)}`);
      state = { atk, conv: String(g.conv) };
      return;
    }
    default:
      return;
  }
}

async function run(durationMs: number): Promise<void> {
  const deadline = Date.now() + durationMs;
  // Report what the attack itself met, not the setup's sends.
  for (const k of Object.keys(counters)) delete counters[k];
  switch (args.attack) {
    case 'sync-flood': {
      // Rounds of 64 syncs in one write; a round ends with its replies, a close, or after 5 s.
      const frames = Array.from(
        { length: 64 },
        (_, i) => `{"type":"sync","id":"y${i}","after":0,"limit":1000}`,
      );
      let c: Conn | null = null;
      while (Date.now() < deadline) {
        if (!c || c.closeCode !== null) c = await Conn.open(u('mallory'), 'attacker').catch(() => null);
        if (!c) {
          count('connect_failed');
          await sleep(500);
          continue;
        }
        let replies = 0;
        c.onFrame = (f) => {
          if (f.type === 'reply') {
            replies++;
            noteReply(f);
          }
        };
        c.burst(frames);
        count('sync_sent', 64);
        const end = Math.min(deadline, Date.now() + 5000);
        while (replies < 64 && c.closeCode === null && Date.now() < end) await sleep(20);
      }
      return;
    }
    case 'http-history': {
      // Waves of 100 requests that are never read, held 5 s each.
      const token = await mintToken(secret, u('reader'), 3600);
      const conv = `dm:${u('reader')}:${u('reader')}`;
      while (Date.now() < deadline) {
        const socks: Socket[] = [];
        for (let i = 0; i < 100; i++) {
          const s = netConnect({ host: '127.0.0.1', port: args.port, localAddress: '127.0.0.3' });
          socks.push(s);
          s.on('error', () => count('http_error'));
          s.once('data', (chunk: Buffer) => {
            count(`http:${/^HTTP\/1\.1 (\d+)/.exec(chunk.toString('latin1'))?.[1] ?? '?'}`);
            s.pause();
          });
          s.write(
            `GET /v1/conversations/${conv}/messages?limit=200 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`,
          );
        }
        await sleep(Math.min(5000, Math.max(0, deadline - Date.now())));
        for (const s of socks) s.destroy();
      }
      return;
    }
    case 'typing-flood': {
      const atk = state.atk!;
      const stop = `{"type":"typing","conv":"${state.conv}","state":"stop"}`;
      const start = `{"type":"typing","conv":"${state.conv}","state":"start"}`;
      const alternate = Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? start : stop));
      let tick = 0;
      while (Date.now() < deadline && atk.closeCode === null) {
        // ~10,000 stops a second, and every 5th second 500 alternating start/stop.
        const inFifth = Math.floor(tick / 100) % 5 === 4 && tick % 20 === 0;
        atk.burst(inFifth ? alternate : Array(100).fill(stop));
        count('typing_sent', 100);
        tick++;
        await sleep(10);
      }
      await sleep(1000);
      const t = state.typing!;
      counters.typing_received_max_per_member = Math.max(...t);
      counters.typing_received_total = t.reduce((a, b) => a + b, 0);
      counters.members_closed = state.members!.filter((m) => m.closeCode !== null).length;
      return;
    }
    case 'idle-sockets': {
      // Up to 8,000 idle TCP sockets from 127.0.0.1, re-opened (≤ 1,000/s) as the server sheds them.
      const TARGET = 8000;
      let open = 0;
      const lifetimes: number[] = [];
      const openOne = () =>
        new Promise<void>((resolve) => {
          const t0 = Date.now();
          const s = netConnect({ host: '127.0.0.1', port: args.port });
          let connected = false;
          let ours = false;
          s.on('error', () => {});
          s.once('connect', () => {
            connected = true;
            open++;
            maxOf('idle_open_max', open);
            resolve();
          });
          s.once('close', () => {
            if (ours) return resolve();
            if (connected) {
              open--;
              lifetimes.push(Date.now() - t0);
              count('idle_shed');
            } else count('idle_refused');
            resolve();
          });
          setTimeout(
            () => {
              ours = true;
              s.destroy();
            },
            Math.max(0, deadline - Date.now()),
          );
        });
      while (Date.now() < deadline) {
        const want = Math.min(1000, TARGET - open);
        if (want > 0) await Promise.all(Array.from({ length: want }, openOne));
        await sleep(1000);
      }
      lifetimes.sort((a, b) => a - b);
      // Sockets the server closed: how long it let them sit idle (those still open at the end are
      // counted apart).
      counters.idle_open_at_end = open;
      counters.idle_lifetime_max_ms = lifetimes.at(-1) ?? 0;
      counters.idle_lifetime_p50_ms = lifetimes[Math.floor(lifetimes.length / 2)] ?? 0;
      return;
    }
    case 'big-direct': {
      // Rounds of 150 × 64 KiB to an online recipient reading at full speed; five pairs take turns
      // so that no sender passes its send budget.
      const pairs = await Promise.all(
        Array.from({ length: 5 }, async (_, k) => ({
          from: await Conn.open(u(`bd-a${k}`)),
          to: await Conn.open(u(`bd-b${k}`)),
          conv: `dm:${u(`bd-a${k}`)}:${u(`bd-b${k}`)}`,
        })),
      );
      for (let round = 0; Date.now() < deadline; round++) {
        const p = pairs[round % pairs.length]!;
        if (p.from.closeCode !== null || p.to.closeCode !== null) {
          await sleep(200);
          continue;
        }
        let got = 0;
        p.to.onRaw = (bytes) => {
          if (bytes > 60_000) got++;
        };
        const replies = await Promise.all(
          Array.from({ length: 150 }, (_, i) =>
            p.from.request({ type: 'send', conv: p.conv, cmid: `r${round}-${i}`, kind: 'text', body: BIG }),
          ),
        );
        replies.forEach(noteReply);
        const end = Date.now() + 10_000;
        while (got < replies.filter((r) => r.ok).length && p.to.closeCode === null && Date.now() < end)
          await sleep(20);
        count('big_delivered', got);
        await sleep(Math.max(0, 2000 - (Date.now() % 2000)));
      }
      counters.pairs_closed = pairs.filter(
        (p) => p.from.closeCode !== null || p.to.closeCode !== null,
      ).length;
      return;
    }
    case 'read-flood': {
      const c = await Conn.open(u('leech'), 'reader');
      const conv = `dm:${u('leech')}:${u('leech')}`;
      const syncs = (async () => {
        while (Date.now() < deadline && c.closeCode === null) {
          void c.request({ type: 'sync', after: 0, limit: 1000 }).then(noteReply);
          count('sync_sent');
          await sleep(50);
        }
      })();
      const histories = pump(
        c,
        Number.MAX_SAFE_INTEGER,
        () => ({ type: 'history', conv, limit: 200 }),
        8,
        deadline,
      );
      await Promise.all([syncs, histories]);
      return;
    }
    case 'group-fanout': {
      const c = state.atk!;
      const body = 'z'.repeat(1000);
      await pump(
        c,
        Number.MAX_SAFE_INTEGER,
        (i) => ({ type: 'send', conv: state.conv, cmid: `g${i}`, kind: 'text', body }),
        32,
        deadline,
      );
      return;
    }
  }
}

process.on('message', (m: { op: string; durationMs?: number }) => {
  const work = m.op === 'setup' ? setup() : run(m.durationMs ?? 10_000);
  work.then(
    () => process.send?.({ type: 'done', counters }),
    (err: unknown) => process.send?.({ type: 'failed', error: String(err), counters }),
  );
});
process.send?.({ type: 'ready' });
