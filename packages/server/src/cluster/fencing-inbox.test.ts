import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import { EpochFencedError } from '../ports/epoch-fencing.js';
import type { InboxEntry } from '../ports/inbox-store.js';
import { silentLogger } from '../ports/logger.js';
import { FencedInbox, PartitionFence } from './fencing.js';

const entry = (user: string, inbox: number, conv = 'dm:a:b', seq = inbox): InboxEntry => ({
  user,
  inbox,
  ts: 100 + seq,
  type: 'message',
  conv,
  seq,
});
const member = (store: MemoryStore, name: string) =>
  new FencedInbox(
    store.inbox,
    store.epochInbox,
    new PartitionFence(store.stageEpochs, 'fanout', name, silentLogger),
    silentLogger,
  );

test('a fenced append writes, checks its epoch, then publishes: readers see it only after', async () => {
  const store = new MemoryStore();
  const m = member(store, 'm');
  await m.fence.assigned([0, 1]);
  assert.equal(await m.head('ann'), 0);
  await m.append([entry('ann', 1)], []);
  assert.deepEqual(await store.inbox.read('ann', 0, 10), [entry('ann', 1)]);
  assert.equal(await store.inbox.head('ann'), 1);
});

test('after another member took a partition, an append publishes nothing; the next load takes a newer epoch', async () => {
  const store = new MemoryStore();
  const old = member(store, 'old');
  await old.fence.assigned([0, 1]);
  await old.head('ann');
  const next = member(store, 'next');
  await next.fence.assigned([1]);
  await assert.rejects(old.append([entry('ann', 1)], []), EpochFencedError);
  assert.deepEqual(await store.inbox.read('ann', 0, 10), []);
  // Its head loads now take a newer epoch first (it may still own the partition in the log's view).
  assert.equal(await old.head('ann'), 1, 'the written head includes its unpublished row');
  const held = await store.stageEpochs.held('fanout');
  assert.equal(held.get(0), held.get(1));
  assert.ok(held.get(1)! > 2);
});

test('entries numbered from a head loaded under an older epoch are refused without writing', async () => {
  const store = new MemoryStore();
  const m = member(store, 'm');
  await m.fence.assigned([0]);
  await m.head('ann');
  await m.fence.assigned([0, 1]); // a new assignment: a new epoch
  await assert.rejects(m.append([entry('ann', 1)], []), EpochFencedError);
  assert.deepEqual(await store.epochInbox.readWritten('ann', 0, 10), []);
  await m.head('ann');
  await m.append([entry('ann', 1)], []);
  assert.equal(await store.inbox.head('ann'), 1);
});

test('entries a former owner wrote and never published are adopted: numbered after, then published', async () => {
  const store = new MemoryStore();
  // A former owner wrote inbox 1 and 2 of ann and died before publishing them.
  await store.epochInbox.write([entry('ann', 1), entry('ann', 2, 'dm:a:c', 5)], 1);
  const m = member(store, 'm');
  await m.fence.assigned([0]);
  assert.equal(await m.head('ann'), 2);
  assert.equal(await m.head('bob'), 0);
  // Nothing new for ann: the stage publishes the adopted entries after its batch.
  await m.publishAdopted();
  assert.equal(await store.inbox.head('ann'), 2);
  assert.deepEqual(await store.inbox.lastSeqs('ann', ['dm:a:c']), new Map([['dm:a:c', 5]]));
  await m.append([entry('ann', 3, 'dm:a:b', 3)], []);
  assert.deepEqual(
    (await store.inbox.read('ann', 0, 10)).map((e) => e.inbox),
    [1, 2, 3],
  );
});
