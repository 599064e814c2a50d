/**
 * The conformance suite of the `ConversationWriter` port: the in-process `Sequencer` and cluster
 * mode's `RemoteConversationWriter` (which sends each write over the partitioned log to the
 * sequencer stage owning the conversation, and waits for its answer on the bus) must behave alike,
 * as the chat operations see them through the port. It pins down the contract written in the doc
 * comments of `ports/conversation-writer.ts`: seqs 1, 2, 3, … per conversation in submit order,
 * shared by messages and group changes; durable before resolve; duplicates by (conversation,
 * sender, cmid) answered with the first seq; the group rules with their system messages and their
 * errors, which must arrive as `ParleyError`s with the protocol's code whichever side of the log
 * decided them.
 *
 * The suite never runs on its own: a runner calls `conversationWriterSuite` (the in-process one in
 * `backend/writer-ports.conformance.test.ts`, the remote one in `cluster/remote.conformance.test.ts`).
 * One writer is shared by the suite's tests, each working on users and conversations of its own.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { ErrorCode } from '@parley/protocol';
import { ParleyError } from '../../domain/errors.js';
import type {
  ChangeOutcome,
  ConversationWriter,
  GroupOp,
  SendOutcome,
  SendRequest,
} from '../../ports/conversation-writer.js';
import type { MessageStore, StoredMessage } from '../../ports/message-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite: the writer under test and the store it writes to. */
export interface ConversationWriterHarness extends Closable {
  writer: ConversationWriter;
  /** The store the writer's messages are durable in: a resolved write must be readable here at once. */
  messages: MessageStore;
  /** The writer's largest group (its `maxGroupSize`); at least 4. */
  maxGroupSize: number;
  /** From now on `blocker` has blocked `sender` (what the writer's send policy answers). */
  block(blocker: string, sender: string): void;
}

/** The device every test's actions come from. */
const DEVICE = 'dev-1';

/** Registers the `ConversationWriter` conformance tests for one adapter. */
export function conversationWriterSuite(
  name: string,
  make: () => Promise<ConversationWriterHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'ConversationWriter', adapter: name, make, options }, ({ h, check, id }) => {
    const w = () => h().writer;
    const user = () => id('u');
    const group = () => `g:${id('g')}`;
    /** The direct conversation of two users (its id lists them sorted). */
    const direct = (x: string, y: string) => `dm:${[x, y].sort().join(':')}`;
    const req = (
      conv: string,
      from: string,
      cmid: string,
      extra: Partial<SendRequest> = {},
    ): SendRequest => ({
      conv,
      from,
      from_device: DEVICE,
      cmid,
      kind: 'text',
      body: `body of ${cmid} 🎉`,
      ...extra,
    });
    const change = (conv: string, actor: string, op: GroupOp) => w().change(conv, actor, DEVICE, op);
    const stored = async (conv: string) => h().messages.page(conv, { limit: 10_000 });
    const storedAt = async (conv: string, seq: number): Promise<StoredMessage | undefined> =>
      (await h().messages.getMany([{ conv, seq }]))[0];

    /** A new group made by `admin` with `members`; returns the create's outcome. */
    const create = async (conv: string, admin: string, members: string[], groupName = 'Team') => {
      const out = await change(conv, admin, { op: 'create', name: groupName, members });
      assert.notEqual(out.seq, null, 'create makes a group');
      return out as Extract<ChangeOutcome, { seq: number }>;
    };

    /**
     * The change's system message: stored at its seq, kind `system`, from the actor and device, and
     * the outcome's ts. Returns its body, parsed.
     */
    const systemMessage = async (
      conv: string,
      out: ChangeOutcome,
      actor: string,
    ): Promise<Record<string, unknown>> => {
      assert.notEqual(out.seq, null, 'the change changed something');
      const { seq, ts } = out as Extract<ChangeOutcome, { seq: number }>;
      const m = await storedAt(conv, seq);
      assert.ok(m, `the system message at seq ${seq} is stored once the change resolved`);
      assert.equal(m.kind, 'system');
      assert.equal(m.from, actor);
      assert.equal(m.from_device, DEVICE);
      assert.equal(m.ts, ts, "the outcome's ts is the stored message's");
      return JSON.parse(m.body) as Record<string, unknown>;
    };

    /** The group's members as the writer reports them: user → role. */
    const roles = async (conv: string): Promise<Record<string, string>> => {
      const g = await w().group(conv);
      assert.ok(g, `${conv} is a group`);
      return Object.fromEntries([...g.members].map(([u, m]) => [u, m.role]).sort());
    };
    const sorted = (users: string[]) => Object.fromEntries(users.map((u) => [u, 'member']).sort());

    /** A `lastSeq` answer is either "not known without I/O" or the conversation's real last seq. */
    const assertLastSeq = (conv: string, last: number) => {
      const got = w().lastSeq(conv);
      assert.ok(got === undefined || got === last, `lastSeq(${conv}) is undefined or ${last}, got ${got}`);
    };

    check('submit gives seqs 1, 2, 3, … per conversation, in submit order', async () => {
      const [a, b] = [user(), user()];
      const conv = direct(a, b);
      const outcomes: SendOutcome[] = [];
      for (let i = 1; i <= 4; i++) outcomes.push(await w().submit(req(conv, i % 2 ? a : b, `c${i}`)));
      assert.deepEqual(
        outcomes.map((o) => [o.seq, o.dup]),
        [
          [1, false],
          [2, false],
          [3, false],
          [4, false],
        ],
      );
      const other = direct(a, user());
      assert.equal((await w().submit(req(other, a, 'c1'))).seq, 1, 'another conversation starts at 1');
      assertLastSeq(conv, 4);
      assertLastSeq(other, 1);
    });

    check(
      'a resolved submit is stored exactly as submitted, with the seq and ts it was answered',
      async () => {
        const [a, b] = [user(), user()];
        const conv = direct(a, b);
        const first = req(conv, a, 'plain');
        const full = req(conv, b, 'full', {
          kind: 'image',
          body: 'ünïcödé',
          reply_to: 1,
          media: ['m-1', 'm.2'],
        });
        const o1 = await w().submit(first);
        const o2 = await w().submit(full);
        const expect = (r: SendRequest, o: SendOutcome): StoredMessage => ({ ...r, seq: o.seq, ts: o.ts });
        assert.deepEqual(await storedAt(conv, 1), expect(first, o1));
        assert.deepEqual(await storedAt(conv, 2), expect(full, o2));
        assert.ok(o2.ts >= o1.ts, 'ts never goes back within a conversation');
      },
    );

    check('concurrent submits get consecutive seqs in submit order, each conversation its own', async () => {
      const [a, b, c] = [user(), user(), user()];
      const g = group();
      await create(g, a, [b, c]);
      const convs = [direct(a, b), direct(a, c), g];
      const base = new Map([
        [convs[0]!, 0],
        [convs[1]!, 0],
        [g, 1],
      ]);
      const senders = new Map([
        [convs[0]!, [a, b]],
        [convs[1]!, [a, c]],
        [g, [a, b, c]],
      ]);
      const calls: { conv: string; cmid: string; p: Promise<SendOutcome> }[] = [];
      for (let i = 0; i < 40; i++)
        for (const conv of convs) {
          const cmid = `c${i}`;
          const from = senders.get(conv)![i % senders.get(conv)!.length]!;
          calls.push({ conv, cmid, p: w().submit(req(conv, from, cmid)) });
        }
      const outcomes = await Promise.all(calls.map((x) => x.p));
      for (const conv of convs) {
        const mine = calls.flatMap((x, i) => (x.conv === conv ? [{ cmid: x.cmid, o: outcomes[i]! }] : []));
        const from = base.get(conv)!;
        assert.deepEqual(
          mine.map((x) => x.o.seq),
          mine.map((_, i) => from + i + 1),
          `${conv}: consecutive seqs in submit order`,
        );
        assert.ok(
          mine.every((x) => !x.o.dup),
          'none is a duplicate',
        );
        const log = (await stored(conv)).filter((m) => m.kind !== 'system');
        assert.deepEqual(
          log.map((m) => [m.seq, m.cmid]),
          mine.map((x) => [x.o.seq, x.cmid]),
          `${conv}: the store holds them in that order`,
        );
        assertLastSeq(conv, from + mine.length);
      }
    });

    check('each submit resolves only once its message is readable from the store', async () => {
      const [a, b] = [user(), user()];
      const conv = direct(a, b);
      const seen: string[] = [];
      await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          w()
            .submit(req(conv, a, `c${i}`))
            .then(async (o) => {
              // Read at the moment this one resolved, whatever the others are doing.
              const m = await storedAt(conv, o.seq);
              assert.ok(m, `seq ${o.seq} is readable once its submit resolved`);
              assert.equal(m.cmid, `c${i}`);
              assert.equal(m.ts, o.ts);
              seen.push(m.cmid);
            }),
        ),
      );
      assert.equal(seen.length, 25);
    });

    check(
      'a repeated (conv, from, cmid) is answered with the first seq and ts, dup: true, stored once',
      async () => {
        const [a, b] = [user(), user()];
        const conv = direct(a, b);
        const first = await w().submit(req(conv, a, 'same'));
        assert.equal(first.dup, false);
        const again = await w().submit(req(conv, a, 'same', { body: 'a retry, maybe edited' }));
        assert.equal(again.seq, first.seq);
        assert.equal(again.ts, first.ts);
        assert.equal(again.dup, true);
        assert.equal(again.recipients, undefined, 'a duplicate went to no inbox');
        assert.deepEqual(
          (await stored(conv)).map((m) => [m.seq, m.cmid, m.body]),
          [[1, 'same', 'body of same 🎉']],
        );
        assert.equal((await w().submit(req(conv, a, 'next'))).seq, 2, 'the duplicate took no seq');
      },
    );

    check('a repeat submitted while the first is in flight is a duplicate of it', async () => {
      const [a, b] = [user(), user()];
      const conv = direct(a, b);
      const [x, y, z] = await Promise.all([
        w().submit(req(conv, a, 'twice')),
        w().submit(req(conv, a, 'twice')),
        w().submit(req(conv, a, 'other')),
      ]);
      assert.deepEqual([x.seq, x.dup], [1, false]);
      assert.deepEqual([y.seq, y.ts, y.dup], [1, x.ts, true]);
      assert.deepEqual([z.seq, z.dup], [2, false]);
      assert.deepEqual(
        (await stored(conv)).map((m) => m.cmid),
        ['twice', 'other'],
      );
    });

    check('duplicates are keyed by conversation, sender and cmid', async () => {
      const [a, b, c] = [user(), user(), user()];
      const ab = direct(a, b);
      const ac = direct(a, c);
      assert.equal((await w().submit(req(ab, a, 'k'))).seq, 1);
      const bySomeoneElse = await w().submit(req(ab, b, 'k'));
      assert.deepEqual([bySomeoneElse.seq, bySomeoneElse.dup], [2, false], 'another sender, same cmid');
      const elsewhere = await w().submit(req(ac, a, 'k'));
      assert.deepEqual([elsewhere.seq, elsewhere.dup], [1, false], 'another conversation, same cmid');
      const repeat = await w().submit(req(ab, b, 'k'));
      assert.deepEqual([repeat.seq, repeat.dup], [2, true]);
    });

    check('recipients counts the inboxes a message goes to', async () => {
      const [a, b, c, d] = [user(), user(), user(), user()];
      assert.equal((await w().submit(req(direct(a, b), a, 'x'))).recipients, 2);
      assert.equal((await w().submit(req(direct(a, a), a, 'x'))).recipients, 1, 'a note to self');
      const g = group();
      await create(g, a, [b, c]);
      assert.equal((await w().submit(req(g, b, 'x'))).recipients, 3);
      await change(g, a, { op: 'add', users: [d] });
      assert.equal((await w().submit(req(g, d, 'y'))).recipients, 4);
      await change(g, a, { op: 'remove', users: [b] });
      assert.equal((await w().submit(req(g, c, 'z'))).recipients, 3);
    });

    check('a reply_to beyond the last seq is a bad_request; an earlier one is kept', async () => {
      const [a, b] = [user(), user()];
      const conv = direct(a, b);
      await w().submit(req(conv, a, 'c1'));
      await rejectsWith(
        w().submit(req(conv, b, 'c2', { reply_to: 2 })),
        'bad_request',
        'reply to the future',
      );
      const ok = await w().submit(req(conv, b, 'c3', { reply_to: 1 }));
      assert.equal(ok.seq, 2, 'the refused send took no seq');
      assert.equal((await storedAt(conv, 2))?.reply_to, 1);
    });

    check('only members send to a group: others are forbidden, and take no seq', async () => {
      const [a, b, stranger] = [user(), user(), user()];
      const g = group();
      await create(g, a, [b]);
      await rejectsWith(w().submit(req(g, stranger, 'c1')), 'forbidden', 'a stranger sends');
      await rejectsWith(w().submit(req(group(), a, 'c1')), 'forbidden', 'a send to no group');
      await change(g, a, { op: 'remove', users: [b] });
      await rejectsWith(w().submit(req(g, b, 'c2')), 'forbidden', 'a removed member sends');
      const ok = await w().submit(req(g, a, 'c3'));
      assert.equal(ok.seq, 3, 'create, remove, then this send: no seq lost to the refusals');
      assert.deepEqual(
        (await stored(g)).map((m) => m.seq),
        [1, 2, 3],
      );
    });

    check('a blocked sender is forbidden in the direct conversation; the other way still works', async () => {
      const [a, b] = [user(), user()];
      const conv = direct(a, b);
      h().block(b, a);
      await rejectsWith(w().submit(req(conv, a, 'c1')), 'forbidden', 'a sends to b, who blocked a');
      const fromB = await w().submit(req(conv, b, 'c2'));
      assert.equal(fromB.seq, 1);
    });

    check('create makes the group at seq 1: the creator admin, the others members', async () => {
      const [a, b, c] = [user(), user(), user()];
      const g = group();
      const out = await create(g, a, [b, c, a], 'Launch 🚀');
      assert.deepEqual(out, { seq: 1, ts: out.ts, recipients: 3, members: 3 });
      assert.deepEqual(await systemMessage(g, out, a), {
        event: 'created',
        name: 'Launch 🚀',
        members: [a, b, c],
      });
      const state = await w().group(g);
      assert.deepEqual(state, {
        conv: g,
        name: 'Launch 🚀',
        createdTs: out.ts,
        members: new Map([
          [a, { role: 'admin', joinedSeq: 1 }],
          [b, { role: 'member', joinedSeq: 1 }],
          [c, { role: 'member', joinedSeq: 1 }],
        ]),
      });
      for (const u of [a, b, c]) assert.equal(await w().isMember(g, u), true, `${u} is a member`);
      assert.equal(await w().isMember(g, user()), false);
      assertLastSeq(g, 1);
    });

    check('create of an existing group is a conflict; past the size limit it is too_large', async () => {
      const [a, b] = [user(), user()];
      const g = group();
      await create(g, a, [b]);
      await rejectsWith(
        change(g, b, { op: 'create', name: 'Again', members: [] }),
        'conflict',
        'create twice',
      );
      const max = h().maxGroupSize;
      const fits = Array.from({ length: max - 1 }, user);
      const full = group();
      assert.equal((await create(full, a, fits)).members, max, 'exactly the limit fits');
      const big = group();
      await rejectsWith(
        change(big, a, { op: 'create', name: 'Big', members: [...fits, user()] }),
        'too_large',
        'one past the limit',
      );
      assert.equal(await w().group(big), null, 'the refused create made nothing');
      assert.deepEqual(await stored(big), []);
    });

    check('add: an admin adds users; members already there change nothing', async () => {
      const [a, b, c, d] = [user(), user(), user(), user()];
      const g = group();
      await create(g, a, [b]);
      const out = await change(g, a, { op: 'add', users: [b, c, d] });
      assert.deepEqual(out, { seq: 2, ts: (out as { ts: number }).ts, recipients: 4, members: 4 });
      assert.deepEqual(await systemMessage(g, out, a), { event: 'members_added', users: [c, d] });
      assert.deepEqual(await roles(g), { ...sorted([b, c, d]), [a]: 'admin' });
      assert.equal((await w().group(g))?.members.get(c)?.joinedSeq, 2, 'joined at the change’s seq');
      assert.equal(await w().isMember(g, d), true);
      assert.deepEqual(await change(g, a, { op: 'add', users: [b, c] }), { seq: null });
      assert.deepEqual(
        (await stored(g)).map((m) => m.seq),
        [1, 2],
        'a change that changes nothing stores nothing',
      );
      assertLastSeq(g, 2);
    });

    check('add: a plain member or a stranger is forbidden; past the size limit it is too_large', async () => {
      const [a, b] = [user(), user()];
      const g = group();
      await create(g, a, [b]);
      await rejectsWith(change(g, b, { op: 'add', users: [user()] }), 'forbidden', 'a member adds');
      await rejectsWith(change(g, user(), { op: 'add', users: [user()] }), 'forbidden', 'a stranger adds');
      await rejectsWith(change(group(), a, { op: 'add', users: [b] }), 'forbidden', 'add to no group');
      const room = h().maxGroupSize - 2;
      await change(g, a, { op: 'add', users: Array.from({ length: room }, user) });
      await rejectsWith(change(g, a, { op: 'add', users: [user()] }), 'too_large', 'one past the limit');
      assert.equal((await w().group(g))?.members.size, h().maxGroupSize);
    });

    check('remove: the removed hear of it too; removing non-members changes nothing', async () => {
      const [a, b, c, d] = [user(), user(), user(), user()];
      const g = group();
      await create(g, a, [b, c, d]);
      const out = await change(g, a, { op: 'remove', users: [b, user()] });
      assert.deepEqual(out, { seq: 2, ts: (out as { ts: number }).ts, recipients: 4, members: 3 });
      assert.deepEqual(await systemMessage(g, out, a), { event: 'members_removed', users: [b] });
      assert.equal(await w().isMember(g, b), false);
      assert.deepEqual(await roles(g), { ...sorted([c, d]), [a]: 'admin' });
      assert.deepEqual(await change(g, a, { op: 'remove', users: [b] }), { seq: null });
      await rejectsWith(change(g, b, { op: 'add', users: [b] }), 'forbidden', 'a removed member acts');
    });

    check('remove: a plain member may remove only themselves', async () => {
      const [a, b, c] = [user(), user(), user()];
      const g = group();
      await create(g, a, [b, c]);
      await rejectsWith(change(g, b, { op: 'remove', users: [c] }), 'forbidden', 'a member removes another');
      await rejectsWith(
        change(g, b, { op: 'remove', users: [user()] }),
        'forbidden',
        'a member removes a non-member (even though it would change nothing)',
      );
      const out = await change(g, b, { op: 'remove', users: [b] });
      assert.equal(out.seq, 2);
      assert.deepEqual(await systemMessage(g, out, b), { event: 'members_removed', users: [b] });
      assert.equal(await w().isMember(g, b), false);
    });

    check('leave: the last admin leaving promotes the longest-standing member', async () => {
      const [a, b, c] = [user(), user(), user()];
      const g = group();
      await create(g, a, [c]);
      await change(g, a, { op: 'add', users: [b] });
      const out = await change(g, a, { op: 'leave' });
      assert.deepEqual(out, { seq: 3, ts: (out as { ts: number }).ts, recipients: 3, members: 2 });
      assert.deepEqual(await systemMessage(g, out, a), { event: 'member_left', user: a, promoted: c });
      assert.deepEqual(await roles(g), { [b]: 'member', [c]: 'admin' });
      await rejectsWith(change(g, a, { op: 'leave' }), 'forbidden', 'leave twice');
      const last = await change(g, c, { op: 'leave' });
      assert.deepEqual(await systemMessage(g, last, c), { event: 'member_left', user: c, promoted: b });
      const gone = await change(g, b, { op: 'leave' });
      assert.deepEqual(gone, { seq: 5, ts: (gone as { ts: number }).ts, recipients: 1, members: 0 });
      assert.deepEqual(await systemMessage(g, gone, b), { event: 'member_left', user: b });
      assert.deepEqual(await roles(g), {}, 'the group stays, without members');
      assert.equal(await w().isMember(g, b), false);
    });

    check('delete: an admin ends the group for everyone; nothing changes it afterwards', async () => {
      const [a, b, c] = [user(), user(), user()];
      const g = group();
      await create(g, a, [b, c]);
      await rejectsWith(change(g, b, { op: 'delete' }), 'forbidden', 'a member deletes');
      await rejectsWith(change(g, user(), { op: 'delete' }), 'forbidden', 'a stranger deletes');
      const out = await change(g, a, { op: 'delete' });
      assert.deepEqual(out, { seq: 2, ts: (out as { ts: number }).ts, recipients: 3, members: 0 });
      assert.deepEqual(await systemMessage(g, out, a), { event: 'group_deleted' });
      assert.deepEqual(await roles(g), {});
      for (const u of [a, b, c]) assert.equal(await w().isMember(g, u), false);
      await rejectsWith(change(g, a, { op: 'add', users: [b] }), 'forbidden', 'the former admin adds');
      await rejectsWith(change(g, a, { op: 'delete' }), 'forbidden', 'delete twice');
    });

    check('rename: an admin renames; the same name changes nothing; members may not', async () => {
      const [a, b] = [user(), user()];
      const g = group();
      await create(g, a, [b], 'Old');
      const out = await change(g, a, { op: 'rename', name: 'New ✨' });
      assert.deepEqual(out, { seq: 2, ts: (out as { ts: number }).ts, recipients: 2, members: 2 });
      assert.deepEqual(await systemMessage(g, out, a), { event: 'renamed', name: 'New ✨' });
      assert.equal((await w().group(g))?.name, 'New ✨');
      assert.deepEqual(await change(g, a, { op: 'rename', name: 'New ✨' }), { seq: null });
      await rejectsWith(change(g, b, { op: 'rename', name: 'Mine' }), 'forbidden', 'a member renames');
      await rejectsWith(change(g, user(), { op: 'rename', name: 'Mine' }), 'forbidden', 'a stranger renames');
      assert.equal((await w().group(g))?.name, 'New ✨');
    });

    check(
      'role: admins promote and demote; not_found for a non-member, conflict for the last admin',
      async () => {
        const [a, b, c] = [user(), user(), user()];
        const g = group();
        await create(g, a, [b, c]);
        const up = await change(g, a, { op: 'role', user: b, role: 'admin' });
        assert.deepEqual(up, { seq: 2, ts: (up as { ts: number }).ts, recipients: 3, members: 3 });
        assert.deepEqual(await systemMessage(g, up, a), { event: 'role_changed', user: b, role: 'admin' });
        assert.deepEqual(await change(g, a, { op: 'role', user: b, role: 'admin' }), { seq: null });
        await rejectsWith(
          change(g, c, { op: 'role', user: c, role: 'admin' }),
          'forbidden',
          'a member promotes',
        );
        await rejectsWith(
          change(g, a, { op: 'role', user: user(), role: 'admin' }),
          'not_found',
          'no such member',
        );
        const down = await change(g, b, { op: 'role', user: a, role: 'member' });
        assert.equal(down.seq, 3);
        assert.deepEqual(await roles(g), { [a]: 'member', [b]: 'admin', [c]: 'member' });
        await rejectsWith(
          change(g, b, { op: 'role', user: b, role: 'member' }),
          'conflict',
          'the last admin steps down',
        );
        await rejectsWith(change(g, a, { op: 'rename', name: 'X' }), 'forbidden', 'a demoted admin renames');
      },
    );

    check('join: an invite of a standing admin adds the actor; a stale one is not_found', async () => {
      const [a, b, c, d] = [user(), user(), user(), user()];
      const g = group();
      await create(g, a, [b]);
      const invite = { op: 'join', inviter: a, inviterJoinedSeq: 1 } as const;
      const out = await change(g, c, invite);
      assert.deepEqual(out, { seq: 2, ts: (out as { ts: number }).ts, recipients: 3, members: 3 });
      assert.deepEqual(await systemMessage(g, out, c), { event: 'members_added', users: [c] });
      assert.deepEqual((await w().group(g))?.members.get(c), { role: 'member', joinedSeq: 2 });
      assert.equal(await w().isMember(g, c), true);
      assert.deepEqual(await change(g, c, invite), { seq: null }, 'joining again changes nothing');
      await rejectsWith(
        change(g, d, { op: 'join', inviter: a, inviterJoinedSeq: 7 }),
        'not_found',
        'the inviter’s membership is not the one that made the invite',
      );
      await rejectsWith(
        change(g, d, { op: 'join', inviter: b, inviterJoinedSeq: 1 }),
        'not_found',
        'the inviter is not an admin',
      );
      await rejectsWith(change(group(), d, invite), 'not_found', 'the group does not exist');
      await change(g, a, { op: 'add', users: Array.from({ length: h().maxGroupSize - 3 }, user) });
      await rejectsWith(change(g, d, invite), 'too_large', 'the group is full');
      assert.equal(await w().isMember(g, d), false);
    });

    check('a change to a group that does not exist is forbidden', async () => {
      const a = user();
      const g = group();
      const ops: GroupOp[] = [
        { op: 'add', users: [user()] },
        { op: 'remove', users: [a] },
        { op: 'leave' },
        { op: 'rename', name: 'X' },
        { op: 'role', user: a, role: 'admin' },
      ];
      for (const op of ops) await rejectsWith(change(g, a, op), 'forbidden', `${op.op} on no group`);
      assert.equal(await w().group(g), null);
      assert.deepEqual(await stored(g), []);
    });

    check('messages and group changes share one sequence of seqs, without gaps', async () => {
      const [a, b, c] = [user(), user(), user()];
      const g = group();
      await create(g, a, [b]);
      const writes: { what: string; p: Promise<{ seq: number | null }> }[] = [];
      for (let i = 0; i < 10; i++) {
        writes.push({ what: `send ${i}`, p: w().submit(req(g, i % 2 ? a : b, `c${i}`)) });
        if (i === 3) writes.push({ what: 'add', p: change(g, a, { op: 'add', users: [c] }) });
        if (i === 5) writes.push({ what: 'rename', p: change(g, a, { op: 'rename', name: 'N' }) });
        if (i === 6) writes.push({ what: 'same name', p: change(g, a, { op: 'rename', name: 'N' }) });
        if (i === 7) writes.push({ what: 'send by the added', p: w().submit(req(g, c, 'from c')) });
      }
      const seqs = await Promise.all(writes.map((x) => x.p.then((o) => o.seq)));
      assert.equal(seqs[writes.findIndex((x) => x.what === 'same name')], null, 'the same name again');
      const taken = seqs.filter((s): s is number => s !== null);
      assert.equal(taken.length, writes.length - 1);
      assert.deepEqual(
        taken,
        taken.map((_, i) => i + 2),
        'consecutive seqs after the create, in submit order',
      );
      assert.deepEqual(
        (await stored(g)).map((m) => m.seq),
        [1, ...taken],
      );
      assertLastSeq(g, 1 + taken.length);
    });

    check(
      'group and isMember: null and false for no group; a direct conversation’s members are in its id',
      async () => {
        const [a, b] = [user(), user()];
        const g = group();
        assert.equal(await w().group(g), null);
        assert.equal(await w().isMember(g, a), false);
        const dm = direct(a, b);
        assert.equal(await w().group(dm), null, 'a direct conversation is not a group');
        assert.equal(await w().isMember(dm, a), true);
        assert.equal(await w().isMember(dm, b), true);
        assert.equal(await w().isMember(dm, user()), false);
        assert.equal(await w().isMember(direct(a, a), a), true, 'a note to self');
      },
    );

    check('lastSeq is undefined or the conversation’s last durable seq', async () => {
      const [a, b] = [user(), user()];
      const conv = direct(a, b);
      assertLastSeq(conv, 0);
      await w().submit(req(conv, a, 'c1'));
      assertLastSeq(conv, 1);
      await w().submit(req(conv, a, 'c1'));
      assertLastSeq(conv, 1);
      await rejectsWith(w().submit(req(conv, a, 'c2', { reply_to: 9 })), 'bad_request', 'a refused send');
      assertLastSeq(conv, 1);
      const g = group();
      await create(g, a, [b]);
      await change(g, a, { op: 'rename', name: 'R' });
      await change(g, a, { op: 'rename', name: 'R' });
      assertLastSeq(g, 2);
    });
  });
}

/** `p` rejects with a `ParleyError` (the class itself, not a look-alike) of `code`, with a message. */
async function rejectsWith(p: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ParleyError, `${what}: rejects with a ParleyError, got ${String(err)}`);
    assert.equal(err.code, code, `${what}: the error's code`);
    assert.ok(err.message.length > 0, `${what}: the error says why`);
    return true;
  });
}
