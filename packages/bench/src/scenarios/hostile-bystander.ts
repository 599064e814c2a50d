/**
 * The `hostile` scenario's bystander, a process of its own (forked by scenarios/hostile.ts): two
 * users doing 1:1 messaging (alternating sends at `ratePerS` in total) while an attacker works,
 * measuring send→deliver latency, `ping` round trips every `pingEveryMs` (their maximum is the
 * longest stall a client saw), a fresh WebSocket connect every 2 s and `GET /healthz` every
 * second. IPC: `{type:'ready'}` once connected; on `{op:'stop'}` it waits up to 3 s for what is in
 * flight (anything still missing counts at its age) and answers `{type:'report', …}` with HDR
 * histograms (compressed base64).
 * @module
 */
import WebSocket from 'ws';
import { LatencyHistogram } from '../histogram.js';
import { mintToken } from '../tokens.js';

/** What the parent passes (JSON in argv[2]). */
export interface BystanderArgs {
  url: string;
  httpUrl: string;
  secret: string;
  users: [string, string];
  localAddress?: string;
  ratePerS: number;
  pingEveryMs: number;
}

/** What the bystander reports. */
export interface BystanderResult {
  type: 'report';
  connectError?: string;
  sent: number;
  undelivered: number;
  histograms: Record<string, string>;
  counters: Record<string, number>;
}

const args = JSON.parse(process.argv[2] ?? '{}') as BystanderArgs;
const secret = new TextEncoder().encode(args.secret);
const conv = `dm:${[...args.users].sort().join(':')}`;
const hist = {
  deliver: new LatencyHistogram(),
  ping: new LatencyHistogram(),
  connect: new LatencyHistogram(),
  healthz: new LatencyHistogram(),
};
const counters: Record<string, number> = {};
const sentAt = new Map<string, number>();
const pingAt = new Map<string, number>();
let stopping = false;

function count(key: string, n = 1): void {
  counters[key] = (counters[key] ?? 0) + n;
}

function wsOptions(): WebSocket.ClientOptions {
  const o: WebSocket.ClientOptions = { perMessageDeflate: false, handshakeTimeout: 10_000 };
  if (args.localAddress) o.localAddress = args.localAddress;
  return o;
}

/** Opens a socket as `user` and completes `connect`; rejects on any failure within 10 s. */
function open(user: string, device: string, onFrame?: (f: Record<string, unknown>, now: number) => void) {
  return new Promise<WebSocket>((resolve, reject) => {
    void mintToken(secret, user, 3600).then((token) => {
      const ws = new WebSocket(args.url, ['parley.v1.json'], wsOptions());
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('connect timed out'));
      }, 10_000);
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.once('open', () => ws.send(JSON.stringify({ type: 'connect', id: 'c', token, device })));
      ws.on('message', (data: Buffer) => {
        const now = performance.now();
        const f = JSON.parse(data.toString()) as Record<string, unknown>;
        if (f.type === 'reply' && f.id === 'c') {
          clearTimeout(timer);
          if (f.ok) resolve(ws);
          else reject(new Error(`connect refused: ${JSON.stringify(f.error)}`));
          return;
        }
        onFrame?.(f, now);
      });
    });
  });
}

function onFrame(self: string) {
  return (f: Record<string, unknown>, now: number): void => {
    if (f.type === 'reply') {
      const id = String(f.id ?? '');
      if (!f.ok) count(`error:${(f.error as { code?: string } | undefined)?.code ?? '?'}`);
      const t = pingAt.get(id);
      if (t !== undefined) {
        pingAt.delete(id);
        hist.ping.recordMs(now - t);
      }
      return;
    }
    if (f.type === 'message' && f.from !== self && typeof f.cmid === 'string') {
      const t = sentAt.get(f.cmid);
      if (t !== undefined) {
        sentAt.delete(f.cmid);
        hist.deliver.recordMs(now - t);
      }
    }
  };
}

async function probeConnect(n: number): Promise<void> {
  const t0 = performance.now();
  try {
    const ws = await open(args.users[0], `probe-${n % 4}`);
    hist.connect.recordMs(performance.now() - t0);
    ws.close();
  } catch {
    count('connect_failed');
  }
}

async function probeHealth(): Promise<void> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${args.httpUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
    await res.text();
    if (res.ok) hist.healthz.recordMs(performance.now() - t0);
    else count(`healthz_${res.status}`);
  } catch {
    count('healthz_failed');
  }
}

async function main(): Promise<void> {
  let socks: WebSocket[];
  try {
    socks = [
      await open(args.users[0], 'bystander', onFrame(args.users[0])),
      await open(args.users[1], 'bystander', onFrame(args.users[1])),
    ];
  } catch (err) {
    process.send?.({
      type: 'report',
      connectError: String(err),
      sent: 0,
      undelivered: 0,
      histograms: {},
      counters,
    });
    setTimeout(() => process.exit(0), 100);
    return;
  }
  for (const ws of socks)
    ws.on('close', (code) => {
      if (!stopping) count(`closed:${code}`);
    });
  let n = 0;
  const timers = [
    setInterval(() => {
      const ws = socks[n % 2]!;
      if (ws.readyState !== WebSocket.OPEN) return;
      const cmid = `b${n++}`;
      sentAt.set(cmid, performance.now());
      count('sent');
      ws.send(
        JSON.stringify({ type: 'send', id: `s${cmid}`, conv, cmid, kind: 'text', body: `hello ${cmid}` }),
      );
    }, 1000 / args.ratePerS),
    setInterval(() => {
      const ws = socks[0]!;
      if (ws.readyState !== WebSocket.OPEN) return;
      const id = `p${n}-${performance.now()}`;
      pingAt.set(id, performance.now());
      ws.send(JSON.stringify({ type: 'ping', id }));
    }, args.pingEveryMs),
  ];
  let probes = 0;
  timers.push(setInterval(() => void probeConnect(probes++), 2000));
  timers.push(setInterval(() => void probeHealth(), 1000));
  process.send?.({ type: 'ready' });
  process.on('message', async (m: { op?: string }) => {
    if (m.op !== 'stop') return;
    for (const t of timers) clearInterval(t);
    const deadline = performance.now() + 3000;
    while ((sentAt.size > 0 || pingAt.size > 0) && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const now = performance.now();
    const undelivered = sentAt.size;
    for (const t of sentAt.values()) hist.deliver.recordMs(now - t);
    for (const t of pingAt.values()) hist.ping.recordMs(now - t);
    count('unanswered_pings', pingAt.size);
    stopping = true;
    for (const ws of socks) ws.close();
    const result: BystanderResult = {
      type: 'report',
      sent: counters.sent ?? 0,
      undelivered,
      histograms: Object.fromEntries(Object.entries(hist).map(([k, h]) => [k, h.encode()])),
      counters,
    };
    process.send?.(result);
    setTimeout(() => process.exit(0), 100);
  });
}

void main();
