// Runs the PushProvider conformance suite against ApnsProvider talking HTTP/2 over TLS to the
// local APNs of test/push/apns-server.ts, plus what only APNs has: GOAWAY, background pushes,
// background pushes and the sandbox host.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ApnsTestServer } from '../../../test/push/apns-server.js';
import { testTls } from '../../../test/tls-certs.js';
import { pushProviderSuite } from '../conformance/push-provider.suite.js';
import { ApnsProvider } from './apns.js';

const TOPIC = 'com.example.parley';
const keys = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

async function setup(maxConcurrent = 3, timeoutMs = 1000) {
  const start = Date.now();
  let clock = start;
  const { publicKey, privateKey } = keys();
  const tls = testTls();
  const server = await ApnsTestServer.start({
    tls,
    publicKey,
    keyId: 'KEY1234567',
    teamId: 'TEAM123456',
    topic: TOPIC,
    now: () => clock,
    retryAfterSeconds: 7,
    slowMs: 60,
  });
  const provider = new ApnsProvider({
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    keyId: 'KEY1234567',
    teamId: 'TEAM123456',
    endpoints: { production: server.url, sandbox: server.url.replace('127.0.0.1', 'localhost') },
    ca: tls.ca,
    maxConcurrent,
    timeoutMs,
    clock: { now: () => clock },
  });
  return { server, provider, advance: (ms: number) => (clock += ms) };
}

pushProviderSuite('ApnsProvider', async () => {
  const { server, provider, advance } = await setup();
  return {
    provider,
    registration(outcome) {
      const token = server.device(outcome);
      return { registration: { platform: 'apns', token, topic: TOPIC }, to: token };
    },
    received: () =>
      server.requests.map((r) => {
        const expiration = Number(r.headers['apns-expiration']);
        const p = r.headers['apns-priority'];
        return {
          to: r.token,
          data: r.payload.parley as never,
          collapse: r.headers['apns-collapse-id'],
          ttlSeconds: expiration === 0 ? 0 : expiration - Math.floor(advance(0) / 1000),
          priority: p === '10' ? 'high' : p === '5' ? 'normal' : p === '1' ? 'low' : undefined,
          authToken: r.jwt,
        };
      }),
    violations: () => server.violations,
    advance,
    refreshAfterMs: 40 * 60_000 + 1000,
    maxConcurrent: 3,
    timeoutMs: 1000,
    retryAfterSeconds: 7,
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

describe('ApnsProvider, beyond the suite', () => {
  let s: Awaited<ReturnType<typeof setup>>;
  before(async () => {
    s = await setup();
  });
  after(async () => {
    await s.provider.close();
    await s.server.close();
  });
  const note = { conv: 'dm:a:b', seq: 1, from: 'a', kind: 'text', inbox: 1, unread: 2 };
  const n = { data: note, collapseKey: 'k', ttlSeconds: 60, urgency: 'high' as const };

  test('one HTTP/2 session carries many sends; after GOAWAY the next send opens a new one', async () => {
    const before = s.server.sessions;
    for (let i = 0; i < 3; i++)
      assert.equal(
        (await s.provider.send({ platform: 'apns', token: s.server.device('ok'), topic: TOPIC }, n)).status,
        'sent',
      );
    assert.ok(s.server.sessions - before <= 1, 'reused');
    assert.equal(
      (await s.provider.send({ platform: 'apns', token: s.server.device('goaway'), topic: TOPIC }, n)).status,
      'sent',
    );
    const afterGoaway = s.server.sessions;
    assert.equal(
      (await s.provider.send({ platform: 'apns', token: s.server.device('ok'), topic: TOPIC }, n)).status,
      'sent',
    );
    assert.equal(s.server.sessions, afterGoaway + 1, 'a new session after GOAWAY');
    assert.deepEqual(s.server.violations, []);
  });

  test('a background push is apns-push-type background at priority 5 with content-available', async () => {
    const token = s.server.device('ok');
    const r = await s.provider.send({ platform: 'apns', token, topic: TOPIC }, { ...n, alert: false });
    assert.equal(r.status, 'sent');
    const got = s.server.requests.find((q) => q.token === token);
    assert.equal(got?.headers['apns-push-type'], 'background');
    assert.equal(got?.headers['apns-priority'], '5');
    assert.deepEqual(got?.payload.aps, { 'content-available': 1 });
    assert.deepEqual(got?.payload.parley, note);
  });

  test('a sandbox registration goes to the sandbox host, the others to production', async () => {
    const sandbox = s.server.device('ok');
    const production = s.server.device('ok');
    assert.equal(
      (await s.provider.send({ platform: 'apns', token: sandbox, topic: TOPIC, environment: 'sandbox' }, n))
        .status,
      'sent',
    );
    assert.equal(
      (await s.provider.send({ platform: 'apns', token: production, topic: TOPIC }, n)).status,
      'sent',
    );
    const authority = (token: string) =>
      s.server.requests.find((q) => q.token === token)?.headers[':authority'];
    assert.match(String(authority(sandbox)), /^localhost:/);
    assert.match(String(authority(production)), /^127\.0\.0\.1:/);
  });

  test('an unknown token, a token that is not hex and another platform are refused', async () => {
    assert.equal(
      (await s.provider.send({ platform: 'apns', token: 'abcd', topic: TOPIC }, n)).status,
      'dead',
    );
    assert.equal(
      (await s.provider.send({ platform: 'apns', token: 'zz/../x', topic: TOPIC }, n)).status,
      'dead',
    );
    assert.equal((await s.provider.send({ platform: 'fcm', token: 'abc' }, n)).status, 'failed');
  });
});
