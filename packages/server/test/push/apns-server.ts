/**
 * A local APNs: an HTTP/2 TLS server that checks what Apple's provider API checks and answers as
 * it does. Per request: `POST /3/device/<hex token>`; `authorization: bearer <JWT>` signed ES256
 * by the team's key, with `kid` = the key id, `iss` = the team id and an `iat` neither in the
 * future nor older than an hour (403 `InvalidProviderToken` / `ExpiredProviderToken`), and a new
 * token no sooner than 20 minutes after the previous one (429 `TooManyProviderTokenUpdates`);
 * `apns-topic` = the app's bundle id; `apns-push-type` `alert` or `background`, a background push
 * at priority 5; `apns-priority`, `apns-expiration` and `apns-collapse-id` (≤ 64 bytes) well
 * formed; a JSON body of at most 4 KiB with `aps` (an alert for alert pushes, `content-available`
 * for background ones, the badge = the `parley.unread`) and `parley` holding exactly the
 * notification fields (no message text). Then answers by the outcome registered for the token.
 * @module
 */
import { type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { compactVerify, decodeProtectedHeader } from 'jose';
import type { PushOutcome } from '../../src/adapters/conformance/push-provider.suite.js';
import type { TestTls } from '../tls-certs.js';

/** A request the server verified. */
export interface ApnsRequest {
  token: string;
  headers: Record<string, string>;
  payload: { aps: Record<string, unknown>; parley: Record<string, unknown> };
  jwt: string;
  /** The session (connection) it came on, numbered from 1. */
  session: number;
}

export interface ApnsServerOptions {
  tls: TestTls;
  /** The public half of the team's `.p8` key. */
  publicKey: KeyObject;
  keyId: string;
  teamId: string;
  /** The app's bundle id. */
  topic: string;
  now: () => number;
  retryAfterSeconds: number;
  slowMs: number;
}

const NOTIFICATION_FIELDS = ['conv', 'from', 'inbox', 'kind', 'seq', 'unread'];

export class ApnsTestServer {
  readonly requests: ApnsRequest[] = [];
  readonly violations: string[] = [];
  /** Outcome per device token (lowercase hex); unknown tokens are answered `BadDeviceToken`. */
  readonly outcomes = new Map<string, PushOutcome | 'goaway'>();
  sessions = 0;
  inFlight = 0;
  maxInFlight = 0;
  private lastToken: { jwt: string; iat: number } | undefined;
  private readonly open = new Set<ServerHttp2Session>();

  private constructor(
    private readonly server: Http2SecureServer,
    readonly url: string,
    private readonly options: ApnsServerOptions,
  ) {}

  static async start(options: ApnsServerOptions): Promise<ApnsTestServer> {
    const server = createSecureServer({ key: options.tls.key, cert: options.tls.cert });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const self = new ApnsTestServer(server, `https://127.0.0.1:${port}`, options);
    server.on('session', (s) => {
      self.sessions++;
      const n = self.sessions;
      (s as ServerHttp2Session & { parleyN?: number }).parleyN = n;
      self.open.add(s);
      s.on('close', () => self.open.delete(s));
      s.on('error', () => {});
    });
    server.on('request', (req, res) => {
      void self.handle(req, res);
    });
    return self;
  }

  /** A fresh device token answered with `outcome`. */
  device(outcome: PushOutcome | 'goaway'): string {
    const token = randomBytes(32).toString('hex');
    this.outcomes.set(token, outcome);
    return token;
  }

  async close(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        this.inFlight--;
      }
    };
    res.stream.on('close', finish);
    const body = await readBody(req);
    const answer = (status: number, reason?: string, headers: Record<string, string> = {}) => {
      finish();
      if (res.stream.destroyed) return;
      res.writeHead(status, { 'apns-id': randomUUID(), ...headers });
      if (reason === undefined) res.end();
      else res.end(JSON.stringify({ reason, ...(status === 410 ? { timestamp: this.options.now() } : {}) }));
    };
    const violation = (status: number, reason: string, detail: string) => {
      this.violations.push(`${reason}: ${detail}`);
      answer(status, reason);
    };

    const h = req.headers;
    const match = /^\/3\/device\/([0-9a-f]+)$/.exec(String(h[':path']));
    if (h[':method'] !== 'POST') return violation(405, 'MethodNotAllowed', String(h[':method']));
    if (!match?.[1]) return violation(404, 'BadPath', String(h[':path']));
    const token = match[1];

    // The provider token.
    const auth = String(h.authorization ?? '');
    const jwt = /^bearer (.+)$/.exec(auth)?.[1];
    if (jwt === undefined) return violation(403, 'MissingProviderToken', auth);
    let claims: { iss?: unknown; iat?: unknown };
    try {
      const header = decodeProtectedHeader(jwt);
      if (header.alg !== 'ES256') throw new Error(`alg ${header.alg}`);
      if (header.kid !== this.options.keyId) throw new Error(`kid ${header.kid}`);
      const { payload } = await compactVerify(jwt, this.options.publicKey);
      claims = JSON.parse(Buffer.from(payload).toString('utf8')) as typeof claims;
    } catch (err) {
      return violation(403, 'InvalidProviderToken', String(err));
    }
    const now = Math.floor(this.options.now() / 1000);
    if (claims.iss !== this.options.teamId)
      return violation(403, 'InvalidProviderToken', `iss ${String(claims.iss)}`);
    if (typeof claims.iat !== 'number' || !Number.isInteger(claims.iat) || claims.iat > now + 60)
      return violation(403, 'InvalidProviderToken', `iat ${String(claims.iat)}`);
    if (now - claims.iat > 3600)
      return violation(403, 'ExpiredProviderToken', `iat ${now - claims.iat} s old`);
    if (this.lastToken !== undefined && this.lastToken.jwt !== jwt) {
      if (claims.iat < this.lastToken.iat)
        return violation(403, 'InvalidProviderToken', 'an older token than the last');
      if (claims.iat - this.lastToken.iat < 20 * 60)
        return violation(
          429,
          'TooManyProviderTokenUpdates',
          `a new token ${claims.iat - this.lastToken.iat} s after the last`,
        );
    }
    if (this.lastToken === undefined || this.lastToken.jwt !== jwt) this.lastToken = { jwt, iat: claims.iat };

    // Headers.
    if (h['apns-topic'] !== this.options.topic)
      return violation(400, 'TopicDisallowed', String(h['apns-topic']));
    const pushType = h['apns-push-type'];
    if (pushType !== 'alert' && pushType !== 'background')
      return violation(400, 'InvalidPushType', String(pushType));
    const priority = String(h['apns-priority'] ?? '10');
    if (!['1', '5', '10'].includes(priority)) return violation(400, 'BadPriority', priority);
    if (pushType === 'background' && priority !== '5')
      return violation(400, 'BadPriority', `background at priority ${priority}`);
    if (h['apns-expiration'] !== undefined && !/^\d+$/.test(String(h['apns-expiration'])))
      return violation(400, 'BadExpirationDate', String(h['apns-expiration']));
    const collapse = h['apns-collapse-id'];
    if (collapse !== undefined && Buffer.byteLength(String(collapse)) > 64)
      return violation(400, 'BadCollapseId', String(collapse));

    // Payload.
    if (body.length > 4096) return violation(413, 'PayloadTooLarge', `${body.length} bytes`);
    let payload: ApnsRequest['payload'];
    try {
      payload = JSON.parse(body.toString('utf8')) as ApnsRequest['payload'];
    } catch {
      return violation(400, 'BadPayload', 'not JSON');
    }
    const { aps, parley } = payload ?? {};
    if (typeof aps !== 'object' || aps === null) return violation(400, 'PayloadEmpty', 'no aps');
    if (pushType === 'alert' && aps.alert === undefined)
      return violation(400, 'BadPayload', 'an alert push without aps.alert');
    if (
      pushType === 'background' &&
      (aps['content-available'] !== 1 || aps.alert !== undefined || aps.badge !== undefined)
    )
      return violation(400, 'BadPayload', 'a background push must carry content-available only');
    if (
      typeof parley !== 'object' ||
      parley === null ||
      Object.keys(parley).sort().join() !== NOTIFICATION_FIELDS.join()
    )
      return violation(400, 'BadPayload', `parley is ${JSON.stringify(parley)}`);
    if (pushType === 'alert' && aps.badge !== parley.unread)
      return violation(400, 'BadPayload', 'badge is not unread');

    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(h)) if (typeof v === 'string') headers[k] = v;
    const session =
      (req.stream.session as (ServerHttp2Session & { parleyN?: number }) | undefined)?.parleyN ?? 0;
    const outcome = this.outcomes.get(token);
    if (outcome === undefined) return answer(400, 'BadDeviceToken');
    const ra = { 'retry-after': String(this.options.retryAfterSeconds) };
    switch (outcome) {
      case 'ok':
        this.requests.push({ token, headers, payload, jwt, session });
        return answer(200);
      case 'goaway':
        this.requests.push({ token, headers, payload, jwt, session });
        answer(200);
        req.stream.session?.goaway(constants.NGHTTP2_NO_ERROR);
        return;
      case 'slow':
        await new Promise((r) => setTimeout(r, this.options.slowMs));
        this.requests.push({ token, headers, payload, jwt, session });
        return answer(200);
      case 'gone':
        return answer(410, 'Unregistered');
      case 'invalid-token':
        return answer(400, 'BadDeviceToken');
      case 'rejected':
        return answer(413, 'PayloadTooLarge');
      case 'throttled':
        return answer(429, 'TooManyRequests', ra);
      case 'server-error':
        return answer(500, 'InternalServerError');
      case 'unavailable':
        return answer(503, 'ServiceUnavailable', ra);
      case 'reset':
        finish();
        res.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
        return;
      case 'hang':
        return; // the stream stays open until the client gives up
    }
  }
}

function readBody(req: Http2ServerRequest): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.concat(chunks)));
  });
}
