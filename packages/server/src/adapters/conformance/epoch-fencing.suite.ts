/**
 * The conformance suite of the epoch fencing capability (`EpochInbox`, `EpochMessages` and
 * `PartitionEpochs`, see `ports/epoch-fencing.ts`): rows written under an epoch stay invisible to
 * readers until published, the higher epoch's row stands under a number whatever the order of the
 * writes, and epochs taken in a stage only grow. Every adapter offering the capability runs it.
 * @module
 */
import assert from 'node:assert/strict';
import type { ConversationStore } from '../../ports/conversation-store.js';
import type { EpochInbox, EpochMessages, PartitionEpochs } from '../../ports/epoch-fencing.js';
import type { InboxEntry, InboxStore } from '../../ports/inbox-store.js';
import type { MessageStore, StoredMessage } from '../../ports/message-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** A store offering the capability, with the ports readers use (as `MemoryStore` and `CassandraStore` are). */
export interface EpochFencingStore {
  inbox: InboxStore;
  epochInbox: EpochInbox;
  messages: MessageStore;
  conversations: ConversationStore;
  epochMessages: EpochMessages;
  stageEpochs: PartitionEpochs;
}

/** What the runner hands the suite. */
export interface EpochFencingHarness extends Closable {
  store: EpochFencingStore;
}

const text = (conv: string, seq: number, cmid = `c${seq}`): StoredMessage => ({
  conv,
  seq,
  ts: 1_700_000_000_000 + seq,
  from: 'ann',
  from_device: 'phone',
  cmid,
  kind: 'text',
  body: `m${seq}`,
});

const message = (user: string, inbox: number, conv: string, seq: number): InboxEntry => ({
  user,
  inbox,
  ts: 1_000 + seq,
  type: 'message',
  conv,
  seq,
});

/** Registers the epoch fencing conformance tests for one adapter. */
export function epochFencingSuite(
  name: string,
  make: () => Promise<EpochFencingHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'EpochFencing', adapter: name, make, options }, ({ h, check, id }) => {
    check('written entries are invisible to readers until a head publishes them', async () => {
      const u = id('u');
      const conv = `g:${id()}`;
      const rows = [message(u, 1, conv, 1), message(u, 2, conv, 2)];
      await h().store.epochInbox.write(rows, 1);
      assert.equal(await h().store.inbox.head(u), 0);
      assert.deepEqual(await h().store.inbox.read(u, 0, 10), []);
      assert.deepEqual(await h().store.epochInbox.writtenHead(u), { published: 0, written: 2 });
      assert.deepEqual(await h().store.epochInbox.readWritten(u, 0, 10), rows);
      await h().store.epochInbox.publish([rows[0]!], new Map([[u, 1]]));
      assert.equal(await h().store.inbox.head(u), 1);
      assert.deepEqual(await h().store.inbox.read(u, 0, 10), [rows[0]]);
      assert.deepEqual(await h().store.inbox.conversations(u, 10), [{ conv, lastTs: 1_001 }]);
      await h().store.epochInbox.publish([rows[1]!], new Map([[u, 2]]));
      assert.deepEqual(await h().store.inbox.read(u, 0, 10), rows);
      assert.deepEqual(await h().store.inbox.lastSeqs(u, [conv]), new Map([[conv, 2]]));
      assert.deepEqual(await h().store.epochInbox.writtenHead(u), { published: 2, written: 2 });
    });

    check(
      'under one number the row of the higher epoch stands, whatever the order of the writes',
      async () => {
        const u = id('u');
        const conv = `g:${id()}`;
        const zombie = message(u, 1, conv, 7);
        const owner = message(u, 1, conv, 8);
        await h().store.epochInbox.write([owner], 5);
        await h().store.epochInbox.write([zombie], 4); // late: loses
        assert.deepEqual(await h().store.epochInbox.readWritten(u, 0, 10), [owner]);
        const v = id('v');
        await h().store.epochInbox.write([{ ...zombie, user: v }], 4);
        await h().store.epochInbox.write([{ ...owner, user: v }], 5); // newer: replaces
        assert.deepEqual(await h().store.epochInbox.readWritten(v, 0, 10), [{ ...owner, user: v }]);
        await h().store.epochInbox.publish([{ ...owner, user: v }], new Map([[v, 1]]));
        assert.deepEqual(await h().store.inbox.read(v, 0, 10), [{ ...owner, user: v }]);
      },
    );

    check('a published head never moves back', async () => {
      const u = id('u');
      const conv = `g:${id()}`;
      const rows = [1, 2, 3].map((n) => message(u, n, conv, n));
      await h().store.epochInbox.write(rows, 1);
      await h().store.epochInbox.publish(rows, new Map([[u, 3]]));
      await h().store.epochInbox.publish([], new Map([[u, 2]]));
      assert.equal(await h().store.inbox.head(u), 3);
      assert.equal((await h().store.inbox.read(u, 0, 10)).length, 3);
    });

    check(
      'written messages are invisible to readers until published; the written head lists them',
      async () => {
        const conv = `g:${id()}`;
        const create = {
          type: 'create' as const,
          conv,
          seq: 1,
          name: 'Team',
          createdTs: 5,
          members: [{ user: 'ann', role: 'admin' as const }],
        };
        const rows = [{ ...text(conv, 1), kind: 'system' }, text(conv, 2)];
        await h().store.epochMessages.write(rows, [create], 3);
        assert.equal(await h().store.messages.head(conv), null);
        assert.deepEqual(await h().store.messages.page(conv, { limit: 10 }), []);
        assert.deepEqual(await h().store.messages.page(conv, { after: 0, limit: 10 }), []);
        assert.equal(await h().store.messages.findByCmid(conv, 'ann', 'c2'), null);
        assert.deepEqual(await h().store.conversations.members(conv), []);
        const written = await h().store.epochMessages.writtenHead(conv);
        assert.equal(written.head, null);
        assert.deepEqual(written.beyond, rows);
        assert.deepEqual(written.effects, [create]);
        await h().store.epochMessages.publish(written.beyond, written.effects);
        assert.deepEqual(await h().store.messages.head(conv), { lastSeq: 2, lastTs: rows[1]!.ts });
        assert.deepEqual(await h().store.messages.page(conv, { after: 0, limit: 10 }), rows);
        assert.deepEqual(await h().store.messages.findByCmid(conv, 'ann', 'c2'), { seq: 2, ts: rows[1]!.ts });
        assert.deepEqual(
          (await h().store.conversations.members(conv)).map((m) => [m.user, m.role]),
          [['ann', 'admin']],
        );
        assert.deepEqual(await h().store.epochMessages.writtenHead(conv), {
          head: { lastSeq: 2, lastTs: rows[1]!.ts },
          beyond: [],
          effects: [],
        });
      },
    );

    check(
      'under one seq the message of the higher epoch stands, whatever the order of the writes',
      async () => {
        const conv = `dm:${id('a')}:${id('b')}`;
        const zombie = text(conv, 1, 'from-zombie');
        const owner = text(conv, 1, 'from-owner');
        await h().store.epochMessages.write([owner], [], 9);
        await h().store.epochMessages.write([zombie], [], 8); // late: loses
        assert.deepEqual((await h().store.epochMessages.writtenHead(conv)).beyond, [owner]);
        await h().store.epochMessages.publish([owner], []);
        assert.deepEqual(await h().store.messages.page(conv, { limit: 10 }), [owner]);
        assert.equal(await h().store.messages.findByCmid(conv, 'ann', 'from-zombie'), null);
      },
    );

    check('epochs taken in a stage only grow, and each partition reports the latest taken', async () => {
      const stage = id('stage');
      const first = await h().store.stageEpochs.take(stage, [0, 1], 'a');
      const second = await h().store.stageEpochs.take(stage, [1, 2], 'b');
      assert.ok(second > first, `${second} > ${first}`);
      assert.deepEqual(
        await h().store.stageEpochs.held(stage),
        new Map([
          [0, first],
          [1, second],
          [2, second],
        ]),
      );
      const taken = await Promise.all(
        [0, 1, 2, 3].map((p) => h().store.stageEpochs.take(stage, [p], `m${p}`)),
      );
      assert.equal(new Set(taken).size, 4, 'concurrent takes get distinct epochs');
      for (const e of taken) assert.ok(e > second);
      assert.deepEqual(await h().store.stageEpochs.held(id('other')), new Map());
    });
  });
}
