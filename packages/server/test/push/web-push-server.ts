/**
 * A local Web Push service (RFC 8030) over HTTPS with a test CA, checking what push services check
 * and decrypting what it receives.
 *
 * Per request to `POST /push/<id>`: `Authorization: vapid t=<JWT>, k=<key>` (RFC 8292) where `k` is
 * the application server key the subscription was made with (else 403), and the JWT is ES256 over
 * P-256, verified with `k`, with `aud` = this service's origin, `exp` in the future and at most
 * 24 h away, `sub` a `mailto:` or `https:` URL (else 401); a `TTL` header of a non-negative integer
 * (else 400); `Urgency`, when present, one of `very-low|low|normal|high`, and `Topic`, when present,
 * at most 32 base64url characters (else 400). A body, when present, must be `Content-Encoding:
 * aes128gcm`, at most 4096 bytes (else 413), and decrypt with the subscription's private key and
 * auth secret per RFC 8291 (`ece.ts`, written from the RFC; else 400). Then it answers by the
 * subscription's outcome: 201 with a `Location`, 404, 410, 413, 429/503 with `Retry-After`, 500,
 * a reset, or nothing.
 * @module
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { compactVerify, decodeProtectedHeader } from 'jose';
import type { PushOutcome } from '../../src/adapters/conformance/push-provider.suite.js';
import type { TestTls } from '../tls-certs.js';
import { decryptAes128gcm, type SubscriptionKeys, subscriptionKeys } from './ece.js';

/** A request the server verified (and decrypted). */
export interface WebPushRequest {
  id: string;
  headers: Record<string, string>;
  /** The decrypted payload; `undefined` for a request without a body. */
  plaintext: string | undefined;
  vapidJwt: string;
  vapidClaims: { aud: string; exp: number; sub: string };
  /** When it arrived (the wall clock, whatever the server's test clock says). */
  at: number;
}

export interface WebPushServerOptions {
  tls: TestTls;
  /** The VAPID public key subscriptions are made with (base64url, uncompressed point). */
  applicationServerKey: string;
  now: () => number;
  retryAfterSeconds: number;
  slowMs: number;
}

interface Subscription {
  outcome: PushOutcome;
  keys: SubscriptionKeys | undefined;
}

const URGENCIES = new Set(['very-low', 'low', 'normal', 'high']);

export class WebPushTestServer {
  readonly requests: WebPushRequest[] = [];
  readonly violations: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly hung = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly origin: string,
    private readonly options: WebPushServerOptions,
  ) {}

  static async start(options: WebPushServerOptions): Promise<WebPushTestServer> {
    const server = createServer({ key: options.tls.key, cert: options.tls.cert });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const self = new WebPushTestServer(server, `https://127.0.0.1:${port}`, options);
    server.on('request', (req, res) => {
      void self.handle(req, res);
    });
    return self;
  }

  /**
   * A new subscription answered with `outcome`: its endpoint and, unless `withKeys` is false (a
   * UnifiedPush distributor without keys), the browser-side keys as a subscription's JSON has them.
   */
  subscribe(
    outcome: PushOutcome,
    withKeys = true,
  ): { endpoint: string; keys?: { p256dh: string; auth: string } } {
    const id = randomBytes(12).toString('base64url');
    const keys = withKeys ? subscriptionKeys() : undefined;
    this.subscriptions.set(id, { outcome, keys });
    const endpoint = `${this.origin}/push/${id}`;
    return keys === undefined ? { endpoint } : { endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } };
  }

  /** Answers a subscription's later requests with `outcome` (a service that recovers, say). */
  setOutcome(endpoint: string, outcome: PushOutcome): void {
    const sub = this.subscriptions.get(endpoint.slice(endpoint.lastIndexOf('/') + 1));
    if (!sub) throw new Error(`no subscription at ${endpoint}`);
    sub.outcome = outcome;
  }

  async close(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        this.inFlight--;
      }
    };
    res.on('close', finish);
    const body = await readBody(req);
    const answer = (status: number, text = '', headers: Record<string, string> = {}) => {
      finish();
      res.writeHead(status, headers);
      res.end(text);
    };
    const violation = (status: number, detail: string) => {
      this.violations.push(`${status}: ${detail}`);
      answer(status, detail);
    };

    const id = /^\/push\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')?.[1];
    if (req.method !== 'POST') return violation(405, `method ${req.method}`);
    const sub = id === undefined ? undefined : this.subscriptions.get(id);
    if (id === undefined || sub === undefined) return violation(404, `no subscription at ${req.url}`);

    // VAPID (RFC 8292 §3).
    const auth = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(req.headers.authorization ?? '');
    if (!auth?.[1] || !auth[2]) return violation(401, `Authorization ${req.headers.authorization}`);
    const [, jwt, k] = auth;
    if (k !== this.options.applicationServerKey)
      return violation(403, 'k is not the key the subscription was made with');
    let claims: { aud?: unknown; exp?: unknown; sub?: unknown };
    try {
      const header = decodeProtectedHeader(jwt);
      if (header.alg !== 'ES256') throw new Error(`alg ${header.alg}`);
      const point = Buffer.from(k, 'base64url');
      if (point.length !== 65 || point[0] !== 4) throw new Error('k is not an uncompressed P-256 point');
      const key = createPublicKey({
        key: {
          kty: 'EC',
          crv: 'P-256',
          x: point.subarray(1, 33).toString('base64url'),
          y: point.subarray(33).toString('base64url'),
        },
        format: 'jwk',
      });
      const { payload } = await compactVerify(jwt, key);
      claims = JSON.parse(Buffer.from(payload).toString('utf8')) as typeof claims;
    } catch (err) {
      return violation(401, `VAPID JWT: ${String(err)}`);
    }
    const now = Math.floor(this.options.now() / 1000);
    if (claims.aud !== this.origin) return violation(401, `aud ${String(claims.aud)}`);
    if (typeof claims.exp !== 'number' || claims.exp <= now || claims.exp > now + 24 * 3600)
      return violation(401, `exp ${String(claims.exp)} (now ${now})`);
    if (typeof claims.sub !== 'string' || !/^(mailto:|https:)/.test(claims.sub))
      return violation(401, `sub ${String(claims.sub)}`);

    // RFC 8030 headers.
    const ttl = req.headers.ttl;
    if (typeof ttl !== 'string' || !/^\d+$/.test(ttl)) return violation(400, `TTL ${ttl}`);
    const urgency = req.headers.urgency;
    if (urgency !== undefined && !URGENCIES.has(String(urgency))) return violation(400, `Urgency ${urgency}`);
    const topic = req.headers.topic;
    if (topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(String(topic)))
      return violation(400, `Topic ${topic}`);

    // The payload (RFC 8291).
    let plaintext: string | undefined;
    if (body.length > 0) {
      if (req.headers['content-encoding'] !== 'aes128gcm')
        return violation(415, `Content-Encoding ${req.headers['content-encoding']}`);
      if (body.length > 4096) return violation(413, `${body.length} bytes`);
      if (sub.keys === undefined) return violation(400, 'a payload for a subscription without keys');
      try {
        plaintext = decryptAes128gcm(body, sub.keys).toString('utf8');
      } catch (err) {
        return violation(400, `decryption: ${String(err)}`);
      }
    }

    const headers: Record<string, string> = {};
    for (const [name, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[name] = v;
    const record: WebPushRequest = {
      id,
      headers,
      plaintext,
      vapidJwt: jwt,
      vapidClaims: claims as WebPushRequest['vapidClaims'],
      at: Date.now(),
    };
    const ra = { 'retry-after': String(this.options.retryAfterSeconds) };
    const accept = () => {
      this.requests.push(record);
      answer(201, '', { location: `${this.origin}/message/${randomBytes(8).toString('hex')}` });
    };
    switch (sub.outcome) {
      case 'ok':
        return accept();
      case 'slow':
        await new Promise((r) => setTimeout(r, this.options.slowMs));
        return accept();
      case 'gone':
        return answer(410, 'push subscription has unsubscribed or expired');
      case 'invalid-token':
        return answer(404, 'no such subscription');
      case 'rejected':
        return answer(413, 'payload too large');
      case 'throttled':
        return answer(429, 'too many requests', ra);
      case 'server-error':
        return answer(500, 'internal error');
      case 'unavailable':
        return answer(503, 'unavailable', ra);
      case 'reset':
        finish();
        req.socket.destroy();
        return;
      case 'hang':
        this.hung.add(res);
        return;
    }
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.concat(chunks)));
  });
}
