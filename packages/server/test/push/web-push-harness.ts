/**
 * The conformance harness of the Web Push family: a `WebPushTestServer` and a provider (Web Push
 * or UnifiedPush) made over it by `build`, on one clock. Shared by `web-push.test.ts` and
 * `unified-push.test.ts`.
 * @module
 */
import webpush from 'web-push';
import type { PushProviderHarness } from '../../src/adapters/conformance/push-provider.suite.js';
import type { WebPushOptions } from '../../src/adapters/push/web-push.js';
import type { PushData, PushProvider, PushRegistration } from '../../src/ports/push-provider.js';
import { testTls } from '../tls-certs.js';
import { WebPushTestServer } from './web-push-server.js';

export const MAX_CONCURRENT = 3;
export const TIMEOUT_MS = 1000;
export const RETRY_AFTER_SECONDS = 11;
/** VAPID JWT lifetime of the tests' providers: reused for half, so 31 min forces a new one. */
export const VAPID_TTL_SECONDS = 3600;

/** A Web Push test server and the options of a provider that trusts it, on one movable clock. */
export async function webPushSetup() {
  let clock = Date.now();
  const tls = testTls();
  const vapidKeys = webpush.generateVAPIDKeys();
  const server = await WebPushTestServer.start({
    tls,
    applicationServerKey: vapidKeys.publicKey,
    now: () => clock,
    retryAfterSeconds: RETRY_AFTER_SECONDS,
    slowMs: 60,
  });
  const options: WebPushOptions = {
    subject: 'mailto:push-admin@example.org',
    vapidKeys,
    ca: tls.ca,
    allowPrivateEndpoints: true,
    maxConcurrent: MAX_CONCURRENT,
    timeoutMs: TIMEOUT_MS,
    vapidTtlSeconds: VAPID_TTL_SECONDS,
    clock: { now: () => clock },
  };
  return { server, options, vapidKeys, advance: (ms: number) => (clock += ms) };
}

/** The suite's harness over a provider built from `webPushSetup`'s options. */
export async function webPushHarness(
  platform: 'webpush' | 'unifiedpush',
  build: (options: WebPushOptions) => PushProvider,
): Promise<PushProviderHarness> {
  const { server, options, advance } = await webPushSetup();
  const provider = build(options);
  return {
    provider,
    registration(outcome) {
      const sub = server.subscribe(outcome);
      const id = sub.endpoint.slice(sub.endpoint.lastIndexOf('/') + 1);
      const keys = sub.keys ?? { p256dh: '', auth: '' };
      const registration: PushRegistration =
        platform === 'webpush'
          ? { platform, endpoint: sub.endpoint, keys }
          : { platform, endpoint: sub.endpoint, keys };
      return { registration, to: id };
    },
    received: () =>
      server.requests.map((r) => ({
        to: r.id,
        data: JSON.parse(r.plaintext ?? 'null') as PushData,
        collapse: r.headers.topic,
        ttlSeconds: Number(r.headers.ttl),
        priority: r.headers.urgency === 'high' ? 'high' : r.headers.urgency === 'normal' ? 'normal' : 'low',
        authToken: r.vapidJwt,
      })),
    violations: () => server.violations,
    advance,
    refreshAfterMs: (VAPID_TTL_SECONDS / 2) * 1000 + 60_000,
    maxConcurrent: MAX_CONCURRENT,
    timeoutMs: TIMEOUT_MS,
    retryAfterSeconds: RETRY_AFTER_SECONDS,
    maxInFlight: () => server.maxInFlight,
    resetInFlight: () => {
      server.maxInFlight = server.inFlight;
    },
    close: async () => {
      await provider.close();
      await server.close();
    },
  };
}
