// The user directory's caches when other processes change users too: an announced change drops
// the cached copy, an entry expires after its TTL, and a load that raced an announcement is used
// once but not kept.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import { UserDirectory } from './users.js';

function setup(ttlMs?: number) {
  const store = new MemoryStore();
  let now = 0;
  let reads = 0;
  const users = {
    ...store.users,
    blocked: async (user: string) => {
      reads++;
      return store.users.blocked(user);
    },
  };
  const announced: string[] = [];
  const ttl = ttlMs ?? Number.POSITIVE_INFINITY;
  const here = new UserDirectory(users, {
    ttlMs: ttl,
    clock: { now: () => now },
    changed: (u) => void announced.push(u),
  });
  const there = new UserDirectory(users, { ttlMs: ttl, clock: { now: () => now } });
  return {
    store,
    here,
    there,
    announced,
    reads: () => reads,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

test('a change is announced once durable; the other process sees it once told', async () => {
  const t = setup();
  assert.equal(await t.there.isBlocked('ann', 'bob'), false);
  await t.here.block('ann', 'bob');
  assert.deepEqual(t.announced, ['ann']);
  assert.deepEqual(await t.store.users.blocked('ann'), ['bob'], 'durable before it is announced');
  assert.equal(await t.here.isBlocked('ann', 'bob'), true);
  assert.equal(await t.there.isBlocked('ann', 'bob'), false, 'still the cached copy');
  t.there.invalidate('ann');
  assert.equal(await t.there.isBlocked('ann', 'bob'), true);
  await t.here.unblock('ann', 'bob');
  t.there.invalidate('ann');
  assert.equal(await t.there.isBlocked('ann', 'bob'), false);
});

test('cached entries expire after the TTL (an announcement may be lost)', async () => {
  const t = setup(30_000);
  assert.equal(await t.there.isBlocked('ann', 'bob'), false);
  await t.here.block('ann', 'bob');
  t.advance(29_999);
  assert.equal(await t.there.isBlocked('ann', 'bob'), false);
  const before = t.reads();
  t.advance(1);
  assert.equal(await t.there.isBlocked('ann', 'bob'), true);
  assert.equal(t.reads(), before + 1, 'reloaded from the store once expired');
});

test('without a TTL a cached entry is read from the store once', async () => {
  const t = setup();
  await t.there.isBlocked('ann', 'bob');
  t.advance(10 ** 9);
  await t.there.isBlocked('ann', 'bob');
  assert.equal(t.reads(), 1);
});

test('a load that an announcement overtook is used once, not kept', async () => {
  const t = setup();
  const loading = t.there.isBlocked('ann', 'bob');
  t.there.invalidate('ann');
  await loading;
  const before = t.reads();
  await t.there.isBlocked('ann', 'bob');
  assert.equal(t.reads(), before + 1, 'loaded again');
});
