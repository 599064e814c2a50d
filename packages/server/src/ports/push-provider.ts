/**
 * The `PushProvider` port: wakes one offline device through its platform's push service (APNs,
 * FCM, Web Push, UnifiedPush). One `send` is one request to the provider; what to do with the
 * answer (retry later, drop the registration, dead-letter the job) is the caller's business, so
 * the result says which it is and never throws.
 *
 * Registrations carry exactly what a client sends in `push_register` (`@parley/protocol`), plus
 * what the server may add (the APNs environment).
 *
 * @module
 */
import type { PushPlatform, PushRegisterFrame, WebPushSubscription } from '@parley/protocol';

/** An APNs device token (hex) for the app whose bundle id is `topic`. */
export interface ApnsRegistration {
  platform: 'apns';
  token: string;
  topic: string;
  /** Which APNs the token belongs to (development builds get sandbox tokens); default: the provider's. */
  environment?: 'production' | 'sandbox';
}

/** An FCM registration token. */
export interface FcmRegistration {
  platform: 'fcm';
  token: string;
}

/** A W3C push subscription (`https` endpoint, the browser's P-256 key and auth secret). */
export interface WebPushRegistration extends WebPushSubscription {
  platform: 'webpush';
}

/**
 * A UnifiedPush distributor endpoint (`https`). With `keys` the message is an encrypted Web Push
 * message; distributors older than UnifiedPush's Web Push profile hand out no keys, and then the
 * request carries no payload at all (a bare wake-up: the app syncs), never the data in clear.
 */
export interface UnifiedPushRegistration {
  platform: 'unifiedpush';
  endpoint: string;
  keys?: WebPushSubscription['keys'];
}

/** One device's push registration, per platform. */
export type PushRegistration =
  | ApnsRegistration
  | FcmRegistration
  | WebPushRegistration
  | UnifiedPushRegistration;

/**
 * What the app learns from a push. Never the message text: the app wakes, then fetches the
 * message (`sync`) over its own connection. `unread` is the device's badge.
 */
export interface PushData {
  conv: string;
  seq: number;
  from: string;
  kind: string;
  /** The recipient's inbox number of the event, so the app can sync up to it. */
  inbox: number;
  unread: number;
}

/** How urgently the provider should deliver: `high` wakes the device now, `normal` may wait for it. */
export type PushUrgency = 'high' | 'normal';

/** One notification for one device. */
export interface PushNotification {
  data: PushData;
  /**
   * Notifications with the same key replace each other at the provider (APNs `apns-collapse-id`,
   * FCM `collapse_key`, Web Push `Topic`): one per device and conversation burst. Any string; each
   * adapter fits it to its provider's limits (hashing it, so conversation ids do not travel).
   */
  collapseKey: string;
  /** How long the provider keeps it for an unreachable device, in seconds (0: now or never). */
  ttlSeconds: number;
  urgency: PushUrgency;
  /**
   * Shown to the user (`true`, the default: APNs `alert`, priority as `urgency`) or delivered to the
   * app only (APNs `background`, always priority 5). FCM and Web Push carry data either way.
   */
  alert?: boolean;
}

/** The outcome of one `send`. */
export type PushResult =
  /** The provider accepted it (`id`: its message id, when it gives one). */
  | { status: 'sent'; id?: string }
  /**
   * Not delivered for now (429, 5xx, network error, timeout, an expired provider token): try again
   * later, not before `retryAfterMs` when the provider said so (`Retry-After`).
   */
  | { status: 'retry'; reason: string; retryAfterMs?: number }
  /** The registration is gone (uninstalled, expired, not this app's): delete it, do not retry. */
  | { status: 'dead'; reason: string }
  /** Refused for good (bad request, bad credentials, payload too large): retrying will not help. */
  | { status: 'failed'; reason: string };

/**
 * Sends notifications through one push service. Each adapter bounds its own concurrency and times
 * out each request (a timeout is a `retry`).
 */
export interface PushProvider {
  /** The registration platforms this provider delivers to; `send` fails any other. */
  readonly platforms: readonly PushPlatform[];
  /** Sends one notification to one device. Never rejects: every failure is a `PushResult`. */
  send(registration: PushRegistration, notification: PushNotification): Promise<PushResult>;
  /** Closes connections; sends in flight end as `retry`. */
  close(): Promise<void>;
}

/**
 * The registration a validated `push_register` frame describes (the validator guarantees the
 * fields of its platform are there), so the protocol and the providers agree on one shape.
 */
export function pushRegistrationOf(frame: PushRegisterFrame): PushRegistration {
  switch (frame.platform) {
    case 'apns':
      return { platform: 'apns', token: frame.token ?? '', topic: frame.topic ?? '' };
    case 'fcm':
      return { platform: 'fcm', token: frame.token ?? '' };
    case 'webpush': {
      const sub = frame.subscription ?? { endpoint: '', keys: { p256dh: '', auth: '' } };
      return { platform: 'webpush', endpoint: sub.endpoint, keys: { ...sub.keys } };
    }
    case 'unifiedpush':
      return frame.keys
        ? { platform: 'unifiedpush', endpoint: frame.endpoint ?? '', keys: { ...frame.keys } }
        : { platform: 'unifiedpush', endpoint: frame.endpoint ?? '' };
  }
}

/**
 * A registration as stored: JSON with sorted keys, so equal registrations compare equal (what
 * `DeviceStore.dropPush` compares).
 */
export function registrationJson(registration: PushRegistration): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sorted((v as Record<string, unknown>)[k]);
    return out;
  };
  return JSON.stringify(sorted(registration));
}
