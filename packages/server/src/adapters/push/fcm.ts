/**
 * Firebase Cloud Messaging through the HTTP v1 API, authorized by an OAuth2 access token obtained
 * from the project's service-account key (the JWT bearer grant, RFC 7523).
 *
 * Why this way: the v1 API is the only FCM API left (the legacy API is shut down), and it takes
 * one JSON POST per message. `firebase-admin` would do it, but it brings the whole Firebase SDK
 * (Firestore, Auth, Storage clients and `google-auth-library`) for one request and one token, and
 * hides the HTTP answer this adapter maps to retry/dead/failed. So: the grant JWT is signed RS256
 * with `jose` (already the gateway's JWT library), the token is cached until shortly before it
 * expires (one grant at a time), and requests go over kept-alive `node:https` connections with a
 * bound and a deadline.
 *
 * @module
 */

import type { Agent } from 'node:https';
import { importPKCS8, SignJWT } from 'jose';
import { type Clock, systemClock } from '../../ports/clock.js';
import type {
  PushData,
  PushNotification,
  PushProvider,
  PushRegistration,
  PushResult,
} from '../../ports/push-provider.js';
import {
  collapseToken,
  httpsRequest,
  keepAliveAgent,
  networkReason,
  parseRetryAfter,
  retry,
  Semaphore,
} from './shared.js';

/** The OAuth scope FCM's v1 API requires. */
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/** Google's token endpoint, used when the service account does not name one. */
export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';
/** FCM's API host. */
export const FCM_ENDPOINT = 'https://fcm.googleapis.com';

/** The fields of a service-account key file (the JSON downloaded from the Firebase console) FCM needs. */
export interface ServiceAccount {
  project_id: string;
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

/** What an app team gives Parley for FCM. */
export interface FcmOptions {
  /** The service-account key, as the JSON text or parsed. */
  serviceAccount: ServiceAccount | string;
  /** FCM's API host; default Google's. Point it elsewhere for tests. */
  endpoint?: string;
  /** Extra CA certificates to trust (tests); default the system's. */
  ca?: string | Buffer;
  /** Most requests in flight at once; default 100. */
  maxConcurrent?: number;
  /** Deadline of one request (the token grant included), in ms; default 10 s. */
  timeoutMs?: number;
  /** An access token is replaced this long before it expires, in ms; default 5 min. */
  tokenMarginMs?: number;
  clock?: Clock;
}

interface AccessToken {
  token: string;
  expiresAt: number;
}

/** `details[].errorCode` values of FCM's error answers that mean the token is gone for this sender. */
const DEAD_CODES = new Set(['UNREGISTERED', 'SENDER_ID_MISMATCH']);
/** ... and those worth retrying. */
const RETRY_CODES = new Set(['QUOTA_EXCEEDED', 'UNAVAILABLE', 'INTERNAL']);

/** The `PushProvider` for `fcm` registrations. */
export class FcmProvider implements PushProvider {
  readonly platforms = ['fcm'] as const;
  private readonly account: ServiceAccount;
  private readonly agent: Agent;
  private readonly bound: Semaphore;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly marginMs: number;
  private readonly signingKey: ReturnType<typeof importPKCS8>;
  private access: Promise<AccessToken> | undefined;
  private closed = false;

  constructor(private readonly options: FcmOptions) {
    this.account =
      typeof options.serviceAccount === 'string'
        ? (JSON.parse(options.serviceAccount) as ServiceAccount)
        : options.serviceAccount;
    for (const field of ['project_id', 'client_email', 'private_key'] as const) {
      if (typeof this.account[field] !== 'string' || this.account[field] === '')
        throw new Error(`the FCM service account has no "${field}"`);
    }
    const maxConcurrent = options.maxConcurrent ?? 100;
    this.bound = new Semaphore(maxConcurrent);
    this.agent = keepAliveAgent(options.ca, maxConcurrent);
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.marginMs = options.tokenMarginMs ?? 5 * 60_000;
    this.signingKey = importPKCS8(this.account.private_key, 'RS256');
    this.signingKey.catch(() => {});
  }

  async send(registration: PushRegistration, notification: PushNotification): Promise<PushResult> {
    if (registration.platform !== 'fcm')
      return { status: 'failed', reason: `fcm cannot send to ${registration.platform}` };
    if (this.closed) return { status: 'retry', reason: 'closed' };
    return this.bound.run(() => this.attempt(registration.token, notification));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.agent.destroy();
  }

  private async attempt(token: string, n: PushNotification): Promise<PushResult> {
    if (this.closed) return retry('closed', undefined);
    const started = this.clock.now();
    let access: AccessToken;
    try {
      access = await this.accessToken();
    } catch (err) {
      if (err instanceof GrantRefused) return { status: 'failed', reason: err.message };
      return retry(`token: ${networkReason(err)}`, undefined);
    }
    const collapse = collapseToken(n.collapseKey, 32);
    const alert = n.alert ?? true;
    const message = {
      token,
      data: fcmData(n.data),
      android: {
        collapse_key: collapse,
        priority: n.urgency === 'high' ? 'high' : 'normal',
        ttl: `${n.ttlSeconds}s`,
      },
      apns: {
        // A data message reaches an iOS app as a background notification (priority 5).
        headers: {
          'apns-push-type': 'background',
          'apns-priority': '5',
          'apns-collapse-id': collapse,
          'apns-expiration': String(n.ttlSeconds <= 0 ? 0 : Math.floor(started / 1000) + n.ttlSeconds),
        },
        payload: {
          aps: alert ? { 'content-available': 1, badge: n.data.unread } : { 'content-available': 1 },
        },
      },
      webpush: { headers: { TTL: String(n.ttlSeconds), Urgency: n.urgency, Topic: collapse } },
    };
    const url = `${(this.options.endpoint ?? FCM_ENDPOINT).replace(/\/$/, '')}/v1/projects/${encodeURIComponent(this.account.project_id)}/messages:send`;
    let res: Awaited<ReturnType<typeof httpsRequest>>;
    try {
      res = await httpsRequest(
        url,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${access.token}`,
            'content-type': 'application/json; charset=utf-8',
          },
          body: JSON.stringify({ message }),
          agent: this.agent,
        },
        Math.max(1, this.timeoutMs - (this.clock.now() - started)),
      );
    } catch (err) {
      return retry(networkReason(err), undefined);
    }
    if (res.status === 200) {
      try {
        const name = (JSON.parse(res.body) as { name?: unknown }).name;
        if (typeof name === 'string') return { status: 'sent', id: name };
      } catch {}
      return { status: 'sent' };
    }
    const { status, code } = fcmError(res.body);
    const reason = code ?? status ?? `HTTP ${res.status}`;
    const retryAfter = parseRetryAfter(res.headers['retry-after'], this.clock.now());
    if ((code !== undefined && DEAD_CODES.has(code)) || res.status === 404) return { status: 'dead', reason };
    if (res.status === 401 && code !== 'THIRD_PARTY_AUTH_ERROR') {
      // Our access token was refused (revoked, or expired early): get a new one and try again.
      this.dropToken(access);
      return retry(reason, 0);
    }
    if ((code !== undefined && RETRY_CODES.has(code)) || res.status === 429 || res.status >= 500)
      return retry(reason, retryAfter);
    return { status: 'failed', reason };
  }

  /** The cached access token, or a new one when it is within `tokenMarginMs` of expiring. */
  private async accessToken(): Promise<AccessToken> {
    const current = this.access;
    if (current !== undefined) {
      const t = await current.catch(() => undefined);
      if (t !== undefined && this.clock.now() < t.expiresAt - this.marginMs) return t;
      if (this.access !== current) return this.accessToken();
    }
    const next = this.grant();
    this.access = next;
    next.catch(() => {
      if (this.access === next) this.access = undefined;
    });
    return next;
  }

  private dropToken(used: AccessToken): void {
    const current = this.access;
    if (current === undefined) return;
    void current.then((t) => {
      if (t === used && this.access === current) this.access = undefined;
    });
  }

  /** The JWT bearer grant: a signed assertion exchanged at the token URI for an access token. */
  private async grant(): Promise<AccessToken> {
    const now = this.clock.now();
    const iat = Math.floor(now / 1000);
    const tokenUri = this.account.token_uri ?? GOOGLE_TOKEN_URI;
    const header: { alg: 'RS256'; typ: 'JWT'; kid?: string } = { alg: 'RS256', typ: 'JWT' };
    if (this.account.private_key_id !== undefined) header.kid = this.account.private_key_id;
    const assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader(header)
      .setIssuer(this.account.client_email)
      .setAudience(tokenUri)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(await this.signingKey);
    const res = await httpsRequest(
      tokenUri,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
          assertion,
        }).toString(),
        agent: this.agent,
      },
      this.timeoutMs,
    );
    let parsed: {
      access_token?: unknown;
      expires_in?: unknown;
      error?: unknown;
      error_description?: unknown;
    } = {};
    try {
      parsed = JSON.parse(res.body) as typeof parsed;
    } catch {}
    if (res.status === 200 && typeof parsed.access_token === 'string') {
      const expiresIn = typeof parsed.expires_in === 'number' ? parsed.expires_in : 3600;
      return { token: parsed.access_token, expiresAt: now + expiresIn * 1000 };
    }
    const why = `${typeof parsed.error === 'string' ? parsed.error : `HTTP ${res.status}`}${
      typeof parsed.error_description === 'string' ? `: ${parsed.error_description}` : ''
    }`;
    if (res.status === 429 || res.status >= 500) throw new Error(`token endpoint: ${why}`);
    throw new GrantRefused(`token grant refused: ${why}`);
  }
}

/**
 * The notification as FCM `data`: every value a string (FCM's rule), and `from` sent as `sender`,
 * because FCM refuses `from` (with `message_type`, `notification`, `google…`, `gcm…`) as a data key.
 */
export function fcmData(data: PushData): Record<string, string> {
  return {
    conv: data.conv,
    seq: String(data.seq),
    sender: data.from,
    kind: data.kind,
    inbox: String(data.inbox),
    unread: String(data.unread),
  };
}

/** The token endpoint refused the grant (bad key, disabled account): no retry will help. */
class GrantRefused extends Error {}

/** `error.status` and the FCM `errorCode` of an error answer, when the body has them. */
function fcmError(body: string): { status?: string; code?: string } {
  try {
    const error = (JSON.parse(body) as { error?: { status?: unknown; details?: unknown } }).error;
    const out: { status?: string; code?: string } = {};
    if (typeof error?.status === 'string') out.status = error.status;
    if (Array.isArray(error?.details)) {
      for (const d of error.details as Array<{ errorCode?: unknown }>)
        if (typeof d?.errorCode === 'string') out.code = d.errorCode;
    }
    if (out.code === undefined && out.status !== undefined) out.code = out.status;
    return out;
  } catch {
    return {};
  }
}
