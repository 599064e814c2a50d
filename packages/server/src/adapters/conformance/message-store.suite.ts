/**
 * The conformance suite of the `MessageStore` port: every adapter (memory, SQLite, Cassandra, …)
 * runs it through its own runner and must pass it. It pins down the contract written in the doc
 * comments of `ports/message-store.ts`, so the domain can rely on any adapter behaving like the
 * others. The fan-out marks and `unfanned` belong to the `FanoutRecovery` capability and have a
 * suite of their own (`fanout-recovery.suite.ts`).
 *
 * The suite never runs on its own: an adapter's test file calls `messageStoreSuite`. One store is
 * shared by the suite's tests (real engines cannot make a fresh keyspace per test cheaply), and
 * every test works on conversations of its own, with ids unique to the run.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { MessageStore, StoredMessage } from '../../ports/message-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite: the store under test. */
export interface MessageStoreHarness extends Closable {
  store: MessageStore;
}

/** Registers the `MessageStore` conformance tests for one adapter. */
export function messageStoreSuite(
  name: string,
  make: () => Promise<MessageStoreHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'MessageStore', adapter: name, make, options }, ({ h, check, id }) => {
    /** A fresh group conversation id, unique to this run. */
    const group = () => `g:${id()}`;
    /** A fresh direct conversation id between two fresh users. */
    const direct = () => `dm:${id('a')}:${id('b')}`;

    /** Stores messages 1..count of `conv`, sent alternately by alice and bob. */
    const seed = async (conv: string, count: number): Promise<StoredMessage[]> => {
      const rows = Array.from({ length: count }, (_, i) =>
        msg(conv, i + 1, { from: i % 2 === 0 ? 'alice' : 'bob' }),
      );
      await h().store.append(rows);
      return rows;
    };
    const seqs = (rows: readonly StoredMessage[]) => rows.map((m) => m.seq);

    check('head is null for a conversation without messages', async () => {
      assert.equal(await h().store.head(group()), null);
    });

    check('append then head, getMany, page and findByCmid return exactly what was stored', async () => {
      const conv = direct();
      const plain = msg(conv, 1);
      const full = msg(conv, 2, { reply_to: 1, media: ['m-1', 'm.2'], kind: 'image', body: 'ünïcödé 🎉' });
      await h().store.append([plain, full]);
      assert.deepEqual(await h().store.head(conv), { lastSeq: 2, lastTs: full.ts });
      assert.deepEqual(await h().store.getMany([{ conv, seq: 1 }]), [plain]);
      assert.deepEqual(await h().store.getMany([{ conv, seq: 2 }]), [full]);
      assert.deepEqual(await h().store.page(conv, { limit: 10 }), [plain, full]);
      assert.deepEqual(await h().store.findByCmid(conv, plain.from, plain.cmid), { seq: 1, ts: plain.ts });
      assert.deepEqual(await h().store.findByCmid(conv, full.from, full.cmid), { seq: 2, ts: full.ts });
    });

    check('one append may carry several conversations and advances each head', async () => {
      const a = group();
      const b = group();
      await h().store.append([msg(a, 1), msg(b, 1), msg(a, 2), msg(b, 2), msg(b, 3)]);
      assert.deepEqual(await h().store.head(a), { lastSeq: 2, lastTs: msg(a, 2).ts });
      assert.deepEqual(await h().store.head(b), { lastSeq: 3, lastTs: msg(b, 3).ts });
      assert.deepEqual(seqs(await h().store.page(a, { limit: 10 })), [1, 2]);
      assert.deepEqual(seqs(await h().store.page(b, { limit: 10 })), [1, 2, 3]);
    });

    check('head is the highest stored seq, whatever order the appends came in', async () => {
      const conv = group();
      await h().store.append([msg(conv, 3)]);
      await h().store.append([msg(conv, 1), msg(conv, 2)]);
      assert.deepEqual(await h().store.head(conv), { lastSeq: 3, lastTs: msg(conv, 3).ts });
      assert.deepEqual(seqs(await h().store.page(conv, { limit: 10 })), [1, 2, 3]);
    });

    check('appending the same (conv, seq) again changes nothing', async () => {
      const conv = group();
      const rows = await seed(conv, 3);
      await h().store.append([rows[1]!, rows[2]!, msg(conv, 4)]);
      await h().store.append(rows);
      assert.deepEqual(await h().store.page(conv, { limit: 10 }), [...rows, msg(conv, 4)]);
      assert.deepEqual(await h().store.head(conv), { lastSeq: 4, lastTs: msg(conv, 4).ts });
      const m2 = rows[1]!;
      assert.deepEqual(await h().store.findByCmid(conv, m2.from, m2.cmid), { seq: 2, ts: m2.ts });
    });

    check('findByCmid is keyed by conversation, sender and cmid', async () => {
      const conv = group();
      const other = group();
      await h().store.append([
        msg(conv, 1, { from: 'alice', cmid: 'same' }),
        msg(conv, 2, { from: 'bob', cmid: 'same' }),
      ]);
      assert.deepEqual(await h().store.findByCmid(conv, 'alice', 'same'), { seq: 1, ts: msg(conv, 1).ts });
      assert.deepEqual(await h().store.findByCmid(conv, 'bob', 'same'), { seq: 2, ts: msg(conv, 2).ts });
      assert.equal(await h().store.findByCmid(conv, 'carol', 'same'), null);
      assert.equal(await h().store.findByCmid(conv, 'alice', 'other'), null);
      assert.equal(await h().store.findByCmid(other, 'alice', 'same'), null);
    });

    check('getMany returns the messages in the order asked, undefined where missing', async () => {
      const a = group();
      const b = group();
      const ra = await seed(a, 3);
      const rb = await seed(b, 2);
      const got = await h().store.getMany([
        { conv: b, seq: 2 },
        { conv: a, seq: 1 },
        { conv: a, seq: 9 },
        { conv: group(), seq: 1 },
        { conv: a, seq: 3 },
        { conv: a, seq: 1 },
      ]);
      assert.deepEqual(got, [rb[1], ra[0], undefined, undefined, ra[2], ra[0]]);
      assert.deepEqual(await h().store.getMany([]), []);
    });

    check('page without before or after returns the newest page, ascending', async () => {
      const conv = group();
      await seed(conv, 10);
      assert.deepEqual(seqs(await h().store.page(conv, { limit: 3 })), [8, 9, 10]);
      assert.deepEqual(seqs(await h().store.page(conv, { limit: 1 })), [10]);
      assert.deepEqual(seqs(await h().store.page(conv, { limit: 50 })), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });

    check('page before is exclusive and returns the newest messages below it, ascending', async () => {
      const conv = group();
      await seed(conv, 10);
      assert.deepEqual(seqs(await h().store.page(conv, { before: 5, limit: 3 })), [2, 3, 4]);
      assert.deepEqual(seqs(await h().store.page(conv, { before: 3, limit: 5 })), [1, 2]);
      assert.deepEqual(seqs(await h().store.page(conv, { before: 1, limit: 5 })), []);
      assert.deepEqual(seqs(await h().store.page(conv, { before: 100, limit: 2 })), [9, 10]);
    });

    check('page after is exclusive and returns the oldest messages above it, ascending', async () => {
      const conv = group();
      await seed(conv, 10);
      assert.deepEqual(seqs(await h().store.page(conv, { after: 5, limit: 3 })), [6, 7, 8]);
      assert.deepEqual(seqs(await h().store.page(conv, { after: 0, limit: 2 })), [1, 2]);
      assert.deepEqual(seqs(await h().store.page(conv, { after: 8, limit: 5 })), [9, 10]);
      assert.deepEqual(seqs(await h().store.page(conv, { after: 10, limit: 5 })), []);
    });

    check('page with both after and before returns what lies between, both exclusive', async () => {
      const conv = group();
      await seed(conv, 10);
      assert.deepEqual(seqs(await h().store.page(conv, { after: 3, before: 7, limit: 10 })), [4, 5, 6]);
      assert.deepEqual(seqs(await h().store.page(conv, { after: 3, before: 7, limit: 2 })), [4, 5]);
      assert.deepEqual(seqs(await h().store.page(conv, { after: 3, before: 4, limit: 10 })), []);
    });

    check('page never returns messages below floor', async () => {
      const conv = group();
      await seed(conv, 10);
      assert.deepEqual(seqs(await h().store.page(conv, { floor: 4, limit: 20 })), [4, 5, 6, 7, 8, 9, 10]);
      assert.deepEqual(seqs(await h().store.page(conv, { floor: 4, limit: 2 })), [9, 10]);
      assert.deepEqual(seqs(await h().store.page(conv, { floor: 4, before: 7, limit: 10 })), [4, 5, 6]);
      assert.deepEqual(seqs(await h().store.page(conv, { floor: 4, before: 4, limit: 10 })), []);
      assert.deepEqual(seqs(await h().store.page(conv, { floor: 4, after: 0, limit: 2 })), [4, 5]);
      assert.deepEqual(seqs(await h().store.page(conv, { floor: 4, after: 6, limit: 2 })), [7, 8]);
      assert.deepEqual(seqs(await h().store.page(conv, { floor: 11, limit: 5 })), []);
    });

    check('pages are per conversation; an unknown conversation has none', async () => {
      const a = group();
      const b = group();
      await seed(a, 3);
      await h().store.append([msg(b, 1, { body: 'only b' })]);
      const pb = await h().store.page(b, { limit: 10 });
      assert.deepEqual(pb, [msg(b, 1, { body: 'only b' })]);
      assert.deepEqual(await h().store.page(group(), { limit: 10 }), []);
      assert.deepEqual(await h().store.page(group(), { after: 0, limit: 10 }), []);
    });

    check('the store keeps its own copy of appended and returned messages', async () => {
      const conv = group();
      const m = msg(conv, 1, { media: ['a'] });
      await h().store.append([m]);
      m.body = 'changed by the caller after append';
      m.media!.push('b');
      const [got] = await h().store.getMany([{ conv, seq: 1 }]);
      assert.deepEqual(got, msg(conv, 1, { media: ['a'] }));
      got!.body = 'changed by a reader';
      got!.media!.push('c');
      const [page] = await h().store.page(conv, { limit: 1 });
      page!.body = 'changed by another reader';
      assert.deepEqual(await h().store.getMany([{ conv, seq: 1 }]), [msg(conv, 1, { media: ['a'] })]);
    });

    check('senders lists each sender of after < seq <= upto once', async () => {
      const conv = group();
      await h().store.append([
        msg(conv, 1, { from: 'zed' }),
        msg(conv, 2, { from: 'alice' }),
        msg(conv, 3, { from: 'bob' }),
        msg(conv, 4, { from: 'alice' }),
        msg(conv, 5, { from: 'carol' }),
        msg(conv, 6, { from: 'yan' }),
      ]);
      assert.deepEqual((await h().store.senders(conv, 1, 5, 10)).sort(), ['alice', 'bob', 'carol']);
      assert.deepEqual((await h().store.senders(conv, 0, 6, 10)).sort(), [
        'alice',
        'bob',
        'carol',
        'yan',
        'zed',
      ]);
      assert.deepEqual(await h().store.senders(conv, 3, 4, 10), ['alice']);
      assert.deepEqual(await h().store.senders(conv, 4, 4, 10), []);
      assert.deepEqual(await h().store.senders(group(), 0, 10, 10), []);
    });

    check('senders returns at most max distinct names', async () => {
      const conv = group();
      const names = ['u1', 'u2', 'u3', 'u4', 'u5'];
      await h().store.append(
        names.flatMap((from, i) => [msg(conv, 2 * i + 1, { from }), msg(conv, 2 * i + 2, { from })]),
      );
      const two = await h().store.senders(conv, 0, 10, 2);
      assert.equal(two.length, 2);
      assert.equal(new Set(two).size, 2);
      for (const s of two) assert.ok(names.includes(s), s);
      assert.equal((await h().store.senders(conv, 0, 10, 5)).length, 5);
      assert.equal((await h().store.senders(conv, 0, 10, 100)).length, 5);
    });
  });
}

/** A message of `conv` at `seq`, with a ts and cmid derived from the seq. */
function msg(conv: string, seq: number, over: Partial<StoredMessage> = {}): StoredMessage {
  return {
    conv,
    seq,
    ts: 1_700_000_000_000 + seq * 10,
    from: 'alice',
    from_device: 'phone',
    cmid: `cmid-${seq}`,
    kind: 'text',
    body: `message ${seq}`,
    ...over,
  };
}
