/**
 * Web Push: registers the service worker (`/sw.js`), subscribes with the server's VAPID key (from
 * the `connect` reply) and registers the subscription for this device. The server pushes to a
 * device only while it has no live connection, so notifications come when this tab is closed;
 * the worker stays quiet while a Parley window is in front.
 *
 * @module
 */

import type { ParleyClient } from '@parley/sdk';

/** The outcome of {@link enableNotifications}, for the button to show. */
export type PushOutcome = 'enabled' | 'denied' | 'unsupported' | 'unavailable';

/** Whether this browser can do Web Push at all. */
export function pushSupported(): boolean {
  return 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

/** Whether notifications were already allowed for this site. */
export function notificationsGranted(): boolean {
  return pushSupported() && Notification.permission === 'granted';
}

/** Asks for permission, subscribes, and registers the subscription with the server for this device. */
export async function enableNotifications(client: ParleyClient): Promise<PushOutcome> {
  if (!pushSupported()) return 'unsupported';
  const key = client.connectResult?.vapid_public_key;
  if (!key) return 'unavailable';
  if ((await Notification.requestPermission()) !== 'granted') return 'denied';
  const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  await navigator.serviceWorker.ready;
  const applicationServerKey = fromBase64Url(key);
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options.applicationServerKey, applicationServerKey)) {
    // Subscribed with another server key (the server's VAPID key changed): start over.
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
  const json = subscription.toJSON();
  const p256dh = json.keys?.p256dh;
  const auth = json.keys?.auth;
  if (!json.endpoint || !p256dh || !auth) return 'unsupported';
  await client.registerPush({
    platform: 'webpush',
    subscription: { endpoint: json.endpoint, keys: { p256dh, auth } },
  });
  return 'enabled';
}

function fromBase64Url(s: string): Uint8Array<ArrayBuffer> {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function sameKey(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.length) return false;
  const x = new Uint8Array(a);
  return x.every((v, i) => v === b[i]);
}
