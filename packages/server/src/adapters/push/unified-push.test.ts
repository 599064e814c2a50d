// Runs the PushProvider conformance suite against UnifiedPushProvider (registrations with keys:
// encrypted Web Push to the distributor's endpoint), plus registrations without keys.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { webPushHarness, webPushSetup } from '../../../test/push/web-push-harness.js';
import { pushProviderSuite } from '../conformance/push-provider.suite.js';
import { UnifiedPushProvider } from './unified-push.js';
import { WebPushProvider } from './web-push.js';

pushProviderSuite('UnifiedPushProvider', () =>
  webPushHarness('unifiedpush', (options) => new UnifiedPushProvider(options)),
);

test('UnifiedPush without keys: a VAPID-signed request with no body at all, never the data in clear', async () => {
  const s = await webPushSetup();
  const webPush = new WebPushProvider(s.options);
  const provider = new UnifiedPushProvider(webPush);
  try {
    const sub = s.server.subscribe('ok', false);
    const r = await provider.send(
      { platform: 'unifiedpush', endpoint: sub.endpoint },
      {
        data: { conv: 'dm:a:b', seq: 1, from: 'a', kind: 'text', inbox: 1, unread: 2 },
        collapseKey: 'k',
        ttlSeconds: 60,
        urgency: 'high',
      },
    );
    assert.equal(r.status, 'sent');
    const got = s.server.requests[0];
    assert.equal(got?.plaintext, undefined, 'no payload');
    assert.equal(got?.headers['content-length'], '0');
    assert.ok(got?.headers.topic && got.headers.ttl === '60');
    assert.deepEqual(s.server.violations, []);
    assert.equal(
      (
        await provider.send(
          { platform: 'webpush', endpoint: sub.endpoint, keys: { p256dh: '', auth: '' } },
          {
            data: { conv: 'c', seq: 1, from: 'a', kind: 'text', inbox: 1, unread: 0 },
            collapseKey: 'k',
            ttlSeconds: 1,
            urgency: 'normal',
          },
        )
      ).status,
      'failed',
      'not its platform',
    );
    await provider.close();
    const again = s.server.subscribe('ok', false);
    assert.equal(
      (
        await webPush.deliver(again.endpoint, undefined, {
          data: { conv: 'c', seq: 1, from: 'a', kind: 'text', inbox: 1, unread: 0 },
          collapseKey: 'k',
          ttlSeconds: 1,
          urgency: 'normal',
        })
      ).status,
      'sent',
      'closing the UnifiedPush provider leaves the shared Web Push provider open',
    );
  } finally {
    await webPush.close();
    await s.server.close();
  }
});
