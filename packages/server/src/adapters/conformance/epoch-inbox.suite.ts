/**
 * The conformance suite of the `EpochInbox` and `PartitionEpochs` capability (see
 * `ports/epoch-inbox.ts`): entries written under an epoch stay invisible to readers until a head
 * publishes them, the higher epoch's row stands under a number whatever the order of the writes,
 * and epochs taken in a stage only grow. Every adapter offering the capability runs it.
 * @module
 */
import assert from 'node:assert/strict';
import type { EpochInbox, PartitionEpochs } from '../../ports/epoch-inbox.js';
import type { InboxEntry, InboxStore } from '../../ports/inbox-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite: the capability and the inbox readers see, of one store. */
export interface EpochInboxHarness extends Closable {
  inbox: InboxStore;
  epochInbox: EpochInbox;
  stageEpochs: PartitionEpochs;
}

const message = (user: string, inbox: number, conv: string, seq: number): InboxEntry => ({
  user,
  inbox,
  ts: 1_000 + seq,
  type: 'message',
  conv,
  seq,
});

/** Registers the `EpochInbox` conformance tests for one adapter. */
export function epochInboxSuite(
  name: string,
  make: () => Promise<EpochInboxHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'EpochInbox', adapter: name, make, options }, ({ h, check, id }) => {
    check('written entries are invisible to readers until a head publishes them', async () => {
      const u = id('u');
      const conv = `g:${id()}`;
      const rows = [message(u, 1, conv, 1), message(u, 2, conv, 2)];
      await h().epochInbox.write(rows, 1);
      assert.equal(await h().inbox.head(u), 0);
      assert.deepEqual(await h().inbox.read(u, 0, 10), []);
      assert.deepEqual(await h().epochInbox.writtenHead(u), { published: 0, written: 2 });
      assert.deepEqual(await h().epochInbox.readWritten(u, 0, 10), rows);
      await h().epochInbox.publish([rows[0]!], new Map([[u, 1]]));
      assert.equal(await h().inbox.head(u), 1);
      assert.deepEqual(await h().inbox.read(u, 0, 10), [rows[0]]);
      assert.deepEqual(await h().inbox.conversations(u, 10), [{ conv, lastTs: 1_001 }]);
      await h().epochInbox.publish([rows[1]!], new Map([[u, 2]]));
      assert.deepEqual(await h().inbox.read(u, 0, 10), rows);
      assert.deepEqual(await h().inbox.lastSeqs(u, [conv]), new Map([[conv, 2]]));
      assert.deepEqual(await h().epochInbox.writtenHead(u), { published: 2, written: 2 });
    });

    check(
      'under one number the row of the higher epoch stands, whatever the order of the writes',
      async () => {
        const u = id('u');
        const conv = `g:${id()}`;
        const zombie = message(u, 1, conv, 7);
        const owner = message(u, 1, conv, 8);
        await h().epochInbox.write([owner], 5);
        await h().epochInbox.write([zombie], 4); // late: loses
        assert.deepEqual(await h().epochInbox.readWritten(u, 0, 10), [owner]);
        const v = id('v');
        await h().epochInbox.write([{ ...zombie, user: v }], 4);
        await h().epochInbox.write([{ ...owner, user: v }], 5); // newer: replaces
        assert.deepEqual(await h().epochInbox.readWritten(v, 0, 10), [{ ...owner, user: v }]);
        await h().epochInbox.publish([{ ...owner, user: v }], new Map([[v, 1]]));
        assert.deepEqual(await h().inbox.read(v, 0, 10), [{ ...owner, user: v }]);
      },
    );

    check('a published head never moves back', async () => {
      const u = id('u');
      const conv = `g:${id()}`;
      const rows = [1, 2, 3].map((n) => message(u, n, conv, n));
      await h().epochInbox.write(rows, 1);
      await h().epochInbox.publish(rows, new Map([[u, 3]]));
      await h().epochInbox.publish([], new Map([[u, 2]]));
      assert.equal(await h().inbox.head(u), 3);
      assert.equal((await h().inbox.read(u, 0, 10)).length, 3);
    });

    check('epochs taken in a stage only grow, and each partition reports the latest taken', async () => {
      const stage = id('stage');
      const first = await h().stageEpochs.take(stage, [0, 1], 'a');
      const second = await h().stageEpochs.take(stage, [1, 2], 'b');
      assert.ok(second > first, `${second} > ${first}`);
      assert.deepEqual(
        await h().stageEpochs.held(stage),
        new Map([
          [0, first],
          [1, second],
          [2, second],
        ]),
      );
      const taken = await Promise.all([0, 1, 2, 3].map((p) => h().stageEpochs.take(stage, [p], `m${p}`)));
      assert.equal(new Set(taken).size, 4, 'concurrent takes get distinct epochs');
      for (const e of taken) assert.ok(e > second);
      assert.deepEqual(await h().stageEpochs.held(id('other')), new Map());
    });
  });
}
