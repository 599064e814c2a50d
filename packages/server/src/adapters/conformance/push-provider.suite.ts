/**
 * The conformance suite of the `PushProvider` port, run against each adapter talking to its local
 * test server (`packages/server/test/push/`), which checks what the real service checks (auth
 * token signatures and claims, headers, payload; Web Push bodies are decrypted) and answers as the
 * service does on demand. The suite checks: what the app receives is what was sent; collapse key,
 * TTL and urgency reach the provider; gone registrations are `dead`; throttling, server errors,
 * resets and timeouts are `retry` (with the provider's `Retry-After`); the auth token is reused,
 * also by concurrent first sends, and refreshed before it expires; the concurrency bound holds.
 * @module
 */
import assert from 'node:assert/strict';
import type {
  PushData,
  PushNotification,
  PushProvider,
  PushRegistration,
  PushResult,
} from '../../ports/push-provider.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/**
 * How the test server answers a registration, whatever the adapter:
 * - `ok`: accepted (200/201);
 * - `gone`: the registration no longer exists (APNs 410 `Unregistered`, FCM 404 `UNREGISTERED`,
 *   Web Push 410);
 * - `invalid-token`: the provider's other "not a device of yours" answer (APNs 400
 *   `BadDeviceToken`, FCM 403 `SENDER_ID_MISMATCH`, Web Push 404);
 * - `rejected`: a permanent refusal of the request (APNs 413 `PayloadTooLarge`, FCM 400
 *   `INVALID_ARGUMENT`, Web Push 413);
 * - `throttled`: 429 with `Retry-After` (the harness's `retryAfterSeconds`);
 * - `server-error`: 500; `unavailable`: 503 with `Retry-After`;
 * - `hang`: never answers; `slow`: accepts after a short delay; `reset`: the request's stream or
 *   connection is reset before an answer.
 */
export type PushOutcome =
  | 'ok'
  | 'gone'
  | 'invalid-token'
  | 'rejected'
  | 'throttled'
  | 'server-error'
  | 'unavailable'
  | 'hang'
  | 'slow'
  | 'reset';

/** A request the test server verified and accepted, as the suite compares it across providers. */
export interface ReceivedPush {
  /** Which registration it went to (the harness's `to` of that registration). */
  to: string;
  /** The notification data as the app gets it (decrypted; FCM's strings read back as numbers). */
  data: PushData;
  /** The provider's collapse id (APNs `apns-collapse-id`, FCM `android.collapse_key`, Web Push `Topic`). */
  collapse: string | undefined;
  /** How long the provider is asked to keep it, in seconds. */
  ttlSeconds: number | undefined;
  priority: 'high' | 'normal' | 'low' | undefined;
  /** The credential the request carried (APNs provider JWT, FCM access token, VAPID JWT). */
  authToken: string;
}

/** What an adapter's runner hands the suite. */
export interface PushProviderHarness extends Closable {
  /** Built with `maxConcurrent` and `timeoutMs` below, on the harness's clock. */
  provider: PushProvider;
  /** A fresh registration the test server answers with `outcome`, and its `to`. */
  registration(outcome: PushOutcome): { registration: PushRegistration; to: string };
  /** Every request the server accepted, in arrival order. */
  received(): readonly ReceivedPush[];
  /** Every request the server refused because it broke the provider's rules (should stay empty). */
  violations(): readonly string[];
  /** Moves the clock the adapter and the test server share. */
  advance(ms: number): void;
  /** Advancing the clock by this much makes the adapter replace its auth token. */
  refreshAfterMs: number;
  /** How many auth grants the adapter obtained from a token endpoint, when it uses one (FCM). */
  grants?: () => number;
  maxConcurrent: number;
  timeoutMs: number;
  /** The `Retry-After` (seconds) the server sends with 429 and 503. */
  retryAfterSeconds: number;
  /** The most requests the server held at once since `resetInFlight`. */
  maxInFlight(): number;
  resetInFlight(): void;
}

/** Registers the `PushProvider` conformance tests for one adapter. */
export function pushProviderSuite(
  name: string,
  make: () => Promise<PushProviderHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'PushProvider', adapter: name, make, options }, ({ h, check, id }) => {
    let n = 0;
    const notification = (over: Partial<PushNotification> = {}): PushNotification => ({
      data: {
        conv: `dm:${id('a')}:${id('b')}`,
        seq: ++n,
        from: id('u'),
        kind: 'text',
        inbox: 100 + n,
        unread: n % 7,
      },
      collapseKey: id('burst'),
      ttlSeconds: 3600,
      urgency: 'high',
      ...over,
    });
    const send = async (outcome: PushOutcome, over: Partial<PushNotification> = {}) => {
      const { registration, to } = h().registration(outcome);
      const sent = notification(over);
      const result = await h().provider.send(registration, sent);
      return { result, to, sent, registration };
    };
    const receivedBy = (to: string) =>
      h()
        .received()
        .filter((r) => r.to === to);
    const noViolations = () =>
      assert.deepEqual(h().violations(), [], 'the test server found no protocol violation');
    const expectStatus = (result: PushResult, status: PushResult['status']) =>
      assert.equal(result.status, status, `expected ${status}, got ${JSON.stringify(result)}`);

    // First, while the adapter holds no auth token yet.
    check('concurrent first sends share one auth token', async () => {
      const sends = await Promise.all(Array.from({ length: 5 }, () => send('ok')));
      for (const s of sends) expectStatus(s.result, 'sent');
      const tokens = new Set(sends.flatMap((s) => receivedBy(s.to).map((r) => r.authToken)));
      assert.equal(tokens.size, 1, 'one token for all five');
      if (h().grants) assert.equal(h().grants?.(), 1, 'one grant');
      noViolations();
    });

    check('the app receives exactly the data that was sent', async () => {
      const { result, to, sent } = await send('ok', {
        data: { conv: 'g:Team-1', seq: 42, from: 'alice', kind: 'image', inbox: 7, unread: 3 },
      });
      expectStatus(result, 'sent');
      const got = receivedBy(to);
      assert.equal(got.length, 1, 'one request');
      assert.deepEqual(got[0]?.data, sent.data);
      noViolations();
    });

    check('the auth token is reused across sends', async () => {
      const first = await send('ok');
      const second = await send('ok');
      expectStatus(first.result, 'sent');
      expectStatus(second.result, 'sent');
      assert.equal(receivedBy(first.to)[0]?.authToken, receivedBy(second.to)[0]?.authToken);
    });

    check('collapse key, TTL and urgency reach the provider', async () => {
      const a1 = await send('ok', { collapseKey: 'dev-1|dm:alice:bob', ttlSeconds: 600, urgency: 'high' });
      const a2 = await send('ok', { collapseKey: 'dev-1|dm:alice:bob', ttlSeconds: 120, urgency: 'normal' });
      const b = await send('ok', { collapseKey: 'dev-1|g:other', ttlSeconds: 0, urgency: 'normal' });
      for (const s of [a1, a2, b]) expectStatus(s.result, 'sent');
      const [r1, r2, r3] = [a1, a2, b].map((s) => receivedBy(s.to)[0]);
      assert.ok(r1?.collapse, 'a collapse id was sent');
      assert.equal(r1?.collapse, r2?.collapse, 'same key, same collapse id');
      assert.notEqual(r1?.collapse, r3?.collapse, 'another key, another collapse id');
      assert.ok(!r1?.collapse?.includes('alice'), 'the collapse id does not name users');
      assert.ok(Math.abs((r1?.ttlSeconds ?? -99) - 600) <= 1, `TTL 600, got ${r1?.ttlSeconds}`);
      assert.ok(Math.abs((r2?.ttlSeconds ?? -99) - 120) <= 1, `TTL 120, got ${r2?.ttlSeconds}`);
      assert.equal(r3?.ttlSeconds, 0);
      assert.equal(r1?.priority, 'high');
      assert.equal(r2?.priority, 'normal');
      noViolations();
    });

    check('registrations the provider reports gone are dead', async () => {
      for (const outcome of ['gone', 'invalid-token'] as const) {
        const { result } = await send(outcome);
        expectStatus(result, 'dead');
      }
      noViolations();
    });

    check('a permanent refusal is failed, with a reason', async () => {
      const { result } = await send('rejected');
      expectStatus(result, 'failed');
      assert.ok(result.status === 'failed' && result.reason.length > 0);
    });

    check('429 with Retry-After is a retry after that wait', async () => {
      const { result } = await send('throttled');
      expectStatus(result, 'retry');
      assert.equal(result.status === 'retry' && result.retryAfterMs, h().retryAfterSeconds * 1000);
    });

    check('5xx is a retry (503 with its Retry-After)', async () => {
      expectStatus((await send('server-error')).result, 'retry');
      const { result } = await send('unavailable');
      expectStatus(result, 'retry');
      assert.equal(result.status === 'retry' && result.retryAfterMs, h().retryAfterSeconds * 1000);
    });

    check('a reset request is a retry, and the next send goes through', async () => {
      expectStatus((await send('reset')).result, 'retry');
      expectStatus((await send('ok')).result, 'sent');
    });

    check('a request without an answer times out as a retry, and the next send goes through', async () => {
      const started = Date.now();
      const { result } = await send('hang');
      const took = Date.now() - started;
      expectStatus(result, 'retry');
      assert.ok(took >= h().timeoutMs - 20 && took < h().timeoutMs + 2000, `timed out after ${took} ms`);
      expectStatus((await send('ok')).result, 'sent');
    });

    check('no more requests in flight than the bound', async () => {
      h().resetInFlight();
      const count = h().maxConcurrent * 3;
      const results = await Promise.all(Array.from({ length: count }, () => send('slow')));
      for (const r of results) expectStatus(r.result, 'sent');
      assert.equal(h().maxInFlight(), h().maxConcurrent, 'the bound is reached and never passed');
    });

    check('the auth token is replaced before it expires, then reused', async () => {
      const before = await send('ok');
      const grants = h().grants?.();
      h().advance(h().refreshAfterMs);
      const after = await send('ok');
      const again = await send('ok');
      for (const s of [before, after, again]) expectStatus(s.result, 'sent');
      const [t0, t1, t2] = [before, after, again].map((s) => receivedBy(s.to)[0]?.authToken);
      assert.notEqual(t1, t0, 'a new token');
      assert.equal(t2, t1, 'the new token is reused');
      if (grants !== undefined) assert.equal(h().grants?.(), grants + 1, 'one new grant');
      noViolations();
    });
  });
}
