/**
 * The relay baseline: the least a WebSocket messaging server can do with Parley's frames. It
 * accepts `connect` (no token check: the user is the token's `sub`, read without verifying), and
 * answers `send` with `ok` and a fake `seq` at once, forwarding a `message` event to the other
 * user of a `dm:` conversation; no storage, no inbox, no fsync. Parley's throughput as a ratio of
 * this one's says what durability, ordering and inboxes cost on the same machine, through the
 * same load generator.
 *
 * Run by the bench as a child process (`fork`, the port goes to the parent over IPC), or alone:
 * `node packages/bench/dist/relay-server.js --port 9000` (prints a JSON line with the port).
 * @module
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type WebSocket, WebSocketServer } from 'ws';

const SUBPROTOCOL = 'parley.v1.json';

interface Peer {
  user: string | null;
  device: string;
}

/** The `sub` claim of a JWT, read without verification (the relay trusts everyone). */
function subjectOf(token: unknown): string | null {
  if (typeof token !== 'string') return null;
  const payload = token.split('.')[1];
  if (!payload) return null;
  try {
    const sub = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
    return typeof sub === 'string' ? sub : null;
  } catch {
    return null;
  }
}

/** Starts the relay on `host:port` (0: any free port); resolves with the bound port. */
export function startRelay(host: string, port: number): Promise<{ port: number; close(): void }> {
  const users = new Map<string, Set<WebSocket>>();
  const peers = new WeakMap<WebSocket, Peer>();
  let seq = 0;
  let inbox = 0;
  const wss = new WebSocketServer({
    host,
    port,
    perMessageDeflate: false,
    maxPayload: 256 * 1024,
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const reply = (ws: WebSocket, id: unknown, fields: Record<string, unknown>): void => {
    if (typeof id === 'string') ws.send(JSON.stringify({ type: 'reply', id, ok: true, ...fields }));
  };
  const fail = (ws: WebSocket, id: unknown, code: string, message: string): void => {
    ws.send(
      JSON.stringify({
        type: 'reply',
        ...(typeof id === 'string' ? { id } : {}),
        ok: false,
        error: { code, message },
      }),
    );
  };
  wss.on('connection', (ws) => {
    peers.set(ws, { user: null, device: '' });
    ws.on('error', () => {});
    ws.on('close', () => {
      const p = peers.get(ws);
      if (p?.user) users.get(p.user)?.delete(ws);
    });
    ws.on('message', (data: Buffer) => {
      const peer = peers.get(ws)!;
      let f: Record<string, unknown>;
      try {
        f = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
      } catch {
        fail(ws, undefined, 'bad_request', 'invalid JSON');
        return;
      }
      if (peer.user === null) {
        if (f.type !== 'connect') {
          fail(ws, f.id, 'unauthorized', 'send connect first');
          return;
        }
        const user = subjectOf(f.token);
        if (!user) {
          fail(ws, f.id, 'unauthorized', 'token has no sub');
          return;
        }
        peer.user = user;
        peer.device = typeof f.device === 'string' ? f.device : 'd';
        let set = users.get(user);
        if (!set) {
          set = new Set();
          users.set(user, set);
        }
        set.add(ws);
        reply(ws, f.id, {
          user,
          device: peer.device,
          session: 'relay',
          heartbeat_ms: 30_000,
          inbox_head: 0,
          server_time: Date.now(),
        });
        return;
      }
      switch (f.type) {
        case 'send': {
          const conv = typeof f.conv === 'string' ? f.conv : '';
          const s = ++seq;
          const ts = Date.now();
          reply(ws, f.id, { conv, seq: s, ts });
          if (!conv.startsWith('dm:')) return;
          const [a, b] = conv.slice(3).split(':');
          const to = a === peer.user ? b : a;
          const targets = to === undefined ? undefined : users.get(to);
          if (!targets || targets.size === 0) return;
          const frame = JSON.stringify({
            type: 'message',
            inbox: ++inbox,
            conv,
            seq: s,
            ts,
            from: peer.user,
            from_device: peer.device,
            cmid: f.cmid,
            kind: f.kind,
            body: f.body,
          });
          for (const t of targets) t.send(frame);
          return;
        }
        case 'ping':
          reply(ws, f.id, { server_time: Date.now() });
          return;
        case 'receipt':
          reply(ws, f.id, {});
          return;
        default:
          if (f.id !== undefined)
            fail(ws, f.id, 'bad_request', `"${String(f.type)}" is not supported by the relay`);
      }
    });
  });
  return new Promise((resolve, reject) => {
    wss.once('error', reject);
    wss.once('listening', () => {
      const addr = wss.address();
      resolve({ port: typeof addr === 'object' && addr ? addr.port : port, close: () => wss.close() });
    });
  });
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  const relay = await startRelay(values.host, Number(values.port));
  process.stdout.write(`${JSON.stringify({ msg: 'relay listening', port: relay.port, pid: process.pid })}\n`);
  process.send?.({ port: relay.port });
  const stop = (): void => {
    relay.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}
