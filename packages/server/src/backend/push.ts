import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApnsProvider } from '../adapters/push/apns.js';
import { FcmProvider } from '../adapters/push/fcm.js';
import { UnifiedPushProvider } from '../adapters/push/unified-push.js';
import { loadOrCreateVapidKeys, WebPushProvider } from '../adapters/push/web-push.js';
import type { Config } from '../config/schema.js';
import type { DeviceRegistry } from '../domain/devices.js';
import { PushDispatcher } from '../domain/push-dispatcher.js';
import { PushScheduler } from '../domain/push-scheduler.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { PresencePort } from '../ports/presence.js';
import type { PushProvider } from '../ports/push-provider.js';
import type { PushDeadLetters, PushQueue } from '../ports/push-queue.js';
import type { UserStore } from '../ports/user-store.js';

/** Where the generated VAPID key pair is kept, inside the data directory. */
export const VAPID_FILE = 'vapid.json';

/** The push providers the configuration turns on, and the VAPID public key clients subscribe with. */
export interface PushSetup {
  providers: PushProvider[];
  vapidPublicKey?: string;
}

/**
 * Builds the providers from the configuration: Web Push and UnifiedPush always (with configured
 * VAPID keys, or keys generated once into the data directory; in cluster mode every process must
 * share them, so they must be configured there), APNs with a key, key id and team id, FCM with a
 * service account.
 */
export function pushProviders(config: Config, log: Logger, mode: 'embedded' | 'cluster'): PushSetup {
  const ca = config.pushCaFile ? readFileSync(config.pushCaFile) : undefined;
  const providers: PushProvider[] = [];
  const out: PushSetup = { providers };
  const configured =
    config.vapidPublicKey && config.vapidPrivateKey
      ? { publicKey: config.vapidPublicKey, privateKey: config.vapidPrivateKey }
      : undefined;
  if (configured || mode === 'embedded') {
    const vapidKeys = loadOrCreateVapidKeys(join(config.dataDir, VAPID_FILE), configured);
    const webPush = new WebPushProvider({
      subject: config.webPushSubject,
      vapidKeys,
      allowPrivateEndpoints: config.pushAllowPrivateEndpoints,
      ...(ca ? { ca } : {}),
    });
    providers.push(webPush, new UnifiedPushProvider(webPush));
    out.vapidPublicKey = vapidKeys.publicKey;
  } else {
    log.warn({}, 'Web Push is off: cluster mode needs vapidPublicKey and vapidPrivateKey configured');
  }
  if (config.apnsKeyFile && config.apnsKeyId && config.apnsTeamId) {
    const endpoints: { production?: string; sandbox?: string } = {};
    if (config.apnsEndpoint) endpoints.production = config.apnsEndpoint;
    if (config.apnsSandboxEndpoint) endpoints.sandbox = config.apnsSandboxEndpoint;
    providers.push(
      new ApnsProvider({
        key: readFileSync(config.apnsKeyFile, 'utf8'),
        keyId: config.apnsKeyId,
        teamId: config.apnsTeamId,
        environment: config.apnsEnvironment,
        endpoints,
        ...(ca ? { ca } : {}),
      }),
    );
  }
  if (config.fcmServiceAccountFile) {
    providers.push(
      new FcmProvider({
        serviceAccount: readFileSync(config.fcmServiceAccountFile, 'utf8'),
        ...(config.fcmEndpoint ? { endpoint: config.fcmEndpoint } : {}),
        ...(ca ? { ca } : {}),
      }),
    );
  }
  return out;
}

/** Where stored messages become push jobs: beside an inbox writer. */
export function pushScheduler(d: {
  devices: DeviceRegistry;
  presence: PresencePort;
  queue: PushQueue;
  log: Logger;
  metrics: Metrics;
}): PushScheduler {
  return new PushScheduler(d.devices, d.presence, d.queue, d.log.child({ stage: 'push' }), (n) =>
    d.metrics.push.skipped.inc({ reason: 'overload' }, n),
  );
}

/** The push role: takes jobs from the queue and sends them through the providers. */
export function pushDispatcher(d: {
  config: Config;
  devices: DeviceRegistry;
  presence: PresencePort;
  queue: PushQueue;
  deadLetters: PushDeadLetters;
  users: Pick<UserStore, 'mutes'>;
  unread: (user: string) => Promise<number>;
  providers: PushProvider[];
  clock: Clock;
  log: Logger;
  metrics: Metrics;
}): PushDispatcher {
  return new PushDispatcher(
    {
      queue: d.queue,
      deadLetters: d.deadLetters,
      devices: d.devices,
      users: d.users,
      presence: d.presence,
      providers: d.providers,
      unread: d.unread,
      clock: d.clock,
      log: d.log.child({ stage: 'push' }),
      observer: d.metrics.pushObserver(),
    },
    { burstMs: d.config.pushBurstMs, retries: d.config.pushRetries, ttlSeconds: d.config.pushTtlSeconds },
  );
}
