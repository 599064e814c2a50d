// Runs the store ports' conformance suites against the in-memory adapter, then the push queue's
// batching, which the port leaves to each adapter.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PushJob } from '../../ports/push-queue.js';
import { conversationStoreSuite } from '../conformance/conversation-store.suite.js';
import { deviceQueueSuite } from '../conformance/device-queue.suite.js';
import { deviceStoreSuite } from '../conformance/device-store.suite.js';
import { epochFencingSuite } from '../conformance/epoch-fencing.suite.js';
import { fanoutRecoverySuite } from '../conformance/fanout-recovery.suite.js';
import { groupStoreSuite } from '../conformance/group-store.suite.js';
import { inboxPruningSuite } from '../conformance/inbox-pruning.suite.js';
import { inboxStoreSuite } from '../conformance/inbox-store.suite.js';
import { inviteStoreSuite } from '../conformance/invite-store.suite.js';
import { keyDirectorySuite } from '../conformance/key-directory.suite.js';
import { mediaIndexSuite } from '../conformance/media-index.suite.js';
import { messageStoreSuite } from '../conformance/message-store.suite.js';
import { pushDeadLettersSuite, webhookDeadLettersSuite } from '../conformance/push-dead-letters.suite.js';
import { pushQueueSuite } from '../conformance/push-queue.suite.js';
import { userStoreSuite } from '../conformance/user-store.suite.js';
import { MemoryStore, PUSH_BATCH_SIZE, PUSH_BATCHES_IN_FLIGHT } from './memory-store.js';

const close = async () => {};

messageStoreSuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { store: s.messages, close };
});

inboxStoreSuite('MemoryStore', async () => ({ store: new MemoryStore().inbox, close }));
epochFencingSuite('MemoryStore', async () => ({ store: new MemoryStore(), close }));

fanoutRecoverySuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { recovery: s.fanoutRecovery, messages: s.messages, inbox: s.inbox, close };
});

inboxPruningSuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { pruning: s.inboxPruning, store: s.inbox, close };
});

conversationStoreSuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { store: s.conversations, messages: s.messages, close };
});

groupStoreSuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { messages: s.messages, conversations: s.conversations, close };
});

userStoreSuite('MemoryStore', async () => ({ store: new MemoryStore().users, close }));

inviteStoreSuite('MemoryStore', async () => ({ store: new MemoryStore().invites, close }));

deviceStoreSuite('MemoryStore', async () => ({ store: new MemoryStore().devices, close }));

pushQueueSuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { queue: s.pushQueue, restart: async () => s.pushQueue.restart(), close };
});

pushDeadLettersSuite('MemoryStore', async () => ({ store: new MemoryStore().deadLetters, close }));

webhookDeadLettersSuite('MemoryStore', async () => ({ store: new MemoryStore().webhookDeadLetters, close }));

// One process's memory has no second instance over the same data: the concurrency tests run
// every call through the one store.
keyDirectorySuite('MemoryStore', async () => ({ store: new MemoryStore().keys, close }));

deviceQueueSuite('MemoryStore', async () => ({ store: new MemoryStore().deviceQueue, close }));

mediaIndexSuite('MemoryStore', async () => ({ store: new MemoryStore().media, close }));

/** A job of `user` for a conversation of its own. */
let jobs = 0;
const job = (user: string): PushJob => {
  jobs++;
  return {
    user,
    device: 'phone',
    conv: `g:c${jobs}`,
    seq: jobs,
    from: 'a',
    kind: 'text',
    inbox: jobs,
    ts: jobs,
  };
};

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('MemoryPushQueue: batches', () => {
  test('a held batch of one user holds neither other users nor the queue; that user waits', async () => {
    const queue = new MemoryStore().pushQueue;
    const got: PushJob[] = [];
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const sub = await queue.consume(async (batch) => {
      got.push(...batch);
      if (batch.some((j) => j.user === 'slow')) await gate;
    });
    try {
      await queue.enqueue([job('slow')]);
      await until('the slow batch', () => got.length === 1);
      const later = job('slow');
      await queue.enqueue([job('fast'), later, job('other')]);
      await until('the other users', () => got.filter((j) => j.user !== 'slow').length === 2);
      assert.ok(!got.includes(later), "the slow user's next job was handed out while its batch was held");
      release();
      await until("the slow user's next job", () => got.some((j) => j.seq === later.seq));
    } finally {
      release();
      await sub.close();
    }
  });

  test(`batches hold at most ${PUSH_BATCH_SIZE} jobs, and at most ${PUSH_BATCHES_IN_FLIGHT} are in flight`, async () => {
    const queue = new MemoryStore().pushQueue;
    const sizes: number[] = [];
    let inFlight = 0;
    let most = 0;
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const sub = await queue.consume(async (batch) => {
      sizes.push(batch.length);
      most = Math.max(most, ++inFlight);
      await gate;
      inFlight--;
    });
    try {
      // 10 users with 200 jobs each, one user after the other: batches of different users.
      const all = Array.from({ length: 2_000 }, (_, i) => job(`u${Math.floor(i / 200)}`));
      await queue.enqueue(all);
      await until('4 batches in flight', () => inFlight === PUSH_BATCHES_IN_FLIGHT);
      release();
      await until('every job', () => sizes.reduce((a, b) => a + b, 0) === all.length);
      assert.equal(most, PUSH_BATCHES_IN_FLIGHT);
      assert.ok(Math.max(...sizes) <= PUSH_BATCH_SIZE, `a batch of ${Math.max(...sizes)}`);
      assert.equal(queue.size, 0);
    } finally {
      release();
      await sub.close();
    }
  });
});
