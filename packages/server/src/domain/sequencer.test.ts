// The conversation writer against a store that fails: a failed append answers its sends with the
// store's error (never ok), and the next batch continues from the durable head, without gaps.
// A send the cluster stage already looked up is not looked up again (one dedup read per send), and
// sends submitted in one pass share one append.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import type { SendRequest } from '../ports/conversation-writer.js';
import { silentLogger } from '../ports/logger.js';
import type { StoredMessage } from '../ports/message-store.js';
import { ParleyError } from './errors.js';
import { Sequencer } from './sequencer.js';

function setup(failAppends: number) {
  const store = new MemoryStore();
  let failures = failAppends;
  const committed: StoredMessage[] = [];
  /** The store's cmid lookups (the dedup read). */
  const lookups = { n: 0 };
  /** Calls of the store's append. */
  const appends = { n: 0 };
  const messages = {
    ...store.messages,
    findByCmid: (conv: string, from: string, cmid: string) => {
      lookups.n++;
      return store.messages.findByCmid(conv, from, cmid);
    },
    append: async (rows: readonly StoredMessage[]) => {
      appends.n++;
      if (failures > 0) {
        failures--;
        throw new ParleyError('unavailable', 'store unavailable');
      }
      await store.messages.append(rows);
    },
  };
  const sequencer = new Sequencer(
    messages,
    store.conversations,
    { isBlocked: async () => false },
    { now: () => 1_000 },
    silentLogger,
    [{ committed: (batch) => committed.push(...batch) }],
    { maxGroupSize: 512 },
  );
  return { store, sequencer, committed, lookups, appends };
}

const send = (cmid: string): SendRequest => ({
  conv: 'dm:a:b',
  from: 'a',
  from_device: 'd',
  cmid,
  kind: 'text',
  body: cmid,
});

test('a failed append rejects its sends with unavailable and leaves no gap in seq', async () => {
  const { store, sequencer, committed } = setup(1);
  const first = await sequencer.submit(send('m1')).then(
    () => 'ok',
    (e: ParleyError) => e.code,
  );
  assert.equal(first, 'unavailable');
  const second = await sequencer.submit(send('m2'));
  assert.deepEqual(
    [second.seq, second.dup],
    [1, false],
    'the next message takes seq 1: the failed one left no hole',
  );
  const retry = await sequencer.submit(send('m1'));
  assert.deepEqual([retry.seq, retry.dup], [2, false], 'a retry of the failed send is stored once, now');
  const again = await sequencer.submit(send('m1'));
  assert.deepEqual([again.seq, again.dup], [2, true]);
  const page = await store.messages.page('dm:a:b', { limit: 10 });
  assert.deepEqual(
    page.map((m) => [m.seq, m.cmid]),
    [
      [1, 'm2'],
      [2, 'm1'],
    ],
  );
  assert.deepEqual(
    committed.map((m) => m.seq),
    [1, 2],
    'only durable messages reach the fan-out',
  );
});

test('sends queued behind a failing append are answered, not lost, and later ones proceed', async () => {
  const { sequencer } = setup(1);
  const first = sequencer.submit(send('x1'));
  await new Promise((r) => setImmediate(r)); // x1's append has started: the others queue behind it
  const results = await Promise.allSettled([first, ...['x2', 'x3'].map((c) => sequencer.submit(send(c)))]);
  // The first batch (x1) fails; x2 and x3 queued behind it form the next batch, which succeeds.
  assert.equal(results[0]!.status, 'rejected');
  assert.deepEqual(
    results.slice(1).map((r) => (r.status === 'fulfilled' ? r.value.seq : r.status)),
    [1, 2],
  );
});

test('sends submitted in one pass are sequenced as one batch: one append', async () => {
  const { sequencer, appends } = setup(0);
  const outcomes = await Promise.all(['y1', 'y2', 'y3'].map((c) => sequencer.submit(send(c))));
  assert.deepEqual(
    outcomes.map((o) => o.seq),
    [1, 2, 3],
  );
  assert.equal(appends.n, 1);
});

test('a send that `stored` found absent is not looked up again, unless the head was reloaded meanwhile', async () => {
  const { store, sequencer, lookups } = setup(0);
  assert.deepEqual(await sequencer.stored('dm:a:b', [send('m1')]), [null]);
  assert.equal(lookups.n, 1);
  assert.deepEqual(await sequencer.submit(send('m1')), { seq: 1, ts: 1_000, dup: false, recipients: 2 });
  assert.equal(lookups.n, 1, 'the lookup `stored` made is the only one');
  assert.deepEqual(await sequencer.submit(send('m3')), { seq: 2, ts: 1_000, dup: false, recipients: 2 });
  assert.equal(lookups.n, 2, 'a send `stored` was not asked about is looked up as before');

  // Found absent, then the conversation moves away and back (its head reloads); meanwhile another
  // writer stored the send (or a roll-forward revealed it): the sequencer looks it up again.
  assert.deepEqual(await sequencer.stored('dm:a:b', [send('m2')]), [null]);
  await store.messages.append([{ ...send('m2'), seq: 3, ts: 1_000 }]);
  sequencer.forget(() => true);
  assert.deepEqual(await sequencer.submit(send('m2')), { seq: 3, ts: 1_000, dup: true });
  assert.equal((await store.messages.page('dm:a:b', { limit: 10 })).length, 3, 'stored once');
});

test('listeners hear a batch once it is durable; over a store whose writes are in order, once its append is issued', async () => {
  for (const storeWritesInOrder of [false, true]) {
    const store = new MemoryStore();
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const heard: string[] = [];
    const sequencer = new Sequencer(
      {
        ...store.messages,
        append: async (rows: readonly StoredMessage[]) => {
          await held;
          await store.messages.append(rows);
        },
      },
      store.conversations,
      { isBlocked: async () => false },
      { now: () => 1_000 },
      silentLogger,
      [{ committed: (batch) => void heard.push(...batch.map((m) => m.cmid)) }],
      { maxGroupSize: 512, storeWritesInOrder },
    );
    const answered = sequencer.submit(send('early'));
    await new Promise((r) => setImmediate(r)); // the append is issued and held
    assert.deepEqual(heard, storeWritesInOrder ? ['early'] : [], `in order: ${storeWritesInOrder}`);
    let replied = false;
    void answered.then(() => {
      replied = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(replied, false, 'the sender is never answered before the append is durable');
    release();
    assert.equal((await answered).seq, 1);
    assert.deepEqual(heard, ['early']);
  }
});
