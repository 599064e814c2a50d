/**
 * The conformance suite of the `InboxPruning` capability (`ports/inbox-pruning.ts`): deleting
 * entries older than a time, counting them, keeping the head (numbers are never reused), moving the
 * floor, and keeping a pruned entry pruned when a retried append brings it again. Only adapters
 * that offer the capability run it (the memory and SQLite stores); Cassandra expires inbox rows by
 * TTL and does not claim it, so nothing here is skipped.
 *
 * `prune` acts on every user at once, so each test opens a store of its own.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { InboxPruning } from '../../ports/inbox-pruning.js';
import type { InboxEntry, InboxStore } from '../../ports/inbox-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite: the capability and the inbox store it prunes. */
export interface InboxPruningHarness extends Closable {
  pruning: InboxPruning;
  store: InboxStore;
}

/** Registers the `InboxPruning` conformance tests for one adapter. */
export function inboxPruningSuite(
  name: string,
  make: () => Promise<InboxPruningHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'InboxPruning', adapter: name, make, options }, ({ check, id }) => {
    /** A fresh user id, unique to this run. */
    const user = () => id('u');
    /** A fresh group conversation id, unique to this run. */
    const group = () => `g:${id()}`;
    /** Runs `fn` on a store of its own, closed afterwards. */
    const fresh = async (fn: (store: InboxStore, pruning: InboxPruning) => Promise<void>) => {
      const own = await make();
      try {
        await fn(own.store, own.pruning);
      } finally {
        await own.close();
      }
    };

    check('prune deletes the entries with ts < beforeTs and returns how many', async () => {
      await fresh(async (store, pruning) => {
        const a = user();
        const b = user();
        const conv = group();
        await store.append(
          [
            message(a, 1, conv, 1, 100),
            message(a, 2, conv, 2, 200),
            message(a, 3, conv, 3, 300),
            message(b, 1, conv, 1, 150),
            message(b, 2, conv, 2, 250),
          ],
          [],
        );
        assert.equal(await pruning.prune(200), 2, 'ts 100 and 150 are before 200; ts 200 is not');
        assert.deepEqual(numbers(await store.read(a, 0, 10)), [2, 3]);
        assert.deepEqual(numbers(await store.read(b, 0, 10)), [2]);
        assert.equal(await store.floor(a), 2);
        assert.equal(await store.floor(b), 2);
        assert.equal(await pruning.prune(200), 0, 'nothing left to prune');
        assert.equal(await pruning.prune(260), 2);
        assert.deepEqual(numbers(await store.read(a, 0, 10)), [3]);
        assert.equal(await store.floor(a), 3);
      });
    });

    check('after everything is pruned the head stays and floor is head + 1', async () => {
      await fresh(async (store, pruning) => {
        const u = user();
        const conv = group();
        await store.append(range(u, conv, 1, 3, 100), []);
        assert.equal(await pruning.prune(1_000), 3);
        assert.equal(await store.head(u), 3, 'the head never decreases');
        assert.equal(await store.floor(u), 4);
        assert.deepEqual(await store.read(u, 0, 10), []);
        await store.append([message(u, 4, conv, 4, 2_000)], []);
        assert.equal(await store.head(u), 4);
        assert.equal(await store.floor(u), 4);
        assert.deepEqual(numbers(await store.read(u, 0, 10)), [4]);
      });
    });

    check('a pruned entry appended again stays pruned', async () => {
      await fresh(async (store, pruning) => {
        const u = user();
        const conv = group();
        const entries = range(u, conv, 1, 3, 100);
        await store.append(entries, []);
        assert.equal(await pruning.prune(115), 2);
        // A retried append (the first attempt did land) redelivers numbers at or below the head.
        await store.append(entries, []);
        assert.equal(await store.head(u), 3);
        assert.equal(await store.floor(u), 3);
        assert.deepEqual(numbers(await store.read(u, 0, 10)), [3]);
      });
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
