/**
 * A local Web Push service (RFC 8030) for the `push` scenario, in the bench's own process: HTTPS
 * with a throwaway CA and server certificate made with the machine's `openssl` for this run (the
 * server under test trusts the CA through `PARLEY_PUSH_CA_FILE`; nothing is added to the system),
 * one subscription per simulated device (its own P-256 key pair and 16-byte auth secret, a path of
 * its own), answering 201 with a `Location`.
 *
 * Per request: `POST /push/<id>` of a known subscription; `Authorization: vapid t=<JWT>, k=<key>`
 * (RFC 8292) whose `k` is the server's VAPID public key (the JWT's signature and claims are checked
 * by the server's own tests, `packages/server/test/push/web-push-server.ts`); `TTL` an integer;
 * `Urgency` and `Topic` well-formed when present; `Content-Encoding: aes128gcm` and a body that
 * decrypts (RFC 8291, with `http_ece`, web-push's own dependency) to the JSON payload
 * `{conv, seq, from, kind, inbox, unread}`. Anything else is answered 4xx and counted as a
 * violation by reason. Each accepted notification is recorded with its arrival time: the wall clock
 * (aligned to `Date.now()`, the clock the server's message `ts` comes from) when the request
 * arrived, before its body was read and decrypted.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { createECDH, type ECDH, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ece from 'http_ece';

/** A W3C PushSubscription as a browser hands it to the app (what `push_register` carries). */
export interface Subscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** One notification the endpoint accepted. */
export interface Arrival {
  conv: string;
  seq: number;
  inbox: number;
  unread: number;
  /** Which subscription (device) it was sent to. */
  sub: string;
  /** Wall-clock arrival time, epoch ms, fractional (aligned to Date.now()). */
  at: number;
}

/** The wall clock with sub-millisecond resolution, aligned to `Date.now()` (see `wallClock`). */
export type WallClock = () => number;

/**
 * A clock that reads like `Date.now()` but with the monotonic clock's resolution: the offset is
 * taken at an instant when `Date.now()` ticks over, so `Math.floor(clock())` equals `Date.now()`
 * (to within a few µs). Messages' `ts` are the server's `Date.now()`, whole milliseconds.
 */
export function wallClock(): WallClock {
  const start = Date.now();
  let now = Date.now();
  let perf = performance.now();
  // Spin (≤ 1 ms) until the millisecond changes: that instant is exactly `now`.0 on the wall clock.
  while (now === start) {
    perf = performance.now();
    now = Date.now();
  }
  const offset = now - perf;
  return () => performance.now() + offset;
}

/** The CA (as a file, for the server) and the endpoint's own key and certificate chain. */
interface Tls {
  dir: string;
  caFile: string;
  key: string;
  cert: string;
}

/** Makes a throwaway CA and a server certificate for 127.0.0.1/localhost with `openssl`. */
function makeTls(): Tls {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-push-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=Parley bench push CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(
      join(dir, 'ext.cnf'),
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
    );
    ssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    );
    // Only the CA certificate has to outlive this function (the server reads it at start).
    rmSync(join(dir, 'ca.key'));
    return {
      dir,
      caFile: join(dir, 'ca.crt'),
      key: readFileSync(join(dir, 'server.key'), 'utf8'),
      cert: readFileSync(join(dir, 'server.crt'), 'utf8'),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const detail = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`could not make the push endpoint's certificates with openssl: ${detail || String(err)}`);
  }
}

interface Device {
  ecdh: ECDH;
  auth: string;
}

const URGENCIES = new Set(['very-low', 'low', 'normal', 'high']);
const MAX_BODY_BYTES = 4096;

/** The local Web Push service. */
export class PushEndpoint {
  /** Accepted notifications, in arrival order (`take()` hands them over). */
  private arrivals: Arrival[] = [];
  /** Accepted notifications since the last `countSince()`. */
  private recent = 0;
  /** Refused requests by reason, since the last `takeViolations()`. */
  private violations: Record<string, number> = {};
  /** Requests, accepted notifications, and TLS connections the server opened. */
  readonly counters = { requests: 0, accepted: 0, connections: 0 };
  private readonly devices = new Map<string, Device>();

  private constructor(
    private readonly server: Server,
    private readonly tls: Tls,
    readonly origin: string,
    private readonly vapidPublicKey: string,
    private readonly clock: WallClock,
  ) {}

  /** Starts the endpoint on a free port of 127.0.0.1; `vapidPublicKey` is what `k` must be. */
  static async start(vapidPublicKey: string, clock: WallClock): Promise<PushEndpoint> {
    const tls = makeTls();
    const server = createServer({ key: tls.key, cert: tls.cert });
    // The server keeps its connections open between pushes (and between the phases).
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const self = new PushEndpoint(server, tls, `https://127.0.0.1:${port}`, vapidPublicKey, clock);
    server.on('request', (req, res) => self.handle(req, res));
    server.on('secureConnection', () => {
      self.counters.connections++;
    });
    return self;
  }

  /** The CA certificate file the server must trust (PARLEY_PUSH_CA_FILE). */
  get caFile(): string {
    return this.tls.caFile;
  }

  /** A new subscription (a device's): its own path, P-256 key pair and 16-byte auth secret. */
  subscribe(): Subscription {
    const id = `${this.devices.size}-${randomBytes(9).toString('base64url')}`;
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16).toString('base64url');
    this.devices.set(id, { ecdh, auth });
    return {
      endpoint: `${this.origin}/push/${id}`,
      keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth },
    };
  }

  /** Hands over the notifications accepted since the last call. */
  take(): Arrival[] {
    const out = this.arrivals;
    this.arrivals = [];
    return out;
  }

  /** Requests refused since the last call, by reason. */
  takeViolations(): Record<string, number> {
    const out = this.violations;
    this.violations = {};
    return out;
  }

  /** Notifications accepted since the last call (for the per-second timeline). */
  countSince(): number {
    const n = this.recent;
    this.recent = 0;
    return n;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.tls.dir, { recursive: true, force: true });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const at = this.clock();
    this.counters.requests++;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('error', () => {});
    req.on('end', () => {
      const refused = this.check(req, size, Buffer.concat(chunks), at);
      if (refused) {
        this.violations[refused.reason] = (this.violations[refused.reason] ?? 0) + 1;
        res.writeHead(refused.status, { 'content-type': 'text/plain' });
        res.end(refused.reason);
        return;
      }
      res.writeHead(201, { location: `${this.origin}/message/${this.counters.accepted}` });
      res.end();
    });
  }

  /** Checks and records one request; returns why it was refused, if it was. */
  private check(
    req: IncomingMessage,
    size: number,
    body: Buffer,
    at: number,
  ): { status: number; reason: string } | undefined {
    if (req.method !== 'POST') return { status: 405, reason: `method ${req.method}` };
    const id = /^\/push\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')?.[1];
    const device = id === undefined ? undefined : this.devices.get(id);
    if (id === undefined || device === undefined) return { status: 404, reason: 'unknown subscription' };
    const auth = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(req.headers.authorization ?? '');
    if (!auth?.[1]) return { status: 401, reason: 'Authorization is not "vapid t=…, k=…"' };
    if (auth[2] !== this.vapidPublicKey) return { status: 403, reason: "k is not the server's VAPID key" };
    const ttl = req.headers.ttl;
    if (typeof ttl !== 'string' || !/^\d+$/.test(ttl)) return { status: 400, reason: 'bad TTL' };
    const urgency = req.headers.urgency;
    if (urgency !== undefined && !URGENCIES.has(String(urgency)))
      return { status: 400, reason: 'bad Urgency' };
    const topic = req.headers.topic;
    if (topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(String(topic)))
      return { status: 400, reason: 'bad Topic' };
    if (size === 0) return { status: 400, reason: 'no payload' };
    if (size > MAX_BODY_BYTES) return { status: 413, reason: 'payload over 4096 bytes' };
    if (req.headers['content-encoding'] !== 'aes128gcm')
      return { status: 415, reason: 'Content-Encoding is not aes128gcm' };
    let data: { conv?: unknown; seq?: unknown; inbox?: unknown; unread?: unknown };
    try {
      const plain = ece.decrypt(body, {
        version: 'aes128gcm',
        privateKey: device.ecdh,
        authSecret: device.auth,
      });
      data = JSON.parse(plain.toString('utf8')) as typeof data;
    } catch {
      return { status: 400, reason: 'payload does not decrypt to JSON' };
    }
    if (typeof data.conv !== 'string' || typeof data.seq !== 'number')
      return { status: 400, reason: 'payload without conv and seq' };
    this.counters.accepted++;
    this.recent++;
    this.arrivals.push({
      conv: data.conv,
      seq: data.seq,
      inbox: typeof data.inbox === 'number' ? data.inbox : -1,
      unread: typeof data.unread === 'number' ? data.unread : -1,
      sub: id,
      at,
    });
    return undefined;
  }
}
