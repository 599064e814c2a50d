/**
 * UnifiedPush: the app's chosen distributor (ntfy, NextPush, Sunup, a self-hosted server) gives it
 * an `https` endpoint, and the application server POSTs to it exactly as to a Web Push service.
 *
 * Why this way: UnifiedPush's server-side protocol *is* Web Push (RFC 8030) with VAPID and
 * RFC 8291 encryption, so this adapter is `WebPushProvider.deliver` under another platform name,
 * sharing its connections, bound and VAPID keys when given the same instance.
 *
 * Registrations without keys: distributors older than UnifiedPush's Web Push profile hand apps a
 * bare endpoint, and `push_register` for `unifiedpush` carries only `endpoint` today. The payload
 * is never sent in clear to a third-party server; without keys the request has no body at all, a
 * wake-up on which the app syncs over its own connection. With keys it is the encrypted payload.
 *
 * @module
 */
import type {
  PushNotification,
  PushProvider,
  PushRegistration,
  PushResult,
} from '../../ports/push-provider.js';
import { type WebPushOptions, WebPushProvider } from './web-push.js';

/** The `PushProvider` for `unifiedpush` registrations. */
export class UnifiedPushProvider implements PushProvider {
  readonly platforms = ['unifiedpush'] as const;
  private readonly webPush: WebPushProvider;
  private readonly owned: boolean;

  /**
   * Over an existing `WebPushProvider` (shared connections and bound; closing this one leaves it
   * open), or over one of its own made from `options`.
   */
  constructor(over: WebPushProvider | WebPushOptions) {
    this.owned = !(over instanceof WebPushProvider);
    this.webPush = over instanceof WebPushProvider ? over : new WebPushProvider(over);
  }

  async send(registration: PushRegistration, notification: PushNotification): Promise<PushResult> {
    if (registration.platform !== 'unifiedpush')
      return { status: 'failed', reason: `unifiedpush cannot send to ${registration.platform}` };
    return this.webPush.deliver(registration.endpoint, registration.keys, notification);
  }

  async close(): Promise<void> {
    if (this.owned) await this.webPush.close();
  }
}
