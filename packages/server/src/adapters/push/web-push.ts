/**
 * Web Push (RFC 8030) to a browser's push service, with VAPID (RFC 8292) and the payload
 * encrypted per RFC 8291 (`aes128gcm`, RFC 8188). UnifiedPush reuses it (`unified-push.ts`).
 *
 * Why this way: the encryption is the part worth not writing by hand, and `web-push` (the
 * web-push-libs project, the library the Web Push spec authors' examples use) does it and VAPID
 * signing. Its `generateRequestDetails` encrypts the payload and builds the `TTL`, `Urgency`,
 * `Topic`, `Content-Encoding` headers; this adapter sends that request itself, over kept-alive
 * `node:https` connections with a bound and a deadline, and reads the answer into a `PushResult`
 * (the library's own `sendNotification` offers neither bound nor whole-request deadline). The
 * VAPID header is made with the library's `getVapidHeaders` too, but with an expiry from the
 * adapter's clock, and reused per push-service origin for half its lifetime instead of signed for
 * every request.
 *
 * @module
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Agent } from 'node:https';
import { dirname } from 'node:path';
import webpush from 'web-push';
import { type Clock, systemClock } from '../../ports/clock.js';
import type {
  PushNotification,
  PushProvider,
  PushRegistration,
  PushResult,
} from '../../ports/push-provider.js';
import { isInwardAddress, publicOnlyLookup } from './public-address.js';
import {
  collapseToken,
  httpsRequest,
  keepAliveAgent,
  networkReason,
  parseRetryAfter,
  retry,
  Semaphore,
} from './shared.js';

/** A VAPID key pair (P-256), base64url as `web-push` and browsers take it. */
export interface VapidKeys {
  /** The uncompressed public point (65 bytes): the `applicationServerKey` clients subscribe with. */
  publicKey: string;
  /** The private scalar (32 bytes). */
  privateKey: string;
}

/** What Web Push needs from the deployment. */
export interface WebPushOptions {
  /** Who runs this server, for push services to reach: a `mailto:` or `https:` URL (VAPID `sub`). */
  subject: string;
  vapidKeys: VapidKeys;
  /** Extra CA certificates to trust (tests, a private push service); default the system's. */
  ca?: string | Buffer;
  /** Most requests in flight at once; default 100. */
  maxConcurrent?: number;
  /** Deadline of one request, in ms; default 10 s. */
  timeoutMs?: number;
  /**
   * Allow endpoints on loopback, private and link-local addresses (default false: clients choose
   * endpoints, and a request must not reach the deployment's own network). For tests and private
   * deployments whose push service runs inside.
   */
  allowPrivateEndpoints?: boolean;
  /** Lifetime of a VAPID JWT, in s (at most 24 h); default 12 h. Reused for half of it. */
  vapidTtlSeconds?: number;
  clock?: Clock;
}

const MAX_VAPID_TTL_SECONDS = 24 * 3600;

interface VapidHeader {
  authorization: string;
  expiresAt: number;
}

/** The `PushProvider` for `webpush` registrations; `deliver` serves UnifiedPush too. */
export class WebPushProvider implements PushProvider {
  readonly platforms = ['webpush'] as const;
  private readonly agent: Agent;
  private readonly bound: Semaphore;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly vapidTtlMs: number;
  private readonly vapid = new Map<string, VapidHeader>();
  private closed = false;

  constructor(private readonly options: WebPushOptions) {
    const ttl = options.vapidTtlSeconds ?? 12 * 3600;
    if (!(ttl > 60 && ttl <= MAX_VAPID_TTL_SECONDS))
      throw new RangeError('vapidTtlSeconds must be in 60..86400');
    this.vapidTtlMs = ttl * 1000;
    const maxConcurrent = options.maxConcurrent ?? 100;
    this.bound = new Semaphore(maxConcurrent);
    this.agent = keepAliveAgent(
      options.ca,
      maxConcurrent,
      options.allowPrivateEndpoints ? undefined : publicOnlyLookup,
    );
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    // Fails now, not at the first send, on a bad subject or key.
    webpush.getVapidHeaders(
      'https://example.invalid',
      options.subject,
      options.vapidKeys.publicKey,
      options.vapidKeys.privateKey,
      'aes128gcm',
    );
  }

  async send(registration: PushRegistration, notification: PushNotification): Promise<PushResult> {
    if (registration.platform !== 'webpush')
      return { status: 'failed', reason: `webpush cannot send to ${registration.platform}` };
    return this.deliver(registration.endpoint, registration.keys, notification);
  }

  /**
   * Sends to a push endpoint: encrypted for `keys` (RFC 8291), or with no payload at all when there
   * are none (a bare wake-up, as UnifiedPush distributors without keys get).
   */
  async deliver(
    endpoint: string,
    keys: { p256dh: string; auth: string } | undefined,
    n: PushNotification,
  ): Promise<PushResult> {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return { status: 'dead', reason: 'the endpoint is not a URL' };
    }
    if (url.protocol !== 'https:') return { status: 'dead', reason: 'the endpoint is not https' };
    if (!this.options.allowPrivateEndpoints && isInwardAddress(url.hostname.replace(/^\[|\]$/g, '')))
      return { status: 'dead', reason: 'the endpoint is a non-public address' };
    if (this.closed) return { status: 'retry', reason: 'closed' };
    let details: webpush.RequestDetails;
    try {
      details = webpush.generateRequestDetails(
        keys === undefined ? { endpoint, keys: { p256dh: '', auth: '' } } : { endpoint, keys },
        keys === undefined ? undefined : JSON.stringify(n.data),
        {
          TTL: Math.max(0, Math.floor(n.ttlSeconds)),
          urgency: n.urgency,
          topic: collapseToken(n.collapseKey, 32),
          contentEncoding: 'aes128gcm',
        },
      );
    } catch (err) {
      // A key that is not a P-256 point or a 16-byte secret: the subscription is unusable.
      return {
        status: 'dead',
        reason: `bad subscription keys: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
    return this.bound.run(() => this.post(url, details));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.agent.destroy();
  }

  private async post(url: URL, details: webpush.RequestDetails): Promise<PushResult> {
    if (this.closed) return retry('closed', undefined);
    const headers: Record<string, string | number> = {};
    for (const [k, v] of Object.entries(details.headers))
      if (v !== undefined) headers[k] = v as string | number;
    headers.Authorization = this.vapidHeader(url.origin);
    let res: Awaited<ReturnType<typeof httpsRequest>>;
    try {
      res = await httpsRequest(
        url.href,
        { method: 'POST', headers, body: details.body ?? Buffer.alloc(0), agent: this.agent },
        this.timeoutMs,
      );
    } catch (err) {
      // A name that resolves inward stays refused: the registration is unusable.
      if ((err as { code?: unknown }).code === 'EINWARD')
        return { status: 'dead', reason: (err as Error).message };
      return retry(networkReason(err), undefined);
    }
    if (res.status >= 200 && res.status < 300) {
      const location = res.headers.location;
      return typeof location === 'string' ? { status: 'sent', id: location } : { status: 'sent' };
    }
    const reason = `HTTP ${res.status}${res.body ? `: ${res.body.slice(0, 200)}` : ''}`;
    if (res.status === 404 || res.status === 410) return { status: 'dead', reason };
    if (res.status === 429 || res.status >= 500)
      return retry(reason, parseRetryAfter(res.headers['retry-after'], this.clock.now()));
    return { status: 'failed', reason };
  }

  /** `vapid t=…, k=…` for a push service origin (the JWT's `aud`), reused for half its lifetime. */
  private vapidHeader(origin: string): string {
    const now = this.clock.now();
    const cached = this.vapid.get(origin);
    if (cached !== undefined && now < cached.expiresAt - this.vapidTtlMs / 2) return cached.authorization;
    const expiresAt = now + this.vapidTtlMs;
    const { Authorization } = webpush.getVapidHeaders(
      origin,
      this.options.subject,
      this.options.vapidKeys.publicKey,
      this.options.vapidKeys.privateKey,
      'aes128gcm',
      Math.floor(expiresAt / 1000),
    );
    if (this.vapid.size >= 1000) this.vapid.clear(); // a handful of push services in practice
    this.vapid.set(origin, { authorization: Authorization, expiresAt });
    return Authorization;
  }
}

/**
 * The deployment's VAPID keys: read from `file` (JSON `{publicKey, privateKey}`), or generated
 * once and written there with mode 0600 (clients subscribe with the public key, so it must not
 * change between restarts). Configured keys, when given, win and nothing is written.
 */
export function loadOrCreateVapidKeys(file: string, configured?: VapidKeys): VapidKeys {
  if (configured !== undefined) return configured;
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<VapidKeys>;
    if (typeof parsed.publicKey !== 'string' || typeof parsed.privateKey !== 'string')
      throw new Error(`${file} does not hold VAPID keys ({"publicKey", "privateKey"})`);
    return { publicKey: parsed.publicKey, privateKey: parsed.privateKey };
  }
  const keys = webpush.generateVAPIDKeys();
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(keys)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return keys;
}
