/**
 * A load process (forked by the coordinator, one per `--procs`): it owns a share of the simulated
 * devices, runs the commands the parent sends over IPC (open, load, fill, resync, …), and reports
 * counters and histogram snapshots every second. Everything per connection is plain data; one
 * frame handler, one heartbeat sweep and one receipt flush serve all sockets.
 * @module
 */
import type WebSocket from 'ws';
import { type BenchConn, OpenError, openConnection } from './client.js';
import { epochNow, setClockOffset, sleep } from './clock.js';
import {
  countKey,
  frameType,
  hasTrue,
  lastNumberField,
  numberField,
  readStamp,
  stampBody,
  stringField,
} from './frames.js';
import type {
  AwaitCopiesCommand,
  ClockProbe,
  Command,
  CreateGroupsCommand,
  FillCommand,
  InitCommand,
  LoadCommand,
  OpenCommand,
  ResyncCommand,
  StatsMessage,
  Stream,
  WorkerMessage,
} from './ipc.js';
import { Recorder } from './recorder.js';
import { runSchedule } from './scheduler.js';
import { mintToken } from './tokens.js';

const CONN = Symbol('bench.conn');
type Tagged = WebSocket & { [CONN]: BenchConn };

let cfg: InitCommand | null = null;
let secret = new Uint8Array();
const conns = new Map<string, BenchConn>();
const rec = new Recorder();
let sourceIndex = 0;
let messageCounter = 0;
let outstanding = 0;
/** Measured window (intended send times, and arrival times for throughput). */
let windowStart = Number.POSITIVE_INFINITY;
let windowEnd = Number.NEGATIVE_INFINITY;
/** Start of the current load command: throughput counts only its own messages. */
let phaseStart = Number.POSITIVE_INFINITY;
let trackLast = false;
const receiptDirty = new Set<BenchConn>();
const replyWaiters = new Map<string, (data: Buffer) => void>();
const syncWaiters = new Map<BenchConn, { page: number; startAt: number; done: (ok: boolean) => void }>();
const fills = new Map<
  BenchConn,
  { conv: string; group: number; left: number; inflight: number; window: number }
>();
let fillDone: (() => void) | null = null;
let timers: NodeJS.Timeout[] = [];

function post(m: WorkerMessage): void {
  process.send?.(m);
}

function config(): InitCommand {
  if (!cfg) throw new Error('load process not initialised');
  return cfg;
}

function inWindow(t: number): boolean {
  return t >= windowStart && t < windowEnd;
}

// ---------------------------------------------------------------------------------------------
// Frames from the server

function onWsMessage(this: WebSocket, data: Buffer): void {
  const conn = (this as Tagged)[CONN];
  const now = epochNow();
  const type = frameType(data);
  if (type === 'message') onMessageEvent(conn, data, now);
  else if (type === 'reply') onReply(conn, data, now);
  else if (type === 'receipt') rec.count('receipt_events');
  else rec.count(`event:${type ?? 'unknown'}`);
}

function onMessageEvent(conn: BenchConn, data: Buffer, now: number): void {
  const stamp = readStamp(data);
  if (!stamp) {
    rec.count('other_messages');
    return;
  }
  if (stringField(data, 'from') === conn.user) {
    conn.echoes++;
    rec.count('echoes');
    return;
  }
  const latency = now - stamp.t;
  const measured = inWindow(stamp.t);
  rec.count('delivered');
  if (inWindow(now) && stamp.t >= phaseStart) rec.count('delivered_in_window');
  rec.latency('deliver', latency, measured);
  if (trackLast) rec.lastDelivery(stamp.key, latency, measured);
  const mode = config().receipts;
  if (mode === 'none') return;
  const conv = stringField(data, 'conv');
  const seq = numberField(data, 'seq');
  if (conv === undefined || Number.isNaN(seq)) return;
  if (mode === 'per-message') {
    conn.send(receiptFrame(conv, seq));
    rec.count('receipts_sent');
    return;
  }
  conn.pendingReceipts ??= new Map();
  if ((conn.pendingReceipts.get(conv) ?? 0) < seq) conn.pendingReceipts.set(conv, seq);
  receiptDirty.add(conn);
}

function receiptFrame(conv: string, seq: number): string {
  return `{"type":"receipt","conv":"${conv}","kind":"delivered","seq":${seq}}`;
}

function onReply(conn: BenchConn, data: Buffer, now: number): void {
  const id = stringField(data, 'id');
  const ok = data.indexOf('"ok":true') >= 0;
  if (!ok) countError(data);
  if (id === undefined) return;
  switch (id.charCodeAt(0)) {
    case 0x73: {
      // s<intended>: a load send
      if (outstanding > 0) outstanding--;
      if (conn.outstanding > 0) conn.outstanding--;
      if (!ok) {
        rec.count('send_rejected');
        return;
      }
      const intended = Number(id.slice(1));
      rec.count('replied');
      if (inWindow(now) && intended >= phaseStart) rec.count('replied_in_window');
      rec.latency('reply', now - intended, inWindow(intended));
      return;
    }
    case 0x70: // p<sent>: heartbeat
      rec.count('pongs');
      rec.latency('ping', now - Number(id.slice(1)), true);
      return;
    case 0x66: // f<n>: fill send
      onFillReply(conn, ok);
      return;
    case 0x79: // y<n>: sync page
      onSyncReply(conn, data, ok, now);
      return;
    default: {
      const waiter = replyWaiters.get(id);
      if (waiter) {
        replyWaiters.delete(id);
        waiter(data);
      }
    }
  }
}

function countError(data: Buffer): void {
  rec.count('errors');
  rec.count(`error:${stringField(data, 'code') ?? 'unknown'}`);
}

function onWsClose(this: WebSocket, code: number): void {
  const conn = (this as Tagged)[CONN];
  if (conns.get(conn.user) === conn) conns.delete(conn.user);
  receiptDirty.delete(conn);
  if (conn.closing) return;
  rec.count('errors');
  rec.count(`closed:${code}`);
  const sync = syncWaiters.get(conn);
  if (sync) {
    syncWaiters.delete(conn);
    rec.count('sync_failed');
    sync.done(false);
  }
}

function noop(): void {}

function adopt(conn: BenchConn): void {
  const ws = conn.ws as Tagged;
  ws[CONN] = conn;
  ws.on('message', onWsMessage);
  ws.on('close', onWsClose);
  ws.on('error', noop);
  const previous = conns.get(conn.user);
  if (previous && previous !== conn) {
    previous.closing = true;
    previous.ws.terminate();
  }
  conns.set(conn.user, conn);
}

// ---------------------------------------------------------------------------------------------
// Commands

/** Runs `fn` over `items` with at most `limit` in flight (0: all at once). */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const n = limit > 0 ? Math.min(limit, items.length) : items.length;
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function nextSource(): string | undefined {
  const addrs = config().sourceAddrs;
  if (addrs.length === 0) return undefined;
  return addrs[sourceIndex++ % addrs.length];
}

async function connectOne(url: string, user: string, token: string): Promise<BenchConn | null> {
  const c = config();
  const started = epochNow();
  try {
    const conn = await openConnection(url, user, token, nextSource(), c.connectTimeoutMs);
    rec.latency('connect', epochNow() - started, true);
    rec.count('connected');
    adopt(conn);
    // Spread first heartbeats over the interval instead of all at once.
    conn.lastSent -= Math.random() * conn.heartbeatMs;
    return conn;
  } catch (err) {
    rec.count('connect_failed');
    rec.count('errors');
    rec.count(`connect_error:${err instanceof OpenError ? err.code : 'other'}`);
    return null;
  }
}

async function open(c: OpenCommand): Promise<{ opened: number; failed: number }> {
  const url = c.url;
  let opened = 0;
  await pool(c.users, c.concurrency, async (user) => {
    const token = await mintToken(secret, user, config().tokenTtlS);
    if (await connectOne(url, user, token)) opened++;
  });
  return { opened, failed: c.users.length - opened };
}

async function close(users: string[] | undefined): Promise<{ closed: number }> {
  const list = users ? users.map((u) => conns.get(u)).filter((x) => x !== undefined) : [...conns.values()];
  await Promise.all(
    list.map(
      (conn) =>
        new Promise<void>((resolve) => {
          conn.closing = true;
          if (conn.ws.readyState === 3) {
            resolve();
            return;
          }
          const timer = setTimeout(() => {
            conn.ws.terminate();
            resolve();
          }, 5000);
          conn.ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          conn.ws.close(1000, 'bench done');
        }),
    ),
  );
  for (const conn of list) if (conns.get(conn.user) === conn) conns.delete(conn.user);
  return { closed: list.length };
}

function sendFrame(conn: BenchConn, id: string, conv: string, key: string, intended: number): void {
  const c = config();
  conn.send(
    `{"type":"send","id":"${id}","conv":"${conv}","cmid":"${c.runId}.${key}","kind":"text","body":"${stampBody(intended, key, c.bodyBytes)}"}`,
  );
}

async function load(c: LoadCommand): Promise<{ sent: number; unanswered: number }> {
  phaseStart = c.startAt;
  windowStart = c.startAt + c.warmupMs;
  windowEnd = windowStart + c.durationMs;
  trackLast = c.trackLast;
  const maxBuffered = config().maxBufferedBytes;
  const worker = config().worker;
  const streams = c.streams.map((s: Stream) => ({ ...s, conn: conns.get(s.from) }));
  let sent = 0;
  await runSchedule(
    { rate: c.rate, startAt: c.startAt, endAt: windowEnd },
    (i, intended) => {
      const s = streams[i % streams.length]!;
      const conn = s.conn;
      if (conn?.ws.readyState !== 1) {
        rec.count('errors');
        rec.count('send_skipped_closed');
        return;
      }
      if (conn.ws.bufferedAmount > maxBuffered) {
        rec.count('errors');
        rec.count('send_dropped_backlog');
        return;
      }
      const key = `${worker}.${++messageCounter}.${s.group}`;
      sendFrame(conn, `s${intended.toFixed(3)}`, s.conv, key, intended);
      conn.outstanding++;
      outstanding++;
      sent++;
      rec.count('sent');
      if (intended >= windowStart) rec.count('sent_in_window');
    },
    (lag) => rec.latency('lag', lag, epochNow() - lag >= windowStart),
  );
  const deadline = epochNow() + c.drainMs;
  while (outstanding > 0 && epochNow() < deadline) await sleep(10);
  const unanswered = outstanding;
  if (unanswered > 0) {
    rec.count('errors', unanswered);
    rec.count('unanswered', unanswered);
    outstanding = 0;
    for (const conn of conns.values()) conn.outstanding = 0;
  }
  return { sent, unanswered };
}

function pumpFill(conn: BenchConn): void {
  const f = fills.get(conn);
  if (!f) return;
  while (f.left > 0 && f.inflight < f.window) {
    f.left--;
    f.inflight++;
    const key = `${config().worker}.${++messageCounter}.${f.group}`;
    sendFrame(conn, `f${messageCounter}`, f.conv, key, epochNow());
    rec.count('fill_sent');
  }
  if (f.left === 0 && f.inflight === 0) {
    fills.delete(conn);
    if (fills.size === 0) fillDone?.();
  }
}

function onFillReply(conn: BenchConn, ok: boolean): void {
  const f = fills.get(conn);
  if (!f) return;
  f.inflight--;
  if (ok) rec.count('fill_replied');
  pumpFill(conn);
}

async function fill(c: FillCommand): Promise<{ streams: number }> {
  const done = new Promise<void>((resolve) => {
    fillDone = resolve;
  });
  let started = 0;
  for (const s of c.streams) {
    const conn = conns.get(s.from);
    if (!conn) {
      rec.count('errors');
      rec.count('fill_without_connection');
      continue;
    }
    fills.set(conn, { conv: s.conv, group: s.group, left: c.count, inflight: 0, window: c.window });
    started++;
  }
  if (started === 0) return { streams: 0 };
  for (const conn of [...fills.keys()]) pumpFill(conn);
  await done;
  fillDone = null;
  return { streams: started };
}

async function awaitCopies(c: AwaitCopiesCommand): Promise<{ copies: number }> {
  const deadline = epochNow() + c.timeoutMs;
  let conn = conns.get(c.user);
  while ((conn?.echoes ?? 0) < c.count && epochNow() < deadline) {
    await sleep(20);
    conn = conns.get(c.user);
  }
  return { copies: conn?.echoes ?? 0 };
}

let requestCounter = 0;

function request(conn: BenchConn, frame: Record<string, unknown>, timeoutMs = 30_000): Promise<Buffer> {
  const id = `r${++requestCounter}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      replyWaiters.delete(id);
      reject(new Error(`no reply to ${String(frame.type)} within ${timeoutMs} ms`));
    }, timeoutMs);
    replyWaiters.set(id, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
    conn.send(JSON.stringify({ ...frame, id }));
  });
}

async function createGroups(c: CreateGroupsCommand): Promise<{ convs: string[] }> {
  const convs = await Promise.all(
    c.groups.map(async (g) => {
      const conn = conns.get(g.creator);
      if (!conn) throw new Error(`group creator ${g.creator} is not connected in this load process`);
      const reply = await request(conn, { type: 'create_group', name: g.name, members: g.members });
      const conv = stringField(reply, 'conv');
      if (reply.indexOf('"ok":true') < 0 || conv === undefined)
        throw new Error(`create_group failed: ${reply.toString('utf8', 0, 300)}`);
      return conv;
    }),
  );
  return { convs };
}

function sendSync(conn: BenchConn, page: number): void {
  conn.send(`{"type":"sync","id":"y${++requestCounter}","after":${conn.syncAfter},"limit":${page}}`);
  rec.count('sync_pages');
}

function onSyncReply(conn: BenchConn, data: Buffer, ok: boolean, now: number): void {
  const w = syncWaiters.get(conn);
  if (!w) return;
  if (!ok) {
    syncWaiters.delete(conn);
    rec.count('sync_failed');
    w.done(false);
    return;
  }
  const events = countKey(data, 'inbox');
  rec.count('synced_events', events);
  rec.count('synced_bytes', data.length);
  if (events > 0) conn.syncAfter = lastNumberField(data, 'inbox');
  if (hasTrue(data, 'more') && events > 0) {
    sendSync(conn, w.page);
    return;
  }
  syncWaiters.delete(conn);
  rec.count('synced');
  rec.latency('synced', now - w.startAt, true);
  w.done(true);
}

async function resync(c: ResyncCommand): Promise<{ synced: number; failed: number; lastSyncedAt: number }> {
  // Tokens are minted before the herd starts: the reconnect measures the server, not jose.
  const tokens = await Promise.all(c.users.map((u) => mintToken(secret, u, config().tokenTtlS)));
  const wait = c.startAt - epochNow();
  if (wait > 0) await sleep(wait);
  let synced = 0;
  let lastSyncedAt = 0;
  const indexes = c.users.map((_, i) => i);
  await pool(indexes, c.concurrency, async (i) => {
    const conn = await connectOne(c.url, c.users[i]!, tokens[i]!);
    if (!conn) return;
    conn.syncAfter = 0;
    const ok = await new Promise<boolean>((resolve) => {
      syncWaiters.set(conn, { page: c.page, startAt: c.startAt, done: resolve });
      sendSync(conn, c.page);
    });
    if (ok) {
      synced++;
      lastSyncedAt = Math.max(lastSyncedAt, epochNow());
    }
  });
  return { synced, failed: c.users.length - synced, lastSyncedAt };
}

// ---------------------------------------------------------------------------------------------
// Periodic work: stats, heartbeats, batched receipts

let lastSnapshotAt = epochNow();
let statsTimer: NodeJS.Timeout | null = null;

function stats(): StatsMessage {
  const snap = rec.snapshot();
  const cpu = process.cpuUsage();
  const t = epochNow();
  const from = lastSnapshotAt;
  lastSnapshotAt = t;
  const msg: StatsMessage = {
    type: 'stats',
    worker: cfg?.worker ?? -1,
    t,
    from,
    open: conns.size,
    counters: snap.counters,
    hist: snap.hist,
    cpuMs: (cpu.user + cpu.system) / 1000,
    rss: process.memoryUsage.rss(),
  };
  if (snap.last) msg.last = snap.last;
  return msg;
}

function heartbeat(): void {
  const now = epochNow();
  for (const conn of conns.values()) {
    if (now - conn.lastSent >= conn.heartbeatMs && conn.ws.readyState === 1) {
      conn.send(`{"type":"ping","id":"p${now.toFixed(3)}"}`);
      rec.count('pings');
    }
  }
}

function flushReceipts(): void {
  for (const conn of receiptDirty) {
    const pending = conn.pendingReceipts;
    if (!pending) continue;
    for (const [conv, seq] of pending) {
      conn.send(receiptFrame(conv, seq));
      rec.count('receipts_sent');
    }
    pending.clear();
  }
  receiptDirty.clear();
}

function start(c: InitCommand): void {
  cfg = c;
  secret = new TextEncoder().encode(c.secret);
  setClockOffset(c.clockOffsetMs);
  for (const t of timers) clearInterval(t);
  lastSnapshotAt = epochNow();
  scheduleStats();
  timers = [setInterval(heartbeat, 100), setInterval(flushReceipts, Math.max(10, c.receiptIntervalMs))];
}

/** Regular snapshots fall just after each whole second, so each covers (about) one second of the timeline. */
function scheduleStats(): void {
  const now = epochNow();
  const next = Math.floor(now / 1000) * 1000 + 1000;
  statsTimer = setTimeout(
    () => {
      post(stats());
      scheduleStats();
    },
    next - now + 1,
  );
}

async function run(c: Command): Promise<unknown> {
  switch (c.op) {
    case 'init':
      start(c);
      return { pid: process.pid };
    case 'open':
      return open(c);
    case 'close':
      return close(c.users);
    case 'load':
      return load(c);
    case 'fill':
      return fill(c);
    case 'await-copies':
      return awaitCopies(c);
    case 'create-groups':
      return createGroups(c);
    case 'resync':
      return resync(c);
    case 'flush':
      return {};
    case 'exit':
      await close(undefined);
      for (const t of timers) clearInterval(t);
      if (statsTimer) clearTimeout(statsTimer);
      return {};
  }
}

process.on('message', (m: Command | ClockProbe) => {
  if (m.op === 'clock') {
    post({ type: 'clock', seq: m.seq, time: epochNow() });
    return;
  }
  run(m).then(
    (result) => {
      // Every answer is preceded by the stats recorded up to it, so the parent sees them first.
      post(stats());
      post({ type: 'done', seq: m.seq, result });
      if (m.op === 'exit') process.disconnect();
    },
    (err: unknown) => {
      post(stats());
      post({ type: 'failed', seq: m.seq, error: err instanceof Error ? err.message : String(err) });
    },
  );
});
process.on('disconnect', () => process.exit(0));
