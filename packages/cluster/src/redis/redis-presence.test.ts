// Runs the PresencePort conformance suite against real Redis (two instances, as two Parley
// processes have), and checks what only a shared, expiring table can do: a process that stops
// refreshing its devices (it died) has them announced offline by another process.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { presencePortSuite } from '@parley/server/adapters/conformance/presence.suite';
import type { PresenceChange } from '@parley/server/ports/presence';
import { requireEngine } from '@parley/server/test/engines';
import { RedisPresence } from './redis-presence.js';

const url = requireEngine('redis', 'RedisPresence against real Redis');

if (url !== undefined) {
  presencePortSuite('RedisPresence', async () => {
    const prefix = `parley-test-${randomBytes(4).toString('hex')}:`;
    const presence = await RedisPresence.open(url, { prefix });
    const peer = await RedisPresence.open(url, { prefix });
    return {
      presence,
      peer,
      close: async () => {
        await presence.close();
        await peer.close();
      },
    };
  });

  describe('RedisPresence: expiry', () => {
    const open: RedisPresence[] = [];
    after(async () => {
      for (const p of open) await p.close();
    });
    const make = async (prefix: string, now: () => number) => {
      const p = await RedisPresence.open(url, { prefix, ttlMs: 3_000, refreshMs: 1_000, now });
      open.push(p);
      return p;
    };

    test('the devices of a process that stopped refreshing go offline through another, at their last refresh', async () => {
      const prefix = `parley-test-${randomBytes(4).toString('hex')}:`;
      let clock = 1_000_000;
      const now = () => clock;
      const dead = await make(prefix, now);
      const alive = await make(prefix, now);
      const changes: PresenceChange[] = [];
      alive.onChange((c) => changes.push(c));
      assert.equal(await dead.connected('u1', 'phone', 'g1/1', clock), true);
      assert.equal(await alive.connected('u2', 'phone', 'g2/1', clock), true);
      clock += 1_000;
      await dead.tick(); // the last refresh before it dies
      const lastRefresh = clock;
      await dead.close();
      clock += 2_500; // within the TTL of the last refresh: still online
      await alive.tick();
      assert.deepEqual(await alive.online(['u1', 'u2']), new Set(['u1', 'u2']));
      clock += 1_000; // past it
      await alive.tick();
      assert.deepEqual(await alive.online(['u1', 'u2']), new Set(['u2']));
      await waitFor(() => changes.some((c) => c.user === 'u1' && c.status === 'offline'));
      assert.deepEqual(
        changes.filter((c) => c.user === 'u1'),
        [
          { user: 'u1', status: 'online', ts: 1_000_000 },
          { user: 'u1', status: 'offline', ts: lastRefresh },
        ],
      );
      // u2's own process kept refreshing it: still online, no offline event.
      assert.equal(changes.filter((c) => c.user === 'u2' && c.status === 'offline').length, 0);
    });

    test('a process that was stalled past the TTL brings its devices back online on its next refresh', async () => {
      const prefix = `parley-test-${randomBytes(4).toString('hex')}:`;
      let clock = 5_000_000;
      const now = () => clock;
      const stalled = await make(prefix, now);
      const other = await make(prefix, now);
      const changes: PresenceChange[] = [];
      other.onChange((c) => changes.push(c));
      await stalled.connected('u3', 'phone', 'g1/7', clock);
      clock += 10_000;
      await other.tick(); // swept: offline
      assert.deepEqual(await other.online(['u3']), new Set());
      await stalled.tick(); // it wakes up and refreshes: the connection is still live there
      assert.deepEqual(await other.online(['u3']), new Set(['u3']));
      await waitFor(() => changes.length === 3);
      assert.deepEqual(
        changes.map((c) => c.status),
        ['online', 'offline', 'online'],
      );
    });
  });
}

async function waitFor(cond: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for presence events');
    await new Promise((r) => setTimeout(r, 10));
  }
}
