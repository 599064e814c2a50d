// Runs the PushProvider conformance suite against FcmProvider talking to the local OAuth token
// endpoint and FCM v1 API of test/push/fcm-server.ts, plus what only FCM has: the grant refused,
// an access token refused mid-life, the service account as JSON text.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { FcmTestServer } from '../../../test/push/fcm-server.js';
import { testTls } from '../../../test/tls-certs.js';
import { pushProviderSuite } from '../conformance/push-provider.suite.js';
import { FcmProvider, type ServiceAccount } from './fcm.js';

const PROJECT = 'parley-test';
const EMAIL = 'parley-push@parley-test.iam.gserviceaccount.com';

async function setup(maxConcurrent = 3, timeoutMs = 1000) {
  let clock = Date.now();
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const tls = testTls();
  const server = await FcmTestServer.start({
    tls,
    publicKey,
    clientEmail: EMAIL,
    privateKeyId: 'key-1',
    projectId: PROJECT,
    now: () => clock,
    retryAfterSeconds: 9,
    slowMs: 60,
  });
  const account: ServiceAccount = {
    project_id: PROJECT,
    client_email: EMAIL,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    private_key_id: 'key-1',
    token_uri: server.tokenUri,
  };
  const provider = new FcmProvider({
    serviceAccount: JSON.stringify({ type: 'service_account', ...account }),
    endpoint: server.url,
    ca: tls.ca,
    maxConcurrent,
    timeoutMs,
    clock: { now: () => clock },
  });
  return { server, provider, account, tls, advance: (ms: number) => (clock += ms) };
}

pushProviderSuite('FcmProvider', async () => {
  const { server, provider, advance } = await setup();
  return {
    provider,
    registration(outcome) {
      const token = server.device(outcome);
      return { registration: { platform: 'fcm', token }, to: token };
    },
    received: () =>
      server.requests.map(({ message: m, accessToken }) => ({
        to: m.token,
        data: {
          conv: m.data.conv ?? '',
          seq: Number(m.data.seq),
          from: m.data.sender ?? '',
          kind: m.data.kind ?? '',
          inbox: Number(m.data.inbox),
          unread: Number(m.data.unread),
        },
        collapse: m.android.collapse_key,
        ttlSeconds: Number.parseFloat(m.android.ttl),
        priority: m.android.priority.toLowerCase() as 'high' | 'normal',
        authToken: accessToken,
      })),
    violations: () => server.violations,
    advance,
    refreshAfterMs: 56 * 60_000,
    grants: () => server.grants,
    maxConcurrent: 3,
    timeoutMs: 1000,
    retryAfterSeconds: 9,
    maxInFlight: () => server.maxInFlight,
    resetInFlight: () => {
      server.maxInFlight = server.inFlight;
    },
    close: async () => {
      await provider.close();
      await server.close();
    },
  };
});

describe('FcmProvider, beyond the suite', () => {
  const n = {
    data: { conv: 'dm:a:b', seq: 1, from: 'a', kind: 'text', inbox: 1, unread: 2 },
    collapseKey: 'k',
    ttlSeconds: 60,
    urgency: 'normal' as const,
  };

  test('the same collapse id, TTL and priority go to the iOS and web parts of the message', async () => {
    const s = await setup();
    try {
      const token = s.server.device('ok');
      assert.equal((await s.provider.send({ platform: 'fcm', token }, n)).status, 'sent');
      const m = s.server.requests[0]?.message;
      assert.equal(m?.apns?.headers?.['apns-collapse-id'], m?.android.collapse_key);
      assert.equal(m?.webpush?.headers?.Topic, m?.android.collapse_key);
      assert.equal(m?.webpush?.headers?.TTL, '60');
      assert.equal(m?.webpush?.headers?.Urgency, 'normal');
      assert.equal(m?.android.priority, 'normal');
    } finally {
      await s.provider.close();
      await s.server.close();
    }
  });

  test('an access token FCM refuses is dropped: the next send gets a new one', async () => {
    const s = await setup();
    try {
      assert.equal(
        (await s.provider.send({ platform: 'fcm', token: s.server.device('ok') }, n)).status,
        'sent',
      );
      s.server.issued.clear(); // revoked
      const refused = await s.provider.send({ platform: 'fcm', token: s.server.device('ok') }, n);
      assert.deepEqual(refused, { status: 'retry', reason: 'UNAUTHENTICATED', retryAfterMs: 0 });
      assert.equal(
        (await s.provider.send({ platform: 'fcm', token: s.server.device('ok') }, n)).status,
        'sent',
      );
      assert.equal(s.server.grants, 2);
    } finally {
      await s.provider.close();
      await s.server.close();
    }
  });

  test('a grant the token endpoint refuses (another key) is failed, not retried', async () => {
    const s = await setup();
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const provider = new FcmProvider({
      serviceAccount: {
        ...s.account,
        private_key: other.export({ type: 'pkcs8', format: 'pem' }).toString(),
      },
      endpoint: s.server.url,
      ca: s.tls.ca,
    });
    try {
      const r = await provider.send({ platform: 'fcm', token: s.server.device('ok') }, n);
      assert.equal(r.status, 'failed');
      assert.match(r.status === 'failed' ? r.reason : '', /invalid_grant/);
    } finally {
      await provider.close();
      await s.provider.close();
      await s.server.close();
    }
  });

  test('a service account without its key is refused at construction', () => {
    assert.throws(
      () => new FcmProvider({ serviceAccount: { project_id: 'p', client_email: 'e', private_key: '' } }),
      /private_key/,
    );
  });
});
