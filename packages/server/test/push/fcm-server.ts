/**
 * A local Google OAuth token endpoint and FCM HTTP v1 API on one HTTPS server, checking what
 * Google checks and answering as FCM does.
 *
 * `POST /token`: form-encoded `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an
 * `assertion` JWT signed RS256 by the service account's key (verified with its public half), with
 * `kid` = `private_key_id`, `iss` = `client_email`, `scope` including the FCM scope, `aud` = this
 * token URI, `iat` not in the future and `exp` after now, at most an hour after `iat`; otherwise
 * 400 `invalid_grant`. Answers an access token valid for an hour (by the shared clock).
 *
 * `POST /v1/projects/<project>/messages:send`: `Authorization: Bearer` a token it issued and that
 * has not expired (else 401 `UNAUTHENTICATED`), the service account's project, a JSON
 * `{message}` with exactly one target (`token`), `data` of string values with no reserved key
 * (`from`, `notification`, `message_type`, `google…`, `gcm…`) and at most 4 KiB, `android.ttl` as
 * `<seconds>s`, `android.priority` `normal|high`, `android.collapse_key` a string, and `webpush` and
 * `apns` header maps of strings (else 400 `INVALID_ARGUMENT`). Then answers by the outcome
 * registered for the registration token, with FCM's error bodies (`details[].errorCode`).
 * @module
 */
import { type KeyObject, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { compactVerify, decodeProtectedHeader } from 'jose';
import type { PushOutcome } from '../../src/adapters/conformance/push-provider.suite.js';
import type { TestTls } from '../tls-certs.js';

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

/** A message the server verified. */
export interface FcmRequest {
  message: {
    token: string;
    data: Record<string, string>;
    android: { collapse_key: string; priority: string; ttl: string };
    apns?: { headers?: Record<string, string>; payload?: unknown };
    webpush?: { headers?: Record<string, string> };
  };
  accessToken: string;
}

export interface FcmServerOptions {
  tls: TestTls;
  publicKey: KeyObject;
  clientEmail: string;
  privateKeyId: string;
  projectId: string;
  now: () => number;
  retryAfterSeconds: number;
  slowMs: number;
}

const RESERVED = /^(from|notification|message_type|google.*|gcm.*)$/;

export class FcmTestServer {
  readonly requests: FcmRequest[] = [];
  readonly violations: string[] = [];
  readonly outcomes = new Map<string, PushOutcome>();
  /** Access tokens issued, with their expiry (ms, shared clock). */
  readonly issued = new Map<string, number>();
  grants = 0;
  inFlight = 0;
  maxInFlight = 0;
  private readonly hung = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly options: FcmServerOptions,
  ) {}

  static async start(options: FcmServerOptions): Promise<FcmTestServer> {
    const server = createServer({ key: options.tls.key, cert: options.tls.cert });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const self = new FcmTestServer(server, `https://127.0.0.1:${port}`, options);
    server.on('request', (req, res) => {
      void self.handle(req, res);
    });
    return self;
  }

  get tokenUri(): string {
    return `${this.url}/token`;
  }

  /** A fresh registration token answered with `outcome`. */
  device(outcome: PushOutcome): string {
    const token = `${randomBytes(11).toString('base64url')}:APA91b${randomBytes(100).toString('base64url')}`;
    this.outcomes.set(token, outcome);
    return token;
  }

  async close(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (req.url === '/token') return this.token(req, body, res);
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
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
      finish();
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
      res.end(JSON.stringify(value));
    };
    const error = (status: number, code: string, errorCode?: string, headers: Record<string, string> = {}) =>
      json(
        status,
        {
          error: {
            code: status,
            message: `${code} (test server)`,
            status: code,
            ...(errorCode === undefined
              ? {}
              : { details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] }),
          },
        },
        headers,
      );
    const violation = (status: number, code: string, detail: string) => {
      this.violations.push(`${code}: ${detail}`);
      error(status, code, code === 'INVALID_ARGUMENT' ? 'INVALID_ARGUMENT' : undefined);
    };

    if (req.method !== 'POST') return violation(405, 'METHOD_NOT_ALLOWED', String(req.method));
    const path = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url ?? '');
    if (!path) return violation(404, 'NOT_FOUND', String(req.url));
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const expires = bearer === undefined ? undefined : this.issued.get(bearer);
    if (bearer === undefined || expires === undefined || expires <= this.options.now())
      return violation(
        401,
        'UNAUTHENTICATED',
        bearer === undefined ? 'no bearer token' : 'unknown or expired token',
      );
    if (decodeURIComponent(path[1] ?? '') !== this.options.projectId)
      return violation(403, 'PERMISSION_DENIED', `project ${path[1]}`);
    let message: FcmRequest['message'];
    try {
      message = (JSON.parse(body.toString('utf8')) as { message: FcmRequest['message'] }).message;
    } catch {
      return violation(400, 'INVALID_ARGUMENT', 'not JSON');
    }
    const problem = checkMessage(message);
    if (problem !== undefined) return violation(400, 'INVALID_ARGUMENT', problem);

    const outcome = this.outcomes.get(message.token);
    const ra = { 'retry-after': String(this.options.retryAfterSeconds) };
    const accept = () => {
      this.requests.push({ message, accessToken: bearer });
      json(200, { name: `projects/${this.options.projectId}/messages/${randomBytes(8).toString('hex')}` });
    };
    switch (outcome) {
      case undefined:
        return error(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT');
      case 'ok':
        return accept();
      case 'slow':
        await new Promise((r) => setTimeout(r, this.options.slowMs));
        return accept();
      case 'gone':
        return error(404, 'NOT_FOUND', 'UNREGISTERED');
      case 'invalid-token':
        return error(403, 'PERMISSION_DENIED', 'SENDER_ID_MISMATCH');
      case 'rejected':
        return error(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT');
      case 'throttled':
        return error(429, 'RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', ra);
      case 'server-error':
        return error(500, 'INTERNAL', 'INTERNAL');
      case 'unavailable':
        return error(503, 'UNAVAILABLE', 'UNAVAILABLE', ra);
      case 'reset':
        finish();
        req.socket.destroy();
        return;
      case 'hang':
        this.hung.add(res);
        return;
    }
  }

  private async token(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    const refuse = (description: string) => {
      this.violations.push(`invalid_grant: ${description}`);
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_grant', error_description: description }));
    };
    if (
      req.method !== 'POST' ||
      !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')
    )
      return refuse('not a form POST');
    const form = new URLSearchParams(body.toString('utf8'));
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer')
      return refuse(`grant_type ${form.get('grant_type')}`);
    const assertion = form.get('assertion') ?? '';
    let claims: Record<string, unknown>;
    try {
      const header = decodeProtectedHeader(assertion);
      if (header.alg !== 'RS256') throw new Error(`alg ${header.alg}`);
      if (header.kid !== this.options.privateKeyId) throw new Error(`kid ${header.kid}`);
      const { payload } = await compactVerify(assertion, this.options.publicKey);
      claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      return refuse(`Invalid JWT Signature: ${String(err)}`);
    }
    const now = Math.floor(this.options.now() / 1000);
    const { iss, aud, scope, iat, exp } = claims;
    if (iss !== this.options.clientEmail) return refuse(`iss ${String(iss)}`);
    if (aud !== this.tokenUri) return refuse(`aud ${String(aud)}`);
    if (typeof scope !== 'string' || !scope.split(' ').includes(FCM_SCOPE))
      return refuse(`scope ${String(scope)}`);
    if (typeof iat !== 'number' || typeof exp !== 'number') return refuse('iat and exp are required');
    if (iat > now + 60) return refuse('iat is in the future');
    if (exp <= now) return refuse('the assertion has expired');
    if (exp - iat > 3600) return refuse('exp is more than an hour after iat');
    this.grants++;
    const accessToken = `ya29.${randomBytes(24).toString('base64url')}`;
    this.issued.set(accessToken, this.options.now() + 3600_000);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: accessToken, expires_in: 3599, token_type: 'Bearer' }));
  }
}

/** What FCM's v1 API refuses in a message, or `undefined`. */
function checkMessage(m: FcmRequest['message'] | undefined): string | undefined {
  if (typeof m !== 'object' || m === null) return 'no message';
  const targets = ['token', 'topic', 'condition'].filter((k) => k in m);
  if (targets.length !== 1 || typeof m.token !== 'string') return `targets ${targets.join(',')}`;
  if (typeof m.data !== 'object' || m.data === null) return 'data is not a map';
  for (const [k, v] of Object.entries(m.data)) {
    if (typeof v !== 'string') return `data.${k} is not a string`;
    if (RESERVED.test(k)) return `data key "${k}" is reserved`;
  }
  if (Buffer.byteLength(JSON.stringify(m.data)) > 4096) return 'data over 4 KiB';
  const a = m.android;
  if (typeof a !== 'object' || a === null) return 'no android config';
  if (!/^\d+(\.\d{1,9})?s$/.test(String(a.ttl))) return `android.ttl ${String(a.ttl)}`;
  if (!['normal', 'high', 'NORMAL', 'HIGH'].includes(String(a.priority)))
    return `android.priority ${String(a.priority)}`;
  if (typeof a.collapse_key !== 'string') return 'android.collapse_key';
  for (const part of ['apns', 'webpush'] as const) {
    const headers = m[part]?.headers;
    if (headers === undefined) continue;
    for (const [k, v] of Object.entries(headers))
      if (typeof v !== 'string') return `${part}.headers.${k} is not a string`;
  }
  const apnsHeaders = m.apns?.headers;
  if (apnsHeaders?.['apns-push-type'] === 'background' && apnsHeaders['apns-priority'] !== '5')
    return 'apns background push not at priority 5';
  return undefined;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.concat(chunks)));
  });
}
