/**
 * The conformance suite of group state: the `GroupEffect`s that `MessageStore.append` applies with
 * the system messages that record them, as `ConversationStore.get` and `ConversationStore.members`
 * read them back. It pins down the contract written in the doc comments of
 * `ports/conversation-store.ts` and `ports/message-store.ts`: membership and the conversation log
 * land in one durable step, removed members keep their records, re-joining starts a new record
 * from the new seq, and a retried append changes nothing.
 *
 * The suite never runs on its own: an adapter's test file calls `groupStoreSuite`. One store is
 * shared by the suite's tests, each working on groups of its own, with ids unique to the run.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { ConversationStore, GroupEffect, MemberRecord } from '../../ports/conversation-store.js';
import type { MessageStore, StoredMessage } from '../../ports/message-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite: the message store that applies effects, and the store that reads them. */
export interface GroupStoreHarness extends Closable {
  messages: MessageStore;
  conversations: ConversationStore;
}

/** Registers the group-state conformance tests (effects, members, metadata) for one adapter. */
export function groupStoreSuite(
  name: string,
  make: () => Promise<GroupStoreHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'Group effects', adapter: name, make, options }, ({ h, check, id }) => {
    /** A fresh group conversation id, unique to this run. */
    const group = () => `g:${id()}`;

    /** Creates `conv` at seq 1 with `admin` as its admin and `others` as members. */
    const create = async (conv: string, admin: string, others: string[], groupName = 'Team') => {
      await h().messages.append(
        [sys(conv, 1)],
        [
          {
            type: 'create',
            conv,
            seq: 1,
            name: groupName,
            createdTs: CREATED,
            members: [
              { user: admin, role: 'admin' },
              ...others.map((user) => ({ user, role: 'member' as const })),
            ],
          },
        ],
      );
    };
    /** Appends the system message at `seq` with its effects. */
    const change = (conv: string, seq: number, effects: GroupEffect[]) =>
      h().messages.append([sys(conv, seq)], effects);
    const members = (conv: string) => h().conversations.members(conv);

    check('a conversation without group effects has no member records', async () => {
      assert.deepEqual(await members(group()), []);
      const conv = group();
      await h().messages.append([sys(conv, 1), sys(conv, 2)]);
      assert.deepEqual(await members(conv), []);
    });

    check('create sets kind, name and createdTs, and a record per member with joinedSeq = seq', async () => {
      const conv = group();
      await create(conv, 'zoe', ['amy', 'bob'], 'Launch 🚀');
      assert.deepEqual(await h().conversations.get(conv), {
        conv,
        kind: 'group',
        name: 'Launch 🚀',
        createdTs: CREATED,
        lastSeq: 1,
        lastTs: sys(conv, 1).ts,
      });
      assert.deepEqual(await members(conv), [
        member(conv, 'amy', 'member', 1),
        member(conv, 'bob', 'member', 1),
        member(conv, 'zoe', 'admin', 1),
      ]);
    });

    check(
      'a late retry of an older batch changes nothing: effects apply only with newly stored messages',
      async () => {
        const conv = group();
        await create(conv, 'alice', ['bob'], 'Old');
        await change(conv, 2, [{ type: 'remove', conv, seq: 2, users: ['bob'] }]);
        await change(conv, 3, [{ type: 'rename', conv, seq: 3, name: 'New' }]);
        await create(conv, 'alice', ['bob'], 'Old'); // the seq-1 batch again, after later changes
        await change(conv, 2, [{ type: 'remove', conv, seq: 2, users: ['bob'] }]);
        assert.equal((await h().conversations.get(conv))?.name, 'New');
        assert.deepEqual(await members(conv), [
          member(conv, 'alice', 'admin', 1),
          { ...member(conv, 'bob', 'member', 1), removedSeq: 2 },
        ]);
      },
    );

    check('join adds member records with role member and joinedSeq = the seq of its message', async () => {
      const conv = group();
      await create(conv, 'alice', ['bob']);
      await h().messages.append([text(conv, 2)]);
      await change(conv, 3, [{ type: 'join', conv, seq: 3, users: ['dave', 'carol'] }]);
      assert.deepEqual(await members(conv), [
        member(conv, 'alice', 'admin', 1),
        member(conv, 'bob', 'member', 1),
        member(conv, 'carol', 'member', 3),
        member(conv, 'dave', 'member', 3),
      ]);
      assert.equal((await h().conversations.get(conv))?.lastSeq, 3);
    });

    check('remove sets removedSeq and keeps the record; other members are untouched', async () => {
      const conv = group();
      await create(conv, 'alice', ['bob', 'carol']);
      await change(conv, 2, [{ type: 'remove', conv, seq: 2, users: ['bob'] }]);
      assert.deepEqual(await members(conv), [
        member(conv, 'alice', 'admin', 1),
        { ...member(conv, 'bob', 'member', 1), removedSeq: 2 },
        member(conv, 'carol', 'member', 1),
      ]);
      // Removing several at once; an admin keeps its role on the kept record.
      await change(conv, 3, [{ type: 'remove', conv, seq: 3, users: ['alice', 'carol'] }]);
      assert.deepEqual(await members(conv), [
        { ...member(conv, 'alice', 'admin', 1), removedSeq: 3 },
        { ...member(conv, 'bob', 'member', 1), removedSeq: 2 },
        { ...member(conv, 'carol', 'member', 1), removedSeq: 3 },
      ]);
    });

    check(
      're-joining a removed member clears removedSeq, sets the new joinedSeq and role member',
      async () => {
        const conv = group();
        await create(conv, 'alice', ['bob']);
        await change(conv, 2, [{ type: 'role', conv, seq: 2, user: 'bob', role: 'admin' }]);
        await change(conv, 3, [{ type: 'remove', conv, seq: 3, users: ['bob'] }]);
        await change(conv, 4, [{ type: 'join', conv, seq: 4, users: ['bob'] }]);
        const records = await members(conv);
        assert.deepEqual(records, [member(conv, 'alice', 'admin', 1), member(conv, 'bob', 'member', 4)]);
        assert.ok(!('removedSeq' in records[1]!), 'a re-joined member still has a removedSeq key');
      },
    );

    check('role changes one member’s role, both ways', async () => {
      const conv = group();
      await create(conv, 'alice', ['bob', 'carol']);
      await change(conv, 2, [{ type: 'role', conv, seq: 2, user: 'bob', role: 'admin' }]);
      assert.deepEqual(await members(conv), [
        member(conv, 'alice', 'admin', 1),
        member(conv, 'bob', 'admin', 1),
        member(conv, 'carol', 'member', 1),
      ]);
      await change(conv, 3, [{ type: 'role', conv, seq: 3, user: 'alice', role: 'member' }]);
      assert.deepEqual(await members(conv), [
        member(conv, 'alice', 'member', 1),
        member(conv, 'bob', 'admin', 1),
        member(conv, 'carol', 'member', 1),
      ]);
    });

    check('rename changes the name and keeps createdTs and the members', async () => {
      const conv = group();
      await create(conv, 'alice', ['bob'], 'Before');
      await change(conv, 2, [{ type: 'rename', conv, seq: 2, name: 'After' }]);
      assert.deepEqual(await h().conversations.get(conv), {
        conv,
        kind: 'group',
        name: 'After',
        createdTs: CREATED,
        lastSeq: 2,
        lastTs: sys(conv, 2).ts,
      });
      assert.deepEqual(await members(conv), [
        member(conv, 'alice', 'admin', 1),
        member(conv, 'bob', 'member', 1),
      ]);
    });

    check('members are ordered by joinedSeq, then user', async () => {
      const conv = group();
      await create(conv, 'zed', ['mia', 'abe']);
      await change(conv, 2, [{ type: 'join', conv, seq: 2, users: ['yan', 'bea'] }]);
      await h().messages.append([text(conv, 3)]);
      await change(conv, 4, [{ type: 'join', conv, seq: 4, users: ['aaron'] }]);
      const order = async () => (await members(conv)).map((m) => `${m.joinedSeq}:${m.user}`);
      assert.deepEqual(await order(), ['1:abe', '1:mia', '1:zed', '2:bea', '2:yan', '4:aaron']);
      // A member who leaves and comes back is ordered by the new joinedSeq.
      await change(conv, 5, [{ type: 'remove', conv, seq: 5, users: ['abe'] }]);
      assert.deepEqual(await order(), ['1:abe', '1:mia', '1:zed', '2:bea', '2:yan', '4:aaron']);
      await change(conv, 6, [{ type: 'join', conv, seq: 6, users: ['abe'] }]);
      assert.deepEqual(await order(), ['1:mia', '1:zed', '2:bea', '2:yan', '4:aaron', '6:abe']);
    });

    check('the effects of one append apply in order, with its messages, across conversations', async () => {
      const a = group();
      const b = group();
      const effects: GroupEffect[] = [
        {
          type: 'create',
          conv: a,
          seq: 1,
          name: 'A',
          createdTs: CREATED,
          members: [
            { user: 'alice', role: 'admin' },
            { user: 'bob', role: 'member' },
          ],
        },
        { type: 'join', conv: a, seq: 3, users: ['carol'] },
        // A leave with a promotion rides on one system message: both effects share its seq.
        { type: 'remove', conv: a, seq: 4, users: ['alice'] },
        { type: 'role', conv: a, seq: 4, user: 'bob', role: 'admin' },
        {
          type: 'create',
          conv: b,
          seq: 1,
          name: 'B',
          createdTs: CREATED + 5,
          members: [{ user: 'dave', role: 'admin' }],
        },
        { type: 'rename', conv: b, seq: 2, name: 'B2' },
        // Joined and removed in the same batch: the removal comes after the join.
        { type: 'join', conv: b, seq: 3, users: ['erin'] },
        { type: 'remove', conv: b, seq: 4, users: ['erin'] },
      ];
      await h().messages.append(
        [sys(a, 1), sys(b, 1), text(a, 2), sys(b, 2), sys(a, 3), sys(b, 3), sys(a, 4), sys(b, 4)],
        effects,
      );
      assert.deepEqual(await members(a), [
        { ...member(a, 'alice', 'admin', 1), removedSeq: 4 },
        member(a, 'bob', 'admin', 1),
        member(a, 'carol', 'member', 3),
      ]);
      assert.deepEqual(await members(b), [
        member(b, 'dave', 'admin', 1),
        { ...member(b, 'erin', 'member', 3), removedSeq: 4 },
      ]);
      assert.equal((await h().conversations.get(a))?.name, 'A');
      assert.deepEqual(await h().conversations.get(b), {
        conv: b,
        kind: 'group',
        name: 'B2',
        createdTs: CREATED + 5,
        lastSeq: 4,
        lastTs: sys(b, 4).ts,
      });
      assert.deepEqual(await h().messages.head(a), { lastSeq: 4, lastTs: sys(a, 4).ts });
    });

    check('once append resolves, its messages and its effects are both visible', async () => {
      // Many appends in flight at once (a group-committing store batches them): each one, as it
      // resolves, must show its own messages and effects, never one without the other.
      const groups = Array.from({ length: 20 }, () => group());
      const seen: string[] = [];
      await Promise.all(
        groups.map(async (conv, i) => {
          const user = `u${i}`;
          await h().messages.append(
            [sys(conv, 1), text(conv, 2)],
            [
              {
                type: 'create',
                conv,
                seq: 1,
                name: `G${i}`,
                createdTs: CREATED,
                members: [{ user, role: 'admin' }],
              },
            ],
          );
          const [head, meta, records, page] = await Promise.all([
            h().messages.head(conv),
            h().conversations.get(conv),
            members(conv),
            h().messages.page(conv, { limit: 10 }),
          ]);
          assert.deepEqual(head, { lastSeq: 2, lastTs: text(conv, 2).ts });
          assert.equal(meta?.name, `G${i}`);
          assert.deepEqual(records, [member(conv, user, 'admin', 1)]);
          assert.deepEqual(page, [sys(conv, 1), text(conv, 2)]);
          seen.push(conv);
        }),
      );
      assert.equal(seen.length, groups.length);
    });

    check('re-appending the same messages with the same effects changes nothing', async () => {
      const conv = group();
      await create(conv, 'alice', ['bob', 'carol'], 'Start');
      const messages = [text(conv, 2), sys(conv, 3), sys(conv, 4), sys(conv, 5), sys(conv, 6)];
      const effects: GroupEffect[] = [
        { type: 'join', conv, seq: 3, users: ['dave'] },
        { type: 'remove', conv, seq: 4, users: ['alice'] },
        { type: 'role', conv, seq: 4, user: 'bob', role: 'admin' },
        { type: 'role', conv, seq: 5, user: 'carol', role: 'admin' },
        { type: 'rename', conv, seq: 6, name: 'Renamed' },
      ];
      await h().messages.append(messages, effects);
      const snapshot = async () => ({
        meta: await h().conversations.get(conv),
        members: await members(conv),
        head: await h().messages.head(conv),
        page: await h().messages.page(conv, { limit: 10 }),
      });
      const expected = await snapshot();
      assert.deepEqual(expected.members, [
        { ...member(conv, 'alice', 'admin', 1), removedSeq: 4 },
        member(conv, 'bob', 'admin', 1),
        member(conv, 'carol', 'admin', 1),
        member(conv, 'dave', 'member', 3),
      ]);
      assert.equal(expected.meta?.name, 'Renamed');
      // A retry (the first attempt's outcome unknown), then two more issued together.
      await h().messages.append(messages, effects);
      assert.deepEqual(await snapshot(), expected);
      await Promise.all([h().messages.append(messages, effects), h().messages.append(messages, effects)]);
      assert.deepEqual(await snapshot(), expected);
    });

    check('the store keeps its own copy of effects and returned records', async () => {
      const conv = group();
      const join: Extract<GroupEffect, { type: 'join' }> = { type: 'join', conv, seq: 2, users: ['bob'] };
      await create(conv, 'alice', []);
      await change(conv, 2, [join]);
      join.users.push('mallory');
      join.seq = 99;
      const records = await members(conv);
      assert.deepEqual(records, [member(conv, 'alice', 'admin', 1), member(conv, 'bob', 'member', 2)]);
      records[0]!.role = 'member';
      records[1]!.removedSeq = 7;
      assert.deepEqual(await members(conv), [
        member(conv, 'alice', 'admin', 1),
        member(conv, 'bob', 'member', 2),
      ]);
    });
  });
}

/** The createdTs of the suite's groups: not any message's ts, so it can only come from the effect. */
const CREATED = 1_600_000_000_000;

function member(conv: string, user: string, role: 'admin' | 'member', joinedSeq: number): MemberRecord {
  return { conv, user, role, joinedSeq };
}

/** A system message of `conv` at `seq` (the kind group changes are recorded with). */
function sys(conv: string, seq: number): StoredMessage {
  return {
    conv,
    seq,
    ts: 1_700_000_000_000 + seq * 10,
    from: 'alice',
    from_device: 'phone',
    cmid: `sys-${seq}`,
    kind: 'system',
    body: JSON.stringify({ event: 'changed', seq }),
  };
}

/** A text message of `conv` at `seq`. */
function text(conv: string, seq: number): StoredMessage {
  return { ...sys(conv, seq), cmid: `text-${seq}`, kind: 'text', body: `message ${seq}` };
}
