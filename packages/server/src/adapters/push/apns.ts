/**
 * APNs (Apple Push Notification service) through its HTTP/2 provider API, with token-based
 * authentication.
 *
 * Why this way: APNs speaks only HTTP/2, and `node:http2` is all it needs — one long-lived session
 * per APNs host carries many concurrent streams, which is how Apple asks providers to connect
 * (a connection per request is treated as a denial-of-service pattern). The provider token is an
 * ES256 JWT signed with the team's `.p8` key, made with `jose` (already the gateway's JWT library),
 * reused and refreshed well inside Apple's window (no more often than every 20 minutes, never
 * older than 60). No APNs client library is used: the maintained ones (`@parse/node-apn`,
 * `apns2`) wrap the same few calls and would hide the session, the bound and the deadline this
 * adapter has to control.
 *
 * @module
 */
import { type ClientHttp2Session, type ClientHttp2Stream, connect, constants } from 'node:http2';
import { importPKCS8, SignJWT } from 'jose';
import { type Clock, systemClock } from '../../ports/clock.js';
import type {
  ApnsRegistration,
  PushNotification,
  PushProvider,
  PushRegistration,
  PushResult,
} from '../../ports/push-provider.js';
import { collapseToken, networkReason, parseRetryAfter, RequestTimeout, retry, Semaphore } from './shared.js';

/** APNs hosts (Apple's "Communicate with APNs"). */
export const APNS_PRODUCTION = 'https://api.push.apple.com';
export const APNS_SANDBOX = 'https://api.sandbox.push.apple.com';

/** What an app team gives Parley for APNs. */
export interface ApnsOptions {
  /** The `.p8` signing key's contents (PKCS#8 PEM), from the team's Apple developer account. */
  key: string;
  /** The key's id (10 characters), shown beside it in the developer account. */
  keyId: string;
  /** The team id (10 characters): the token's `iss`. */
  teamId: string;
  /** APNs hosts; default Apple's. Point them elsewhere for tests or a relay. */
  endpoints?: { production?: string; sandbox?: string };
  /** The environment of registrations that do not name one; default `production`. */
  environment?: 'production' | 'sandbox';
  /** Extra CA certificates to trust (tests, a private relay); default the system's. */
  ca?: string | Buffer;
  /** Most requests in flight at once, across hosts; default 100. */
  maxConcurrent?: number;
  /** Deadline of one request, in ms, connecting included; default 10 s. */
  timeoutMs?: number;
  /** Age at which the provider token is replaced, in ms; default 40 min (Apple: 20 to 60). */
  tokenRefreshMs?: number;
  /**
   * The `aps.alert` of visible notifications. Default `{ 'loc-key': 'PARLEY_NEW_MESSAGE' }`: a
   * string from the app's `Localizable.strings`; `mutable-content` lets the app's notification
   * service extension fetch the message and show it. Never the message text.
   */
  alert?: Record<string, unknown>;
  clock?: Clock;
}

const DEFAULT_ALERT = { 'loc-key': 'PARLEY_NEW_MESSAGE' };

/** 400 reasons that mean the token is not (or no longer) this app's device: drop it. */
const DEAD_400 = new Set(['BadDeviceToken', 'DeviceTokenNotForTopic']);

interface ProviderToken {
  jwt: string;
  issuedAt: number;
}

/** The `PushProvider` for `apns` registrations. */
export class ApnsProvider implements PushProvider {
  readonly platforms = ['apns'] as const;
  private readonly sessions = new Map<string, ClientHttp2Session>();
  private readonly bound: Semaphore;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly refreshMs: number;
  private readonly signingKey: ReturnType<typeof importPKCS8>;
  private token: Promise<ProviderToken> | undefined;
  private closed = false;

  constructor(private readonly options: ApnsOptions) {
    this.bound = new Semaphore(options.maxConcurrent ?? 100);
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.refreshMs = options.tokenRefreshMs ?? 40 * 60_000;
    if (this.refreshMs >= 60 * 60_000)
      throw new RangeError('APNs provider tokens must be refreshed within 60 min');
    this.signingKey = importPKCS8(options.key, 'ES256');
    // A bad key fails every send with a reason; keep the rejection from being unhandled meanwhile.
    this.signingKey.catch(() => {});
  }

  async send(registration: PushRegistration, notification: PushNotification): Promise<PushResult> {
    if (registration.platform !== 'apns')
      return { status: 'failed', reason: `apns cannot send to ${registration.platform}` };
    if (!/^[0-9a-fA-F]+$/.test(registration.token)) return { status: 'dead', reason: 'BadDeviceToken' };
    if (this.closed) return { status: 'retry', reason: 'closed' };
    return this.bound.run(() => this.attempt(registration, notification));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const session of this.sessions.values()) session.destroy();
    this.sessions.clear();
  }

  private async attempt(reg: ApnsRegistration, n: PushNotification): Promise<PushResult> {
    if (this.closed) return retry('closed', undefined);
    let token: ProviderToken;
    try {
      token = await this.providerToken();
    } catch (err) {
      return {
        status: 'failed',
        reason: `provider token: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
    const environment = reg.environment ?? this.options.environment ?? 'production';
    const origin =
      environment === 'sandbox'
        ? (this.options.endpoints?.sandbox ?? APNS_SANDBOX)
        : (this.options.endpoints?.production ?? APNS_PRODUCTION);
    const alert = n.alert ?? true;
    const now = this.clock.now();
    const headers = {
      ':method': 'POST',
      ':path': `/3/device/${reg.token.toLowerCase()}`,
      authorization: `bearer ${token.jwt}`,
      'apns-topic': reg.topic,
      'apns-push-type': alert ? 'alert' : 'background',
      'apns-priority': alert && n.urgency === 'high' ? '10' : '5',
      'apns-expiration': String(n.ttlSeconds <= 0 ? 0 : Math.floor(now / 1000) + n.ttlSeconds),
      'apns-collapse-id': collapseToken(n.collapseKey, 64),
      'content-type': 'application/json',
    };
    const aps = alert
      ? {
          alert: this.options.alert ?? DEFAULT_ALERT,
          badge: n.data.unread,
          sound: 'default',
          'mutable-content': 1,
          'thread-id': n.data.conv,
        }
      : { 'content-available': 1 };
    const body = JSON.stringify({ aps, parley: n.data });

    let res: { status: number; headers: Record<string, unknown>; body: string };
    try {
      res = await this.request(origin, headers, body);
    } catch (err) {
      return retry(networkReason(err), undefined);
    }
    if (res.status === 200) {
      const id = res.headers['apns-id'];
      return typeof id === 'string' ? { status: 'sent', id } : { status: 'sent' };
    }
    let reason = `HTTP ${res.status}`;
    try {
      const parsed = JSON.parse(res.body) as { reason?: unknown };
      if (typeof parsed.reason === 'string') reason = parsed.reason;
    } catch {}
    const retryAfter = parseRetryAfter(res.headers['retry-after'] as string | undefined, now);
    if (res.status === 410) return { status: 'dead', reason };
    if (res.status === 400 && DEAD_400.has(reason)) return { status: 'dead', reason };
    if (res.status === 403 && reason === 'ExpiredProviderToken') {
      // Ours is older than APNs accepts (a clock jump, a long pause): make a new one now.
      this.dropToken(token);
      return retry(reason, 0);
    }
    if (res.status === 429 || res.status >= 500) return retry(reason, retryAfter);
    return { status: 'failed', reason };
  }

  /** The current provider token, made anew once it is `tokenRefreshMs` old (one signing at a time). */
  private async providerToken(): Promise<ProviderToken> {
    const current = this.token;
    if (current !== undefined) {
      const t = await current.catch(() => undefined);
      if (t !== undefined && this.clock.now() - t.issuedAt < this.refreshMs) return t;
      if (this.token !== current) return this.providerToken();
    }
    const issuedAt = this.clock.now();
    const next = this.signingKey.then(async (key) => ({
      jwt: await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: this.options.keyId })
        .setIssuer(this.options.teamId)
        .setIssuedAt(Math.floor(issuedAt / 1000))
        .sign(key),
      issuedAt,
    }));
    this.token = next;
    next.catch(() => {
      if (this.token === next) this.token = undefined;
    });
    return next;
  }

  private dropToken(used: ProviderToken): void {
    const current = this.token;
    if (current === undefined) return;
    void current.then((t) => {
      if (t === used && this.token === current) this.token = undefined;
    });
  }

  /** The live session to `origin`, connecting when there is none (or it was closed, failed or sent GOAWAY). */
  private session(origin: string): ClientHttp2Session {
    const existing = this.sessions.get(origin);
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    const session = connect(origin, this.options.ca === undefined ? {} : { ca: this.options.ca });
    const forget = () => {
      if (this.sessions.get(origin) === session) this.sessions.delete(origin);
    };
    // After GOAWAY the session finishes its open streams; new requests go to a new one.
    session.on('goaway', forget);
    session.on('close', forget);
    session.on('error', forget);
    this.sessions.set(origin, session);
    return session;
  }

  private request(
    origin: string,
    headers: Record<string, string>,
    body: string,
  ): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
    return new Promise((resolve, reject) => {
      let stream: ClientHttp2Stream;
      try {
        stream = this.session(origin).request(headers);
      } catch (err) {
        reject(err);
        return;
      }
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      };
      const timer = setTimeout(() => {
        fail(new RequestTimeout(this.timeoutMs));
        stream.close(constants.NGHTTP2_CANCEL);
      }, this.timeoutMs);
      let status = 0;
      let responseHeaders: Record<string, unknown> = {};
      let text = '';
      stream.setEncoding('utf8');
      stream.on('response', (h) => {
        status = Number(h[':status']);
        responseHeaders = h;
      });
      stream.on('data', (chunk: string) => {
        if (text.length < 65_536) text += chunk;
      });
      stream.on('end', () => {
        if (status === 0) return fail(new Error('stream ended without a response'));
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ status, headers: responseHeaders, body: text });
      });
      stream.on('error', fail);
      stream.on('close', () => fail(new Error(`stream closed (code ${stream.rstCode ?? 'none'})`)));
      stream.end(body);
    });
  }
}
