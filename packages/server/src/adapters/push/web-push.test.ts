// Runs the PushProvider conformance suite against WebPushProvider posting to the local push
// service of test/push/web-push-server.ts, which verifies VAPID and decrypts every payload, plus
// the VAPID key file, VAPID claims and unusable subscriptions.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { webPushHarness, webPushSetup } from '../../../test/push/web-push-harness.js';
import { pushProviderSuite } from '../conformance/push-provider.suite.js';
import { loadOrCreateVapidKeys, WebPushProvider } from './web-push.js';

pushProviderSuite('WebPushProvider', () =>
  webPushHarness('webpush', (options) => new WebPushProvider(options)),
);

describe('WebPushProvider, beyond the suite', () => {
  const n = {
    data: { conv: 'dm:a:b', seq: 1, from: 'a', kind: 'text', inbox: 1, unread: 2 },
    collapseKey: 'k',
    ttlSeconds: 60,
    urgency: 'high' as const,
  };

  test('the VAPID JWT names the push service origin, the subject and an expiry within 24 h', async () => {
    const s = await webPushSetup();
    const provider = new WebPushProvider(s.options);
    try {
      const sub = s.server.subscribe('ok');
      assert.equal(
        (await provider.send({ platform: 'webpush', endpoint: sub.endpoint, keys: sub.keys! }, n)).status,
        'sent',
      );
      const claims = s.server.requests[0]?.vapidClaims;
      assert.equal(claims?.aud, s.server.origin);
      assert.equal(claims?.sub, 'mailto:push-admin@example.org');
      const left = (claims?.exp ?? 0) - Math.floor(s.advance(0) / 1000);
      assert.ok(left > 0 && left <= 3600, `expires in ${left} s`);
      assert.equal(s.server.requests[0]?.headers['content-encoding'], 'aes128gcm');
    } finally {
      await provider.close();
      await s.server.close();
    }
  });

  test('endpoints on the deployment’s own network are refused unless allowed: literal or by name', async () => {
    const s = await webPushSetup();
    const guarded = new WebPushProvider({ ...s.options, allowPrivateEndpoints: false });
    try {
      const sub = s.server.subscribe('ok');
      const port = new URL(sub.endpoint).port;
      const path = new URL(sub.endpoint).pathname;
      for (const host of [
        '127.0.0.1',
        'localhost',
        '[::1]',
        '10.1.2.3',
        '169.254.169.254',
        '[::ffff:192.168.0.1]',
      ]) {
        const r = await guarded.send(
          { platform: 'webpush', endpoint: `https://${host}:${port}${path}`, keys: sub.keys! },
          n,
        );
        assert.equal(r.status, 'dead', `${host}: ${JSON.stringify(r)}`);
        assert.match((r as { reason: string }).reason, /non-public address/);
      }
      assert.equal(s.server.requests.length, 0, 'no request reached the inward service');
      const allowed = new WebPushProvider(s.options);
      try {
        const r = await allowed.send({ platform: 'webpush', endpoint: sub.endpoint, keys: sub.keys! }, n);
        assert.equal(r.status, 'sent', 'allowed when configured');
      } finally {
        await allowed.close();
      }
    } finally {
      await guarded.close();
      await s.server.close();
    }
  });

  test('a subscription with unusable keys or a non-https endpoint is dead without a request', async () => {
    const s = await webPushSetup();
    const provider = new WebPushProvider(s.options);
    try {
      const sub = s.server.subscribe('ok');
      const bad = await provider.send(
        { platform: 'webpush', endpoint: sub.endpoint, keys: { p256dh: 'AAAA', auth: 'BBBB' } },
        n,
      );
      assert.equal(bad.status, 'dead');
      const plain = await provider.send(
        { platform: 'webpush', endpoint: 'http://push.example/x', keys: sub.keys! },
        n,
      );
      assert.equal(plain.status, 'dead');
      assert.equal(s.server.requests.length + s.server.violations.length, 0, 'nothing reached the server');
    } finally {
      await provider.close();
      await s.server.close();
    }
  });

  test('VAPID keys are generated once into a 0600 file and read back after', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-vapid-'));
    try {
      const file = join(dir, 'data', 'vapid.json');
      const first = loadOrCreateVapidKeys(file);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(Buffer.from(first.publicKey, 'base64url').length, 65);
      assert.equal(Buffer.from(first.privateKey, 'base64url').length, 32);
      assert.deepEqual(loadOrCreateVapidKeys(file), first, 'the same keys after a restart');
      assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), first);
      const configured = { publicKey: 'p', privateKey: 'q' };
      assert.deepEqual(loadOrCreateVapidKeys(join(dir, 'other.json'), configured), configured);
      assert.throws(() => statSync(join(dir, 'other.json')), 'configured keys write nothing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad VAPID subject or key is refused at construction', async () => {
    const s = await webPushSetup();
    try {
      assert.throws(
        () => new WebPushProvider({ ...s.options, subject: 'push-admin@example.org' }),
        /subject/i,
      );
      assert.throws(
        () => new WebPushProvider({ ...s.options, vapidKeys: { publicKey: 'x', privateKey: 'y' } }),
      );
    } finally {
      await s.server.close();
    }
  });
});
