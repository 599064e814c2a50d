/**
 * The conformance suite of the `FanoutRecovery` capability (`ports/fanout-recovery.ts`): a store
 * that offers it keeps the fan-out marks `InboxStore.append` records with the inbox entries, lists
 * every conversation whose log is ahead of its mark, and never moves a mark back. Only adapters
 * that offer the capability run it (the memory and SQLite stores); one that does not, does not
 * claim it, so nothing here is skipped.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { FanoutRecovery } from '../../ports/fanout-recovery.js';
import type { InboxStore } from '../../ports/inbox-store.js';
import type { MessageStore, StoredMessage } from '../../ports/message-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite: the capability and the two ports of the same store it reads. */
export interface FanoutRecoveryHarness extends Closable {
  recovery: FanoutRecovery;
  /** Where the messages go (the log the marks lag behind). */
  messages: MessageStore;
  /** Records the fan-out marks (`InboxStore.append`'s `fanned`). */
  inbox: InboxStore;
}

/** Registers the `FanoutRecovery` conformance tests for one adapter. */
export function fanoutRecoverySuite(
  name: string,
  make: () => Promise<FanoutRecoveryHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'FanoutRecovery', adapter: name, make, options }, ({ h, check, id }) => {
    /** A fresh group conversation id, unique to this run. */
    const group = () => `g:${id()}`;
    /** Stores messages 1..count of `conv`. */
    const seed = async (conv: string, count: number) =>
      h().messages.append(Array.from({ length: count }, (_, i) => msg(conv, i + 1)));
    /** The `unfanned` rows of one conversation (the store is shared with other tests). */
    const unfannedOf = async (conv: string) => (await h().recovery.unfanned()).filter((r) => r.conv === conv);

    check('unfanned lists a conversation whose appended messages have no fan-out mark', async () => {
      const conv = group();
      const quiet = group();
      await seed(conv, 3);
      const mine = (await h().recovery.unfanned()).filter((r) => r.conv === conv || r.conv === quiet);
      assert.deepEqual(mine, [{ conv, fannedSeq: 0, lastSeq: 3 }]);
    });

    check(
      'unfanned follows the fan-out marks of InboxStore.append and clears once all are marked',
      async () => {
        const conv = group();
        const user = id('reader');
        await seed(conv, 3);
        await h().inbox.append(
          [
            { user, inbox: 1, ts: msg(conv, 1).ts, type: 'message', conv, seq: 1 },
            { user, inbox: 2, ts: msg(conv, 2).ts, type: 'message', conv, seq: 2 },
          ],
          [{ conv, seq: 2 }],
        );
        assert.deepEqual(await unfannedOf(conv), [{ conv, fannedSeq: 2, lastSeq: 3 }]);
        await h().inbox.append(
          [{ user, inbox: 3, ts: msg(conv, 3).ts, type: 'message', conv, seq: 3 }],
          [{ conv, seq: 3 }],
        );
        assert.deepEqual(await unfannedOf(conv), []);
        await h().messages.append([msg(conv, 4), msg(conv, 5)]);
        assert.deepEqual(await unfannedOf(conv), [{ conv, fannedSeq: 3, lastSeq: 5 }]);
        // A mark with no inbox entries (a message nobody else receives) counts too.
        await h().inbox.append([], [{ conv, seq: 5 }]);
        assert.deepEqual(await unfannedOf(conv), []);
      },
    );

    check('a fan-out mark never moves back', async () => {
      const conv = group();
      await seed(conv, 3);
      await h().inbox.append([], [{ conv, seq: 3 }]);
      await h().inbox.append([], [{ conv, seq: 1 }]);
      assert.deepEqual(await unfannedOf(conv), []);
      await h().messages.append([msg(conv, 4)]);
      assert.deepEqual(await unfannedOf(conv), [{ conv, fannedSeq: 3, lastSeq: 4 }]);
    });
  });
}

/** A message of `conv` at `seq`, with a ts and cmid derived from the seq. */
function msg(conv: string, seq: number): StoredMessage {
  return {
    conv,
    seq,
    ts: 1_700_000_000_000 + seq * 10,
    from: 'alice',
    from_device: 'phone',
    cmid: `cmid-${seq}`,
    kind: 'text',
    body: `message ${seq}`,
  };
}
