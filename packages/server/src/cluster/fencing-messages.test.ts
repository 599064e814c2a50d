import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import { EpochFencedError } from '../ports/epoch-fencing.js';
import { silentLogger } from '../ports/logger.js';
import type { StoredMessage } from '../ports/message-store.js';
import { FencedMessages, PartitionFence } from './fencing.js';

const conv = 'dm:ann:bob';
const text = (seq: number, cmid = `c${seq}`): StoredMessage => ({
  conv,
  seq,
  ts: 1_000 + seq,
  from: 'ann',
  from_device: 'phone',
  cmid,
  kind: 'text',
  body: `m${seq}`,
});
const member = (store: MemoryStore, name: string) =>
  new FencedMessages(
    store.messages,
    store.epochMessages,
    new PartitionFence(store.stageEpochs, 'sequencer', name, silentLogger),
  );

test('a fenced append writes, checks its epoch, then publishes: readers see it only after', async () => {
  const store = new MemoryStore();
  const m = member(store, 'm');
  await m.fence.assigned([0]);
  assert.equal(await m.head(conv), null);
  await m.append([text(1)]);
  assert.deepEqual(await store.messages.page(conv, { limit: 10 }), [text(1)]);
  assert.deepEqual(await store.messages.findByCmid(conv, 'ann', 'c1'), { seq: 1, ts: 1_001 });
});

test('a sequencer fenced by a newer owner publishes nothing, and the owner’s message at that seq stands', async () => {
  const store = new MemoryStore();
  const zombie = member(store, 'zombie');
  await zombie.fence.assigned([0]);
  assert.equal(await zombie.head(conv), null);
  const owner = member(store, 'owner');
  await owner.fence.assigned([0]);
  assert.equal(await owner.head(conv), null);
  await assert.rejects(zombie.append([text(1, 'from-zombie')]), EpochFencedError);
  assert.deepEqual(await store.messages.page(conv, { limit: 10 }), [], 'written, not published');
  await owner.append([text(1, 'from-owner')]);
  assert.deepEqual(
    (await store.messages.page(conv, { limit: 10 })).map((m) => m.cmid),
    ['from-owner'],
  );
  assert.equal(await store.messages.findByCmid(conv, 'ann', 'from-zombie'), null);
});

test('a conversation loaded under an older epoch is refused until reloaded', async () => {
  const store = new MemoryStore();
  const m = member(store, 'm');
  await m.fence.assigned([0]);
  await m.head(conv);
  await m.fence.assigned([0, 1]);
  await assert.rejects(m.append([text(1)]), EpochFencedError);
  assert.deepEqual((await store.epochMessages.writtenHead(conv)).beyond, []);
  await m.head(conv);
  await m.append([text(1)]);
  assert.equal((await store.messages.head(conv))?.lastSeq, 1);
});

test('messages a former owner wrote and never published are published by the next owner’s head load', async () => {
  const store = new MemoryStore();
  await store.epochMessages.write([text(1), text(2)], [], 1);
  const m = member(store, 'm');
  await m.fence.assigned([0]);
  assert.deepEqual(await m.head(conv), { lastSeq: 2, lastTs: 1_002 });
  // Published before the head is answered: the redelivered sends are found by cmid.
  assert.deepEqual(await store.messages.findByCmid(conv, 'ann', 'c2'), { seq: 2, ts: 1_002 });
  assert.equal((await store.messages.head(conv))?.lastSeq, 2);
});

test('an assignment while the store is down takes no epoch and does not reject; the next load takes it', async () => {
  const store = new MemoryStore();
  let down = true;
  const epochs = {
    take: (stage: string, partitions: readonly number[], owner: string) =>
      down
        ? Promise.reject(new Error('store unavailable'))
        : store.stageEpochs.take(stage, partitions, owner),
    held: (stage: string) => store.stageEpochs.held(stage),
  };
  const m = new FencedMessages(
    store.messages,
    store.epochMessages,
    new PartitionFence(epochs, 'sequencer', 'm', silentLogger),
  );
  await m.fence.assigned([0]);
  assert.equal(m.fence.epoch, 0);
  await assert.rejects(m.append([text(1)]), EpochFencedError, 'nothing is written without an epoch');
  await assert.rejects(m.head(conv), /store unavailable/);
  down = false;
  assert.equal(await m.head(conv), null);
  assert.ok(m.fence.epoch > 0);
  await m.append([text(1)]);
  assert.equal((await store.messages.head(conv))?.lastSeq, 1);
});
