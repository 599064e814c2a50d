/**
 * A local Web Push service for end-to-end push tests (`web-push-server.ts` over the test CA), with
 * the server settings that point a Parley deployment at it: a VAPID pair, the CA file, and
 * endpoints on 127.0.0.1 allowed.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import webpush from 'web-push';
import { testTls } from '../tls-certs.js';
import { WebPushTestServer } from './web-push-server.js';

export interface LocalPushService {
  push: WebPushTestServer;
  /** The server settings, as a config object (in-process servers) … */
  config: {
    vapidPublicKey: string;
    vapidPrivateKey: string;
    pushCaFile: string;
    pushAllowPrivateEndpoints: true;
  };
  /** … and as the environment of a `parley serve` child process. */
  env: Record<string, string>;
}

/** Starts the service; the CA file is written into `dir`. */
export async function localPushService(dir: string, retryAfterSeconds = 1): Promise<LocalPushService> {
  const tls = testTls();
  const vapid = webpush.generateVAPIDKeys();
  const push = await WebPushTestServer.start({
    tls,
    applicationServerKey: vapid.publicKey,
    now: () => Date.now(),
    retryAfterSeconds,
    slowMs: 50,
  });
  const caFile = join(dir, 'push-ca.pem');
  writeFileSync(caFile, tls.ca);
  return {
    push,
    config: {
      vapidPublicKey: vapid.publicKey,
      vapidPrivateKey: vapid.privateKey,
      pushCaFile: caFile,
      pushAllowPrivateEndpoints: true,
    },
    env: {
      PARLEY_VAPID_PUBLIC_KEY: vapid.publicKey,
      PARLEY_VAPID_PRIVATE_KEY: vapid.privateKey,
      PARLEY_PUSH_CA_FILE: caFile,
      PARLEY_PUSH_ALLOW_PRIVATE_ENDPOINTS: 'true',
    },
  };
}

/** The subscription id in a test endpoint's URL (what `WebPushRequest.id` holds). */
export const endpointId = (endpoint: string): string => endpoint.slice(endpoint.lastIndexOf('/') + 1);
