// The push adapters' shared pieces: Retry-After in both forms, the semaphore's bound and order,
// collapse tokens that fit every provider.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { collapseToken, parseRetryAfter, Semaphore } from './shared.js';

describe('push shared', () => {
  test('Retry-After as seconds or an HTTP date; garbage is no wait', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(['3'], now), 3000);
    assert.equal(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now), 0, 'a date past is no wait');
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });

  test('the semaphore runs at most its limit at once, the others in arrival order', async () => {
    const sem = new Semaphore(2);
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        sem.run(async () => {
          active++;
          peak = Math.max(peak, active);
          order.push(i);
          await new Promise((r) => setTimeout(r, 5));
          active--;
        }),
      ),
    );
    assert.equal(peak, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
    await assert.rejects(
      sem.run(async () => Promise.reject(new Error('x'))),
      /x/,
    );
    assert.equal(await sem.run(async () => 7), 7, 'a rejected holder frees its slot');
    assert.throws(() => new Semaphore(0), RangeError);
  });

  test('collapse tokens are stable, short, base64url, and do not carry the key', () => {
    const t = collapseToken('phone-1|dm:alice:bob', 32);
    assert.equal(t, collapseToken('phone-1|dm:alice:bob', 32));
    assert.notEqual(t, collapseToken('phone-1|dm:alice:carol', 32));
    assert.match(t, /^[A-Za-z0-9_-]{32}$/);
    assert.ok(!t.includes('alice'));
  });
});
