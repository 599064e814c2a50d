/**
 * The bystander of the hostile-users suite, run as its own process (`node --import tsx`) so that
 * an attacker in the test process cannot stall it: two users on two sockets doing 1:1 messaging
 * (alternating sends, `--rate` per second in total) and pinging, measuring send→deliver latency
 * and ping round trips against the server under attack. It talks to its parent over IPC:
 * `{type:'ready'}` once both users are connected, `{op:'stop'}` from the parent, then one
 * `{type:'report', …}` (see `BystanderReport` in harness.ts) and exit.
 *
 * Arguments (JSON in argv[2]): url, tokens of the two users, their ids, the source address, the
 * send rate and the ping interval.
 * @module
 */
import WebSocket from 'ws';

interface Args {
  url: string;
  users: [string, string];
  tokens: [string, string];
  localAddress?: string;
  ratePerS: number;
  pingEveryMs: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const conv = `dm:${[...args.users].sort().join(':')}`;
const deliver: number[] = [];
const ping: number[] = [];
const sentAt = new Map<string, number>();
const pingAt = new Map<string, number>();
const errors: Record<string, number> = {};
const closes: number[] = [];
let sent = 0;
let stopping = false;

function count(key: string): void {
  errors[key] = (errors[key] ?? 0) + 1;
}

function open(i: 0 | 1): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const opts: WebSocket.ClientOptions = { perMessageDeflate: false, handshakeTimeout: 10_000 };
    if (args.localAddress) opts.localAddress = args.localAddress;
    const ws = new WebSocket(args.url, ['parley.v1.json'], opts);
    const timer = setTimeout(() => reject(new Error('connect timed out')), 15_000);
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on('close', (code) => {
      if (!stopping) closes.push(code);
    });
    ws.once('open', () => {
      ws.send(JSON.stringify({ type: 'connect', id: 'c', token: args.tokens[i], device: 'bystander' }));
    });
    ws.on('message', (data: Buffer) => {
      const now = performance.now();
      const f = JSON.parse(data.toString()) as Record<string, unknown>;
      if (f.type === 'reply') {
        const id = String(f.id ?? '');
        if (id === 'c') {
          clearTimeout(timer);
          if (f.ok) resolve(ws);
          else reject(new Error(`connect refused: ${JSON.stringify(f)}`));
          return;
        }
        if (!f.ok) count(`error:${(f.error as { code?: string } | undefined)?.code ?? '?'}`);
        if (id.startsWith('p')) {
          const t = pingAt.get(id);
          if (t !== undefined) {
            pingAt.delete(id);
            ping.push(now - t);
          }
        }
        return;
      }
      if (f.type === 'message' && f.from !== args.users[i] && typeof f.cmid === 'string') {
        const t = sentAt.get(f.cmid);
        if (t !== undefined) {
          sentAt.delete(f.cmid);
          deliver.push(now - t);
        }
      }
    });
  });
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! * 10) / 10;
}

function summary(xs: number[]): { count: number; p50: number; p99: number; max: number } {
  return { count: xs.length, p50: pct(xs, 50), p99: pct(xs, 99), max: pct(xs, 100) };
}

async function main(): Promise<void> {
  let socks: WebSocket[];
  try {
    socks = [await open(0), await open(1)];
  } catch (err) {
    process.send?.({ type: 'report', connectError: String(err) });
    setTimeout(() => process.exit(0), 100);
    return;
  }
  let n = 0;
  const sendTimer = setInterval(() => {
    const i = n % 2;
    const ws = socks[i]!;
    if (ws.readyState !== WebSocket.OPEN) return;
    const cmid = `by-${n++}`;
    sentAt.set(cmid, performance.now());
    sent++;
    ws.send(
      JSON.stringify({ type: 'send', id: `s${cmid}`, conv, cmid, kind: 'text', body: `hello ${cmid}` }),
    );
  }, 1000 / args.ratePerS);
  let p = 0;
  const pingTimer = setInterval(() => {
    const ws = socks[0]!;
    if (ws.readyState !== WebSocket.OPEN) return;
    const id = `p${p++}`;
    pingAt.set(id, performance.now());
    ws.send(JSON.stringify({ type: 'ping', id }));
  }, args.pingEveryMs);
  process.send?.({ type: 'ready' });
  process.on('message', async (m: { op?: string }) => {
    if (m.op !== 'stop') return;
    clearInterval(sendTimer);
    clearInterval(pingTimer);
    // What is still in flight gets 3 s; whatever is then missing counts at its age so far.
    const deadline = performance.now() + 3000;
    while ((sentAt.size > 0 || pingAt.size > 0) && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const now = performance.now();
    const undelivered = sentAt.size;
    const unanswered = pingAt.size;
    for (const t of sentAt.values()) deliver.push(now - t);
    for (const t of pingAt.values()) ping.push(now - t);
    stopping = true;
    for (const ws of socks) ws.close();
    process.send?.({
      type: 'report',
      sent,
      undelivered,
      unansweredPings: unanswered,
      deliver: summary(deliver),
      ping: summary(ping),
      errors,
      closes,
    });
    setTimeout(() => process.exit(0), 100);
  });
}

void main();
