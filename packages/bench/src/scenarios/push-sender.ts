/**
 * The `push` scenario's load, a process of its own (forked by scenarios/push.ts, so that the
 * senders and the push endpoint in the parent do not share an event loop): it registers the
 * recipients' devices for Web Push and disconnects them, holds the sender connections, and sends
 * 1:1 messages from the senders to the recipients, each sender going round the recipients in turn
 * (so a conversation gets a message only every `recipients` of that sender's messages, and a
 * conversation's notifications are not merged). Sends go open loop at a rate, or as fast as a
 * window of unanswered sends per sender allows.
 *
 * IPC: commands `{op, seq, …}` are answered by `{type:'done'|'failed', seq, …}`; every second
 * (and before each answer) it sends `{type:'stats', stats, records}`: a load-process snapshot
 * (counters, `reply` and `lag` histograms) and the ok replies since the last one as
 * `[conv, seq, ts, measured]` (`ts` the message's server time, `measured` 1 when its send fell in
 * the measured window), which the parent matches with the notifications the endpoint received.
 * @module
 */
import type WebSocket from 'ws';
import { type BenchConn, OpenError, openConnection } from '../client.js';
import { epochNow, sleep } from '../clock.js';
import type { StatsMessage } from '../ipc.js';
import { Recorder } from '../recorder.js';
import { runSchedule } from '../scheduler.js';
import { mintToken } from '../tokens.js';

/** What the parent passes (JSON in argv[2]). */
export interface PushSenderArgs {
  url: string;
  secret: string;
  senders: string[];
  connectTimeoutMs: number;
  bodyBytes: number;
  /** The `worker` its stats snapshots carry (not a load process's index). */
  worker: number;
}

/** A recipient device to register: the user (device `d`) and its subscription. */
export interface RecipientSpec {
  user: string;
  subscription: { endpoint: string; keys: { p256dh: string; auth: string } };
}

/** Commands. */
export type PushSenderCommand = { seq: number } & (
  | { op: 'register'; recipients: RecipientSpec[]; concurrency: number }
  | { op: 'connect' }
  | {
      op: 'run';
      recipients: string[];
      /** Messages/s over all senders; 0: as fast as `window` allows. */
      rate: number;
      window: number;
      startAt: number;
      warmupMs: number;
      durationMs: number;
      drainMs: number;
    }
  | { op: 'flush' }
  | { op: 'exit' }
);

/** An ok send reply: conversation, seq, server ts (epoch ms), 1 when sent in the measured window. */
export type SendRecord = [string, number, number, number];

/** Messages to the parent. */
export type PushSenderMessage =
  | { type: 'stats'; stats: StatsMessage; records: SendRecord[] }
  | { type: 'done'; seq: number; result: unknown }
  | { type: 'failed'; seq: number; error: string }
  | { type: 'ready' };

const args = JSON.parse(process.argv[2] ?? '{}') as PushSenderArgs;
const secret = new TextEncoder().encode(args.secret);
const rec = new Recorder();
let records: SendRecord[] = [];

interface Sender {
  conn: BenchConn;
  /** Next recipient (index into the run's recipients, modulo their number). */
  cursor: number;
  inflight: number;
}

const senders: Sender[] = [];
/** Sends awaiting their reply, by frame id. */
const outstanding = new Map<string, { sender: Sender; conv: string; t: number; measured: boolean }>();
let counter = 0;
let windowStart = Number.POSITIVE_INFINITY;
let windowEnd = Number.NEGATIVE_INFINITY;
let onReplied: ((s: Sender) => void) | null = null;
const body = 'x'.repeat(Math.max(1, args.bodyBytes));

function post(m: PushSenderMessage): void {
  process.send?.(m);
}

/** The direct conversation id of two users (sorted bytewise, as the protocol says). */
function dmConv(a: string, b: string): string {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) <= 0 ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

function countError(code: string): void {
  rec.count('errors');
  rec.count(`error:${code}`);
}

async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function closeSocket(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState === 3) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, 5000);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1000, 'registered');
  });
}

/** Connects each recipient, registers its device for Web Push, and disconnects it. */
async function register(
  recipients: RecipientSpec[],
  concurrency: number,
): Promise<{ registered: number; failed: Record<string, number> }> {
  let registered = 0;
  const failed: Record<string, number> = {};
  const fail = (code: string): void => {
    failed[code] = (failed[code] ?? 0) + 1;
  };
  await pool(recipients, concurrency, async (r) => {
    let conn: BenchConn;
    try {
      const token = await mintToken(secret, r.user, 3600);
      conn = await openConnection(args.url, r.user, token, undefined, args.connectTimeoutMs);
    } catch (err) {
      fail(err instanceof OpenError ? `connect:${err.code}` : 'connect');
      return;
    }
    const reply = await new Promise<Record<string, unknown> | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 30_000);
      conn.ws.on('message', (data: Buffer) => {
        const f = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
        if (f.type === 'reply' && f.id === 'pr') {
          clearTimeout(timer);
          resolve(f);
        }
      });
      conn.ws.on('error', () => {});
      conn.send(
        JSON.stringify({
          type: 'push_register',
          id: 'pr',
          platform: 'webpush',
          subscription: r.subscription,
        }),
      );
    });
    if (reply?.ok === true) registered++;
    else fail(reply ? String((reply.error as { code?: string } | undefined)?.code ?? 'refused') : 'timeout');
    await closeSocket(conn.ws);
  });
  return { registered, failed };
}

function onSenderFrame(sender: Sender, data: Buffer): void {
  const now = epochNow();
  const f = JSON.parse(data.toString('utf8')) as {
    type?: string;
    id?: string;
    ok?: boolean;
    seq?: number;
    ts?: number;
    error?: { code?: string };
  };
  if (f.type !== 'reply' || f.id === undefined) return;
  const sent = outstanding.get(f.id);
  if (!sent) return;
  outstanding.delete(f.id);
  sender.inflight--;
  if (f.ok === true && typeof f.seq === 'number' && typeof f.ts === 'number') {
    rec.count('replied');
    if (now >= windowStart && now < windowEnd) rec.count('replied_in_window');
    rec.latency('reply', now - sent.t, sent.measured);
    records.push([sent.conv, f.seq, f.ts, sent.measured ? 1 : 0]);
  } else {
    rec.count('send_rejected');
    countError(f.error?.code ?? 'unknown');
  }
  onReplied?.(sender);
}

/** Opens the sender connections. */
async function connect(): Promise<{ opened: number }> {
  await pool(args.senders, 50, async (user) => {
    try {
      const token = await mintToken(secret, user, 24 * 3600);
      const conn = await openConnection(args.url, user, token, undefined, args.connectTimeoutMs);
      const sender: Sender = { conn, cursor: 0, inflight: 0 };
      conn.ws.on('message', (data: Buffer) => onSenderFrame(sender, data));
      conn.ws.on('error', () => {});
      conn.ws.on('close', (code: number) => {
        if (!conn.closing) countError(`closed:${code}`);
      });
      senders.push(sender);
      rec.count('connected');
    } catch (err) {
      countError(err instanceof OpenError ? `connect:${err.code}` : 'connect');
    }
  });
  if (senders.length === 0) throw new Error('no sender could connect');
  return { opened: senders.length };
}

/** Sends one message from `s` to its next recipient, timed from `t` (its intended time); false when `s` is closed. */
function sendOne(s: Sender, recipients: string[], t: number): boolean {
  if (s.conn.ws.readyState !== 1) {
    countError('send_skipped_closed');
    return false;
  }
  const to = recipients[s.cursor++ % recipients.length]!;
  const conv = dmConv(s.conn.user, to);
  const id = `s${++counter}`;
  const measured = t >= windowStart && t < windowEnd;
  outstanding.set(id, { sender: s, conv, t, measured });
  s.inflight++;
  s.conn.send(`{"type":"send","id":"${id}","conv":"${conv}","cmid":"${id}","kind":"text","body":"${body}"}`);
  rec.count('sent');
  if (measured) rec.count('sent_in_window');
  return true;
}

async function run(
  c: Extract<PushSenderCommand, { op: 'run' }>,
): Promise<{ sent: number; unanswered: number }> {
  windowStart = c.startAt + c.warmupMs;
  windowEnd = windowStart + c.durationMs;
  const before = counter;
  // Spread the senders' starting points over the recipients.
  senders.forEach((s, i) => {
    s.cursor = Math.floor((i * c.recipients.length) / senders.length);
  });
  if (c.rate > 0) {
    let next = 0;
    await runSchedule(
      { rate: c.rate, startAt: c.startAt, endAt: windowEnd },
      (_i, intended) => sendOne(senders[next++ % senders.length]!, c.recipients, intended),
      (lag) => rec.latency('lag', lag, epochNow() - lag >= windowStart),
    );
  } else {
    const wait = c.startAt - epochNow();
    if (wait > 0) await sleep(wait);
    const pump = (s: Sender): void => {
      while (s.inflight < c.window && epochNow() < windowEnd)
        if (!sendOne(s, c.recipients, epochNow())) return;
    };
    onReplied = pump;
    for (const s of senders) pump(s);
    await sleep(Math.max(0, windowEnd - epochNow()));
    onReplied = null;
  }
  const deadline = epochNow() + c.drainMs;
  while (outstanding.size > 0 && epochNow() < deadline) await sleep(10);
  const unanswered = outstanding.size;
  if (unanswered > 0) {
    rec.count('errors', unanswered);
    rec.count('unanswered', unanswered);
    outstanding.clear();
    for (const s of senders) s.inflight = 0;
  }
  return { sent: counter - before, unanswered };
}

let lastSnapshotAt = epochNow();

function stats(): void {
  const snap = rec.snapshot();
  const cpu = process.cpuUsage();
  const t = epochNow();
  const from = lastSnapshotAt;
  lastSnapshotAt = t;
  const out = records;
  records = [];
  post({
    type: 'stats',
    stats: {
      type: 'stats',
      worker: args.worker,
      t,
      from,
      open: senders.filter((s) => s.conn.ws.readyState === 1).length,
      counters: snap.counters,
      hist: snap.hist,
      cpuMs: (cpu.user + cpu.system) / 1000,
      rss: process.memoryUsage.rss(),
    },
    records: out,
  });
}

/** Regular snapshots fall just after each whole second, as the load processes' do. */
function scheduleStats(): void {
  const now = epochNow();
  setTimeout(
    () => {
      stats();
      scheduleStats();
    },
    Math.floor(now / 1000) * 1000 + 1001 - now,
  ).unref();
}

async function handle(c: PushSenderCommand): Promise<unknown> {
  switch (c.op) {
    case 'register':
      return register(c.recipients, c.concurrency);
    case 'connect':
      return connect();
    case 'run':
      return run(c);
    case 'flush':
      return {};
    case 'exit':
      for (const s of senders) s.conn.closing = true;
      await Promise.all(senders.map((s) => closeSocket(s.conn.ws)));
      return {};
  }
}

process.on('message', (c: PushSenderCommand) => {
  handle(c).then(
    (result) => {
      stats();
      post({ type: 'done', seq: c.seq, result });
      if (c.op === 'exit') process.disconnect();
    },
    (err: unknown) => {
      stats();
      post({ type: 'failed', seq: c.seq, error: err instanceof Error ? err.message : String(err) });
    },
  );
});
process.on('disconnect', () => process.exit(0));
scheduleStats();
post({ type: 'ready' });
