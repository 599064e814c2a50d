// The inbox writer's `idle`: it waits for what was handed in before the call, not for what keeps
// arriving after it (several fan-out partitions share one writer), and when another writer took
// some numbers, everyone whose entries were dropped hears the conflict.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import { type FannedMark, InboxConflictError, type InboxEntry } from '../ports/inbox-store.js';
import { silentLogger } from '../ports/logger.js';
import { InboxWriter, MESSAGE_FRAME_HEAD, type PendingEntry } from './inbox-writer.js';

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
  return { store, inbox, release, failWith: (err: Error) => (failNext = err) };
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
  g.failWith(new InboxConflictError('ann', 1));
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
  const writer = new InboxWriter(store.inbox, { deliver: () => {} }, silentLogger, 3);
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
  const writer = new InboxWriter(g.inbox, { deliver: () => {} }, silentLogger, 2);
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
