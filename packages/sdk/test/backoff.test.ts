import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { backoffDelay, hardBackoffDelay } from '../src/backoff.js';
import { ClientState, CloseCode, closePolicy, connectErrorPolicy, DisconnectReason } from '../src/index.js';

test('backoffDelay stays within [0, min(max, min * 2^attempt)) for any inputs (full jitter)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 200 }),
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (attempt, min, max, r) => {
        const d = backoffDelay(attempt, min, max, () => r);
        const cap = Math.min(Math.max(min, max), min * 2 ** Math.min(attempt, 30));
        assert.ok(Number.isInteger(d), `integer: ${d}`);
        assert.ok(d >= 0, `non-negative: ${d}`);
        assert.ok(cap === 0 ? d === 0 : d < cap, `below cap ${cap}: ${d}`);
        assert.ok(d <= Math.max(min, max));
      },
    ),
  );
});

test('backoffDelay: the window doubles per attempt up to the maximum (table)', () => {
  const top = () => 0.999999;
  const table: [number, number][] = [
    [0, 499],
    [1, 999],
    [2, 1999],
    [3, 3999],
    [5, 15999],
    [6, 19999],
    [50, 19999],
    [5000, 19999],
  ];
  for (const [attempt, expected] of table)
    assert.equal(backoffDelay(attempt, 500, 20_000, top), expected, `attempt ${attempt}`);
  assert.equal(
    backoffDelay(3, 500, 20_000, () => 0),
    0,
    'full jitter reaches 0',
  );
  assert.equal(
    backoffDelay(2, 500, 20_000, () => 0.5),
    1000,
  );
  assert.equal(
    backoffDelay(10_000, 0, 20_000, () => 0.5),
    0,
    'min 0 never gives NaN',
  );
  assert.equal(
    backoffDelay(1, 500, 20_000, () => Number.NaN),
    0,
    'a broken random source is clamped',
  );
});

test('hardBackoffDelay is in [max/2, max)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 100_000 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      (max, r) => {
        const d = hardBackoffDelay(max, () => r);
        assert.ok(d >= Math.floor(max / 2) && (max === 0 ? d === 0 : d < max), `${d} for max ${max}`);
      },
    ),
  );
});

test('closePolicy: the one table of close codes', () => {
  assert.deepEqual(closePolicy(CloseCode.TokenInvalid), {
    action: 'reconnect',
    reason: DisconnectReason.TokenInvalid,
    refreshToken: true,
  });
  assert.equal(closePolicy(CloseCode.Replaced).action, 'stop');
  assert.equal(closePolicy(CloseCode.ProtocolAbuse).action, 'stop');
  assert.equal(closePolicy(CloseCode.Policy).action, 'stop');
  assert.equal(closePolicy(CloseCode.MessageTooBig).action, 'stop');
  assert.equal(closePolicy(CloseCode.TooManyConnections).action, 'reconnect_hard');
  assert.equal(closePolicy(CloseCode.TryAgainLater).action, 'reconnect_hard');
  assert.deepEqual(closePolicy(CloseCode.ServiceRestart), { action: 'reconnect', reason: 'server_restart' });
  assert.deepEqual(closePolicy(CloseCode.ConnectTimeout), { action: 'reconnect', reason: 'connect_timeout' });
  for (const code of [1000, 1001, 1006, 1011, 4000]) {
    assert.deepEqual(closePolicy(code), { action: 'reconnect', reason: 'transport_closed' });
  }
  assert.equal(connectErrorPolicy('unauthorized').action, 'reconnect');
  assert.equal(connectErrorPolicy('forbidden').action, 'stop');
  assert.equal(connectErrorPolicy('bad_request').action, 'stop');
  assert.equal(connectErrorPolicy('rate_limited').action, 'reconnect_hard');
  assert.equal(connectErrorPolicy('unavailable').action, 'reconnect');
  assert.deepEqual(Object.values(ClientState), [
    'disconnected',
    'connecting',
    'syncing',
    'connected',
    'closed',
  ]);
});
