/**
 * The conformance suite of the `InboxStore` port: every adapter runs it through its own runner and
 * must pass it. It pins down the contract written in the doc comments of `ports/inbox-store.ts`:
 * numbered per-user inboxes, a head that never decreases, idempotent re-appends, and the chat list
 * that message entries keep. Pruning belongs to the `InboxPruning` capability and has a suite of its
 * own (`inbox-pruning.suite.ts`).
 *
 * One store is shared by the tests, each working on users of its own.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { InboxConflictError, type InboxEntry, type InboxStore } from '../../ports/inbox-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface InboxStoreHarness extends Closable {
  store: InboxStore;
}

/** Registers the `InboxStore` conformance tests for one adapter. */
export function inboxStoreSuite(
  name: string,
  make: () => Promise<InboxStoreHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'InboxStore', adapter: name, make, options }, ({ h, check, id }) => {
    /** A fresh user id, unique to this run. */
    const user = () => id('u');
    /** A fresh group conversation id, unique to this run. */
    const group = () => `g:${id()}`;
    check('a user without entries has head 0, floor 1 and nothing to read', async () => {
      const u = user();
      assert.equal(await h().store.head(u), 0);
      assert.equal(await h().store.floor(u), 1);
      assert.deepEqual(await h().store.read(u, 0, 10), []);
      assert.deepEqual(await h().store.conversations(u, 10), []);
    });

    check('append then read returns the entries exactly, ascending', async () => {
      const u = user();
      const conv = group();
      const entries: InboxEntry[] = [
        message(u, 1, conv, 1, 100),
        { user: u, inbox: 2, ts: 110, type: 'receipt', conv, seq: 1, actor: 'bob', kind: 'delivered' },
        { user: u, inbox: 3, ts: 120, type: 'receipt', conv, seq: 1, actor: 'carol', kind: 'read' },
        message(u, 4, conv, 2, 130),
      ];
      await h().store.append(entries, []);
      assert.deepEqual(await h().store.read(u, 0, 10), entries);
      assert.equal(await h().store.head(u), 4);
      assert.equal(await h().store.floor(u), 1);
    });

    check('read returns entries after `after` (exclusive), at most `limit`', async () => {
      const u = user();
      const conv = group();
      await h().store.append(range(u, conv, 1, 10, 100), []);
      assert.deepEqual(numbers(await h().store.read(u, 0, 3)), [1, 2, 3]);
      assert.deepEqual(numbers(await h().store.read(u, 3, 3)), [4, 5, 6]);
      assert.deepEqual(numbers(await h().store.read(u, 8, 5)), [9, 10]);
      assert.deepEqual(numbers(await h().store.read(u, 10, 5)), []);
      assert.deepEqual(numbers(await h().store.read(u, 0, 100)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });

    check('appends continue after the head, and one append may carry several users', async () => {
      const a = user();
      const b = user();
      const conv = group();
      await h().store.append([message(a, 1, conv, 1, 100), message(b, 1, conv, 1, 100)], []);
      await h().store.append(
        [message(a, 2, conv, 2, 110), message(b, 2, conv, 2, 110), message(b, 3, conv, 3, 120)],
        [],
      );
      assert.equal(await h().store.head(a), 2);
      assert.equal(await h().store.head(b), 3);
      assert.deepEqual(numbers(await h().store.read(a, 0, 10)), [1, 2]);
      assert.deepEqual(numbers(await h().store.read(b, 0, 10)), [1, 2, 3]);
      assert.ok((await h().store.read(a, 0, 10)).every((e) => e.user === a));
    });

    check('re-appending the same (user, inbox) is a no-op', async () => {
      const u = user();
      const conv = group();
      const other = group();
      const first = [message(u, 1, conv, 1, 100), message(u, 2, conv, 2, 200)];
      await h().store.append(first, []);
      await h().store.append(first, []);
      // Even other content under the same numbers changes nothing: the first write stands (a
      // shared adapter also says so, with InboxConflictError).
      await h()
        .store.append([message(u, 2, other, 7, 900)], [])
        .catch((err: unknown) => assert.ok(err instanceof InboxConflictError, String(err)));
      assert.deepEqual(await h().store.read(u, 0, 10), first);
      assert.equal(await h().store.head(u), 2);
      assert.deepEqual(await h().store.conversations(u, 10), [{ conv, lastTs: 200 }]);
    });

    check('the store keeps its own copy of appended and returned entries', async () => {
      const u = user();
      const conv = group();
      const e = message(u, 1, conv, 1, 100);
      await h().store.append([e], []);
      e.seq = 99;
      const [got] = await h().store.read(u, 0, 1);
      assert.deepEqual(got, message(u, 1, conv, 1, 100));
      got!.seq = 42;
      assert.deepEqual(await h().store.read(u, 0, 1), [message(u, 1, conv, 1, 100)]);
    });

    check('conversations lists the conversations of message entries, newest first', async () => {
      const u = user();
      const [c1, c2, c3] = [group(), group(), group()];
      await h().store.append(
        [message(u, 1, c1, 1, 100), message(u, 2, c2, 1, 300), message(u, 3, c3, 1, 200)],
        [],
      );
      assert.deepEqual(await h().store.conversations(u, 10), [
        { conv: c2, lastTs: 300 },
        { conv: c3, lastTs: 200 },
        { conv: c1, lastTs: 100 },
      ]);
      assert.deepEqual(await h().store.conversations(u, 2), [
        { conv: c2, lastTs: 300 },
        { conv: c3, lastTs: 200 },
      ]);
      assert.deepEqual(await h().store.conversations(user(), 10), [], 'the list is per user');
    });

    check('conversations before beforeTs is exclusive and pages through the list', async () => {
      const u = user();
      const convs = Array.from({ length: 7 }, () => group());
      await h().store.append(
        convs.map((c, i) => message(u, i + 1, c, 1, 1_000 + i * 10)),
        [],
      );
      assert.deepEqual(await h().store.conversations(u, 10, 1_030), [
        { conv: convs[2], lastTs: 1_020 },
        { conv: convs[1], lastTs: 1_010 },
        { conv: convs[0], lastTs: 1_000 },
      ]);
      const seen: string[] = [];
      let cursor: number | undefined;
      for (;;) {
        const page = await h().store.conversations(u, 3, cursor);
        if (page.length === 0) break;
        seen.push(...page.map((r) => r.conv));
        cursor = page.at(-1)!.lastTs;
      }
      assert.deepEqual(seen, [...convs].reverse());
    });

    check('a message entry records its conversation activity; the latest ts wins', async () => {
      const u = user();
      const [c1, c2] = [group(), group()];
      await h().store.append([message(u, 1, c1, 1, 100), message(u, 2, c2, 1, 200)], []);
      await h().store.append([message(u, 3, c1, 2, 300)], []);
      assert.deepEqual(await h().store.conversations(u, 10), [
        { conv: c1, lastTs: 300 },
        { conv: c2, lastTs: 200 },
      ]);
      // An entry with an older ts (a late fan-out) does not move the conversation back.
      await h().store.append([message(u, 4, c1, 3, 150)], []);
      assert.deepEqual(await h().store.conversations(u, 10), [
        { conv: c1, lastTs: 300 },
        { conv: c2, lastTs: 200 },
      ]);
    });

    check(
      'lastSeqs gives the highest message seq per conversation; receipts and older seqs do not move it',
      async () => {
        const u = user();
        const [c1, c2, c3] = [group(), group(), group()];
        await h().store.append([message(u, 1, c1, 4, 100), message(u, 2, c2, 9, 200)], []);
        await h().store.append(
          [
            message(u, 3, c1, 7, 300),
            { user: u, inbox: 4, ts: 310, type: 'receipt', conv: c1, seq: 20, actor: 'bob', kind: 'read' },
            { user: u, inbox: 5, ts: 320, type: 'receipt', conv: c3, seq: 2, actor: 'bob', kind: 'read' },
          ],
          [],
        );
        // A late fan-out of an older message (a retried send) leaves the highest seq in place.
        await h().store.append(
          [message(u, 6, c2, 3, 400)],
          [],
          [{ conv: c1, seq: 8, ts: 410, users: [u], inboxes: [7] }],
        );
        const seqs = await h().store.lastSeqs(u, [c1, c2, c3, group()]);
        assert.deepEqual(
          new Map([...seqs].sort()),
          new Map(
            [
              [c1, 8],
              [c2, 9],
            ].sort() as [string, number][],
          ),
        );
        assert.deepEqual(await h().store.lastSeqs(u, []), new Map());
        assert.deepEqual(await h().store.lastSeqs(user(), [c1]), new Map(), 'per user');
      },
    );

    check('receipt entries do not change the chat list', async () => {
      const u = user();
      const [c1, c2] = [group(), group()];
      await h().store.append([message(u, 1, c1, 1, 100)], []);
      await h().store.append(
        [
          { user: u, inbox: 2, ts: 500, type: 'receipt', conv: c1, seq: 1, actor: 'bob', kind: 'read' },
          { user: u, inbox: 3, ts: 600, type: 'receipt', conv: c2, seq: 1, actor: 'bob', kind: 'delivered' },
        ],
        [],
      );
      assert.deepEqual(await h().store.conversations(u, 10), [{ conv: c1, lastTs: 100 }]);
      assert.equal(await h().store.head(u), 3);
    });
  });
}

/** A message entry. */
function message(user: string, inbox: number, conv: string, seq: number, ts: number): InboxEntry {
  return { user, inbox, ts, type: 'message', conv, seq };
}

/** Message entries from..to of `user` in `conv`, seq = inbox number, ts ascending from `ts0`. */
function range(user: string, conv: string, from: number, to: number, ts0: number): InboxEntry[] {
  const out: InboxEntry[] = [];
  for (let i = from; i <= to; i++) out.push(message(user, i, conv, i, ts0 + (i - from) * 10));
  return out;
}

function numbers(entries: readonly InboxEntry[]): number[] {
  return entries.map((e) => e.inbox);
}
