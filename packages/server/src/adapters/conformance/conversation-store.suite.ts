/**
 * The conformance suite of the `ConversationStore` port: every adapter runs it through its own
 * runner and must pass it. It pins down the contract written in the doc comments of
 * `ports/conversation-store.ts`: conversation metadata that follows the log, and receipt
 * watermarks that are max-registers, so merges in any order, repeated or late, end equal.
 *
 * One store is shared by the suite's tests, each working on conversations of its own.
 *
 * @module
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ConversationStore } from '../../ports/conversation-store.js';
import type { MessageStore, StoredMessage } from '../../ports/message-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite: the store, and the message store that feeds its metadata. */
export interface ConversationStoreHarness extends Closable {
  store: ConversationStore;
  /** Appends messages, which `get` describes; tests of `get` need it. */
  messages?: MessageStore;
}

/** Registers the `ConversationStore` conformance tests for one adapter. */
export function conversationStoreSuite(
  name: string,
  make: () => Promise<ConversationStoreHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite(
    { subject: 'ConversationStore', adapter: name, make, options },
    ({ h, check, checkWith, id }) => {
      /** A fresh group conversation id, unique to this run. */
      const group = () => `g:${id()}`;
      /** Registers a test that needs `messages`. */
      const checkWithMessages = checkWith('messages', 'message store');
      /** The watermarks of `conv` as (user, delivered, read), by user. */
      const marks = async (conv: string, users?: readonly string[]) =>
        (await h().store.watermarks(conv, users))
          .map((w) => {
            assert.equal(w.conv, conv);
            return { user: w.user, delivered: w.delivered, read: w.read };
          })
          .sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));

      check('get is null for an unknown conversation', async () => {
        assert.equal(await h().store.get(group()), null);
      });

      checkWithMessages('get describes a conversation from its log', async (messages) => {
        const conv = group();
        const dm = `dm:${id('a')}:${id('b')}`;
        await messages.append([msg(conv, 1, 1_000), msg(conv, 2, 1_010), msg(conv, 3, 1_020)]);
        await messages.append([msg(dm, 1, 2_000)]);
        assert.deepEqual(await h().store.get(conv), {
          conv,
          kind: 'group',
          createdTs: 1_000,
          lastSeq: 3,
          lastTs: 1_020,
        });
        assert.deepEqual(await h().store.get(dm), {
          conv: dm,
          kind: 'direct',
          createdTs: 2_000,
          lastSeq: 1,
          lastTs: 2_000,
        });
        await messages.append([msg(conv, 4, 1_030)]);
        assert.deepEqual(await h().store.get(conv), {
          conv,
          kind: 'group',
          createdTs: 1_000,
          lastSeq: 4,
          lastTs: 1_030,
        });
      });

      checkWithMessages(
        'watermarks merged before the first message do not change its metadata',
        async (messages) => {
          const conv = group();
          await h().store.mergeWatermarks([{ conv, user: 'alice', delivered: 1, read: 1 }]);
          await messages.append([msg(conv, 1, 5_000)]);
          assert.deepEqual(await h().store.get(conv), {
            conv,
            kind: 'group',
            createdTs: 5_000,
            lastSeq: 1,
            lastTs: 5_000,
          });
          assert.deepEqual(await marks(conv), [{ user: 'alice', delivered: 1, read: 1 }]);
        },
      );

      check('a conversation without watermarks has none', async () => {
        assert.deepEqual(await h().store.watermarks(group()), []);
        assert.deepEqual(await h().store.watermarks(group(), ['alice']), []);
      });

      check('mergeWatermarks stores rows of several users and conversations in one call', async () => {
        const a = group();
        const b = group();
        await h().store.mergeWatermarks([
          { conv: a, user: 'alice', delivered: 3, read: 2 },
          { conv: a, user: 'bob', delivered: 5, read: 0 },
          { conv: b, user: 'alice', delivered: 7, read: 7 },
        ]);
        assert.deepEqual(await marks(a), [
          { user: 'alice', delivered: 3, read: 2 },
          { user: 'bob', delivered: 5, read: 0 },
        ]);
        assert.deepEqual(await marks(b), [{ user: 'alice', delivered: 7, read: 7 }]);
      });

      check('merging keeps the maximum of each field separately', async () => {
        const conv = group();
        await h().store.mergeWatermarks([{ conv, user: 'alice', delivered: 5, read: 2 }]);
        await h().store.mergeWatermarks([{ conv, user: 'alice', delivered: 3, read: 4 }]);
        assert.deepEqual(await marks(conv), [{ user: 'alice', delivered: 5, read: 4 }]);
        // Within one call too.
        await h().store.mergeWatermarks([
          { conv, user: 'alice', delivered: 9, read: 1 },
          { conv, user: 'alice', delivered: 1, read: 8 },
        ]);
        assert.deepEqual(await marks(conv), [{ user: 'alice', delivered: 9, read: 8 }]);
      });

      check('a late or repeated write never moves a watermark back', async () => {
        const conv = group();
        await h().store.mergeWatermarks([{ conv, user: 'bob', delivered: 10, read: 10 }]);
        await h().store.mergeWatermarks([{ conv, user: 'bob', delivered: 10, read: 10 }]);
        await h().store.mergeWatermarks([{ conv, user: 'bob', delivered: 4, read: 0 }]);
        assert.deepEqual(await marks(conv), [{ user: 'bob', delivered: 10, read: 10 }]);
      });

      check('watermarks(conv, users) returns only those users; users without any are absent', async () => {
        const conv = group();
        await h().store.mergeWatermarks([
          { conv, user: 'alice', delivered: 1, read: 1 },
          { conv, user: 'bob', delivered: 2, read: 1 },
          { conv, user: 'carol', delivered: 3, read: 3 },
        ]);
        await h().store.mergeWatermarks([{ conv: group(), user: 'dave', delivered: 1, read: 1 }]);
        assert.deepEqual(await marks(conv, ['carol', 'alice']), [
          { user: 'alice', delivered: 1, read: 1 },
          { user: 'carol', delivered: 3, read: 3 },
        ]);
        assert.deepEqual(await marks(conv, ['bob', 'dave', 'nobody']), [
          { user: 'bob', delivered: 2, read: 1 },
        ]);
        assert.deepEqual(await marks(conv, []), []);
        assert.equal((await marks(conv)).length, 3);
      });

      check('a merge that raises nothing still records the member at 0, 0', async () => {
        const conv = group();
        await h().store.mergeWatermarks([{ conv, user: 'dave', delivered: 0, read: 0 }]);
        assert.deepEqual(await marks(conv), [{ user: 'dave', delivered: 0, read: 0 }]);
      });

      check('watermarks merged in any order end equal (property)', async () => {
        const users = ['alice', 'bob', 'carol'];
        const merge = fc.record({
          user: fc.constantFrom(...users),
          delivered: fc.nat({ max: 40 }),
          read: fc.nat({ max: 40 }),
        });
        const sequences = fc
          .array(merge, { minLength: 1, maxLength: 12 })
          .chain((rows) =>
            fc.tuple(
              fc.constant(rows),
              fc.shuffledSubarray(rows, { minLength: rows.length, maxLength: rows.length }),
            ),
          );
        await fc.assert(
          fc.asyncProperty(sequences, async ([inOrder, shuffled]) => {
            const one = group();
            const two = group();
            // One order: a durable write per merge, each awaited before the next.
            for (const r of inOrder) await h().store.mergeWatermarks([{ conv: one, ...r }]);
            // The other order: all issued at once, as concurrent devices would.
            await Promise.all(shuffled.map((r) => h().store.mergeWatermarks([{ conv: two, ...r }])));
            const expected = new Map<string, { user: string; delivered: number; read: number }>();
            for (const r of inOrder) {
              const old = expected.get(r.user);
              expected.set(r.user, {
                user: r.user,
                delivered: Math.max(old?.delivered ?? 0, r.delivered),
                read: Math.max(old?.read ?? 0, r.read),
              });
            }
            const want = [...expected.values()].sort((a, b) => (a.user < b.user ? -1 : 1));
            assert.deepEqual(await marks(one), want);
            assert.deepEqual(await marks(two), want);
          }),
          { numRuns: 60 },
        );
      });
    },
  );
}

function msg(conv: string, seq: number, ts: number): StoredMessage {
  return {
    conv,
    seq,
    ts,
    from: 'alice',
    from_device: 'phone',
    cmid: `c${seq}`,
    kind: 'text',
    body: `m${seq}`,
  };
}
