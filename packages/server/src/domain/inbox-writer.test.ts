// The inbox writer's `idle`: it waits for what was handed in before the call, not for what keeps
// arriving after it (several fan-out partitions share one writer), and when another writer took
// some numbers, everyone whose entries were dropped hears the conflict. Its heads stay bounded, and
// a store that keeps failing makes it unhealthy after a bound, without losing the numbered entries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import type { PendingEntry } from '../ports/inbox-appender.js';
import { type FannedMark, InboxConflictError, type InboxEntry } from '../ports/inbox-store.js';
import { silentLogger } from '../ports/logger.js';
import { InboxWriter, MESSAGE_FRAME_HEAD } from './inbox-writer.js';

const entry = (user: string, seq: number): PendingEntry => ({
  user,
  entry: { type: 'message', conv: 'g:x', seq, ts: seq },
  frameHead: MESSAGE_FRAME_HEAD,
  frameTail: Buffer.from('}'),
});

/** A store whose appends wait until released, one at a time. */
function gatedStore() {
  const store = new MemoryStore();
  const gates: (() => void)[] = [];
  let failNext: Error | null = null;
  const inbox = {
    ...store.inbox,
    append: async (entries: readonly InboxEntry[], fanned: readonly FannedMark[]) => {
      await new Promise<void>((r) => gates.push(r));
      if (failNext) {
        const err = failNext;
        failNext = null;
        throw err;
      }
      await store.inbox.append(entries, fanned);
    },
  };
  const release = async () => {
    while (gates.length === 0) await new Promise((r) => setImmediate(r));
    gates.shift()!();
  };
  return {
    store,
    inbox,
    release,
    failWith: (err: Error) => (failNext = err),
    /** Appends started and waiting to be released. */
    pendingGates: () => gates.length,
  };
}

test('idle waits for what was handed in before it, not for what keeps coming after', async () => {
  const g = gatedStore();
  const writer = new InboxWriter(g.inbox, { deliver: () => {} }, silentLogger);
  await writer.ensureHeads(['ann', 'bob']);
  writer.append([entry('ann', 1)]);
  let annDone = false;
  const ann = writer.idle().then(() => (annDone = true));
  await g.release(); // ann's batch is stored
  writer.append([entry('bob', 1)]); // more work arrives, from another partition
  await ann;
  assert.equal(annDone, true, 'resolved without waiting for bob');
  let bobDone = false;
  const bob = writer.idle().then(() => (bobDone = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(bobDone, false);
  await g.release();
  await bob;
  assert.equal(await g.store.inbox.head('bob'), 1);
});

test('after a conflict every waiter whose entries were dropped hears it, and later work goes on', async () => {
  const g = gatedStore();
  const writer = new InboxWriter(g.inbox, { deliver: () => {} }, silentLogger);
  await writer.ensureHeads(['ann', 'bob']);
  writer.append([entry('ann', 1)]);
  const first = writer.idle();
  await new Promise((r) => setImmediate(r)); // ann's batch is in flight
  writer.append([entry('bob', 1)]);
  const second = writer.idle();
  g.failWith(InboxConflictError.taken('ann', 1));
  await g.release();
  await assert.rejects(first, InboxConflictError);
  await assert.rejects(second, InboxConflictError, 'queued behind the conflict: dropped too');
  await writer.ensureHeads(['ann', 'bob']);
  writer.append([entry('bob', 1)]);
  const again = writer.idle();
  await g.release();
  await again;
  assert.equal(await g.store.inbox.head('bob'), 1);
});

test('heads past maxHeads are dropped once stored, and reloaded when needed: numbers never repeat', async () => {
  const store = new MemoryStore();
  const writer = new InboxWriter(store.inbox, { deliver: () => {} }, silentLogger, { maxHeads: 3 });
  const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
  for (const u of users) {
    await writer.withHeads([u], () => writer.append([entry(u, 1)]));
    await writer.idle();
  }
  assert.ok(writer.headsInMemory <= 3, `${writer.headsInMemory} heads in memory`);
  for (const u of users) {
    await writer.withHeads([u], () => writer.append([entry(u, 2)]));
    await writer.idle();
  }
  for (const u of users)
    assert.deepEqual(
      (await store.inbox.read(u, 0, 10)).map((e) => [e.inbox, e.seq]),
      [
        [1, 1],
        [2, 2],
      ],
      u,
    );
});

test('a head whose entries are not stored yet is never dropped', async () => {
  const g = gatedStore();
  const writer = new InboxWriter(g.inbox, { deliver: () => {} }, silentLogger, { maxHeads: 2 });
  await writer.withHeads(['d'], () => {}); // d's head is the oldest in memory
  await writer.withHeads(['a'], () => writer.append([entry('a', 1)]));
  await g.release();
  await writer.idle();
  await writer.withHeads(['b', 'c'], () => writer.append([entry('b', 1), entry('c', 1)]));
  await new Promise((r) => setImmediate(r)); // b and c are being stored
  await writer.withHeads(['d'], () => writer.append([entry('d', 1)])); // queued behind them
  await g.release(); // b and c stored: four heads, over the bound, and d's entry not stored yet
  await new Promise((r) => setImmediate(r));
  // Dropping d's head now would reload 0 from the store and number d's next entry 1 again.
  await writer.withHeads(['d'], () => writer.append([entry('d', 2)]));
  await g.release();
  await g.release();
  await writer.idle();
  assert.deepEqual(
    (await g.store.inbox.read('d', 0, 10)).map((e) => [e.inbox, e.seq]),
    [
      [1, 1],
      [2, 2],
    ],
  );
  assert.ok(writer.headsInMemory <= 2, `${writer.headsInMemory} heads in memory`);
});

test('appending for a user whose head is not loaded is an error, not a reused number', () => {
  const writer = new InboxWriter(new MemoryStore().inbox, { deliver: () => {} }, silentLogger);
  assert.throws(() => writer.append([entry('nobody', 1)]), /not loaded: append inside withHeads/);
});

/**
 * A store whose appends fail (as a dead store's do) while `down` is set; every entry of an append
 * that succeeded is recorded, so a test can tell an entry stored twice from one stored once.
 */
function flakyStore() {
  const store = new MemoryStore();
  const state = { down: true, failures: 0, stored: [] as string[] };
  const inbox = {
    ...store.inbox,
    append: async (entries: readonly InboxEntry[], fanned: readonly FannedMark[]) => {
      if (state.down) {
        state.failures++;
        throw new Error('store unavailable (NoHostAvailableError)');
      }
      for (const e of entries) state.stored.push(`${e.user}#${e.inbox}`);
      await store.inbox.append(entries, fanned);
    },
  };
  return { store, inbox, state };
}

/** Resolves once `cond` holds, polling; fails after `ms`. */
async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('a store that keeps failing makes the writer unhealthy after the bound; once it is back every entry lands once', async () => {
  const f = flakyStore();
  const health: boolean[] = [];
  const delivered: string[] = [];
  const writer = new InboxWriter(f.inbox, { deliver: (user) => delivered.push(user) }, silentLogger, {
    retryMs: [1, 2, 5],
    unhealthyAfterMs: 60,
    onHealth: (h) => health.push(h),
  });
  await writer.ensureHeads(['ann', 'bob']);
  writer.append([entry('ann', 1)]);
  let firstDone = false;
  const first = writer.idle().then(() => (firstDone = true));
  await until('the first failure', () => f.state.failures >= 1);
  assert.equal(writer.healthy, true, 'one failure is within the bound');
  // More work arrives while the store is down: it queues behind the failing batch.
  writer.append([entry('bob', 1), entry('ann', 2)]);
  let secondDone = false;
  const second = writer.idle().then(() => (secondDone = true));

  await until('the writer to turn unhealthy', () => !writer.healthy);
  assert.deepEqual(health, [false], 'reported once');
  const failuresAtBound = f.state.failures;
  assert.ok(failuresAtBound >= 2, `${failuresAtBound} attempts before giving up on health`);
  await until('retries to go on past the bound', () => f.state.failures >= failuresAtBound + 3);
  assert.equal(firstDone || secondDone, false, 'nothing resolved while nothing is stored');
  assert.deepEqual(delivered, [], 'nothing delivered before it is durable');
  assert.equal(writer.backlog, 3, 'the numbered entries are kept, not dropped');

  f.state.down = false; // the store is back
  await first;
  await second;
  assert.equal(writer.healthy, true);
  assert.deepEqual(health, [false, true]);
  assert.deepEqual(f.state.stored.sort(), ['ann#1', 'ann#2', 'bob#1'], 'every entry stored exactly once');
  assert.deepEqual(
    (await f.store.inbox.read('ann', 0, 10)).map((e) => [e.inbox, e.seq]),
    [
      [1, 1],
      [2, 2],
    ],
  );
  assert.deepEqual(
    (await f.store.inbox.read('bob', 0, 10)).map((e) => [e.inbox, e.seq]),
    [[1, 1]],
  );
  assert.equal(delivered.length, 3, 'each entry delivered once, after it was stored');
  assert.equal(writer.backlog, 0);

  // Later work goes straight through.
  writer.append([entry('bob', 2)]);
  await writer.idle();
  assert.equal(await f.store.inbox.head('bob'), 2);
  assert.deepEqual(health, [false, true]);
});

test('a short outage within the bound leaves the writer healthy', async () => {
  const f = flakyStore();
  const health: boolean[] = [];
  const writer = new InboxWriter(f.inbox, { deliver: () => {} }, silentLogger, {
    retryMs: [1],
    unhealthyAfterMs: 60_000,
    onHealth: (h) => health.push(h),
  });
  await writer.ensureHeads(['ann']);
  writer.append([entry('ann', 1)]);
  const done = writer.idle();
  await until('three failures', () => f.state.failures >= 3);
  f.state.down = false;
  await done;
  assert.equal(writer.healthy, true);
  assert.deepEqual(health, [], 'never reported unhealthy');
  assert.deepEqual(f.state.stored, ['ann#1']);
});

test('close: later events are dropped, and an append still failing stops retrying (no timer left behind)', async () => {
  const g = gatedStore();
  const writer = new InboxWriter(g.inbox, { deliver: () => {} }, silentLogger, { retryMs: [10] });
  await writer.ensureHeads(['ann', 'bob']);
  writer.append([entry('ann', 1)]);
  g.failWith(new Error('store closed'));
  await g.release(); // the append fails; the writer waits 10 ms to retry
  writer.close();
  writer.append([entry('bob', 1)]); // dropped
  await new Promise((r) => setTimeout(r, 30));
  await new Promise((r) => setImmediate(r));
  assert.equal(g.pendingGates(), 0, 'no retry after close');
  assert.equal(writer.backlog, 1, 'only the entry handed in before close was ever taken');
});

test('over ordered writes the stored listeners hear a batch when its append is issued, else once it is stored; frames wait for the store either way', async () => {
  for (const storeWritesInOrder of [false, true]) {
    const g = gatedStore();
    const heard: number[] = [];
    const delivered: string[] = [];
    const writer = new InboxWriter(g.inbox, { deliver: (user) => void delivered.push(user) }, silentLogger, {
      storedListeners: [
        {
          messagesStored: (notices) => {
            heard.push(...notices.map((n) => n.seq));
            return undefined;
          },
        },
      ],
      storeWritesInOrder,
    });
    const message = {
      conv: 'g:x',
      seq: 1,
      ts: 1,
      from: 'ann',
      from_device: 'd',
      cmid: 'c1',
      kind: 'text',
      body: 'hi',
    };
    await writer.withHeads(['bob'], () =>
      writer.appendMessages([{ message, recipients: ['bob'] }], [{ conv: 'g:x', seq: 1 }]),
    );
    while (g.pendingGates() === 0) await new Promise((r) => setImmediate(r));
    assert.deepEqual(heard, storeWritesInOrder ? [1] : [], `in order: ${storeWritesInOrder}`);
    assert.deepEqual(delivered, []);
    await g.release();
    await writer.idle();
    assert.deepEqual(heard, [1], 'told once');
    assert.deepEqual(delivered, ['bob']);
  }
});
