// Groups against an in-process server: creation, every change op with its system message and
// reply, admin rules, promotion, the size limit, and what joined and removed members see.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Frame, startServer, syncAll, type TestClient, type TestServer } from './helpers.js';

const MAX_GROUP = 5;
let s: TestServer;
before(async () => {
  s = await startServer({ maxGroupSize: MAX_GROUP, receiptCoalesceMs: 20 });
});
after(() => s.stop());

const ULID_GROUP = /^g:[0-9A-HJKMNP-TV-Z]{26}$/;

let cmids = 0;
const send = (c: TestClient, conv: string, body: string) =>
  c.request({ type: 'send', conv, cmid: `c${++cmids}`, kind: 'text', body });

async function create(c: TestClient, name: string, members: string[]): Promise<string> {
  const r = await c.request({ type: 'create_group', name, members });
  assert.equal(r.ok, true, JSON.stringify(r));
  return r.conv;
}

/** Waits for the `message` event of `conv` at `seq` on a client. */
const seqEvent = (c: TestClient, conv: string, seq: number) =>
  c.nextEvent((f) => f.type === 'message' && f.conv === conv && f.seq === seq);

/** The `message` events of `conv` in a synced inbox. */
const inboxOf = (events: Frame[], conv: string) =>
  events.filter((e) => e.type === 'message' && e.conv === conv);

/** A reply with exactly these result fields (besides type, id and ok). */
function assertResult(r: Frame, fields: string[]) {
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.deepEqual(Object.keys(r).sort(), ['id', 'ok', 'type', ...fields].sort(), JSON.stringify(r));
}

async function info(c: TestClient, conv: string): Promise<Frame> {
  const r = await c.request({ type: 'group_info', conv });
  assert.equal(r.ok, true, JSON.stringify(r));
  return r;
}

const members = (g: Frame) => g.members.map((m: Frame) => [m.user, m.role, m.joined_seq]);

describe('create_group', () => {
  test('the creator is admin; the "created" system message is seq 1 for every member', async () => {
    const a1 = await s.client('cr-alice', 'laptop');
    const a2 = await s.client('cr-alice', 'phone');
    const bob = await s.client('cr-bob');
    const carol = await s.client('cr-carol');
    const r = await a1.request({ type: 'create_group', name: 'Climbing', members: ['cr-bob', 'cr-carol'] });
    assertResult(r, ['conv']);
    assert.match(r.conv, ULID_GROUP);
    const conv: string = r.conv;
    const expected = {
      type: 'message',
      inbox: 1,
      conv,
      seq: 1,
      from: 'cr-alice',
      from_device: 'laptop',
      cmid: 'system:1',
      kind: 'system',
    };
    for (const c of [a1, a2, bob, carol]) {
      const m = await seqEvent(c, conv, 1);
      const { ts, body, ...rest } = m;
      assert.deepEqual(rest, expected);
      assert.equal(typeof ts, 'number');
      assert.deepEqual(JSON.parse(body), {
        event: 'created',
        name: 'Climbing',
        members: ['cr-alice', 'cr-bob', 'cr-carol'],
      });
    }
    const g = await info(bob, conv);
    assert.equal(g.conv, conv);
    assert.equal(g.name, 'Climbing');
    assert.equal(typeof g.created_ts, 'number');
    assert.deepEqual(members(g), [
      ['cr-alice', 'admin', 1],
      ['cr-bob', 'member', 1],
      ['cr-carol', 'member', 1],
    ]);
    const h = await carol.request({ type: 'history', conv });
    assert.deepEqual(
      h.messages.map((m: Frame) => [m.seq, m.kind, m.from]),
      [[1, 'system', 'cr-alice']],
    );
    assert.equal(h.more, false);
    // Two groups, two ids.
    assert.notEqual(await create(a1, 'Climbing', ['cr-bob']), conv);
  });

  test('the creator listed among the members is counted once, and listed first', async () => {
    const a = await s.client('cr2-a');
    const conv = await create(a, 'Self', ['cr2-b', 'cr2-a']);
    assert.deepEqual(members(await info(a, conv)), [
      ['cr2-a', 'admin', 1],
      ['cr2-b', 'member', 1],
    ]);
    const m = await seqEvent(a, conv, 1);
    assert.deepEqual(JSON.parse(m.body).members, ['cr2-a', 'cr2-b']);
  });

  test('a user listed twice in members is bad_request (docs/protocol.md, Groups)', async () => {
    const a = await s.client('cr3-a');
    const r = await a.request({ type: 'create_group', name: 'Twice', members: ['cr3-b', 'cr3-b'] });
    assert.equal(r.error?.code, 'bad_request');
  });
});

describe('group changes', () => {
  test('add, remove, leave, rename, set_role: system messages, replies, and who receives each', async () => {
    const a = await s.client('hp-a', 'dev-a');
    const b = await s.client('hp-b');
    const c = await s.client('hp-c');
    const d = await s.client('hp-d');
    const e = await s.client('hp-e');
    const conv = await create(a, 'Start', ['hp-b', 'hp-c']);

    // seq: the system message's seq, or null when nothing changes; error: the expected error code.
    type Step = { actor: TestClient; frame: Frame; seq: number | null; body?: object; from?: string };
    const steps: (Step | { actor: TestClient; frame: Frame; error: string })[] = [
      {
        actor: a,
        frame: { type: 'add_members', users: ['hp-d'] },
        seq: 2,
        body: { event: 'members_added', users: ['hp-d'] },
      },
      // Re-adding existing members changes nothing.
      { actor: a, frame: { type: 'add_members', users: ['hp-d', 'hp-b'] }, seq: null },
      // A mixed list adds only the new one.
      {
        actor: a,
        frame: { type: 'add_members', users: ['hp-b', 'hp-e'] },
        seq: 3,
        body: { event: 'members_added', users: ['hp-e'] },
      },
      {
        actor: a,
        frame: { type: 'update_group', name: 'Renamed' },
        seq: 4,
        body: { event: 'renamed', name: 'Renamed' },
      },
      { actor: a, frame: { type: 'update_group', name: 'Renamed' }, seq: null },
      {
        actor: a,
        frame: { type: 'set_role', user: 'hp-b', role: 'admin' },
        seq: 5,
        body: { event: 'role_changed', user: 'hp-b', role: 'admin' },
      },
      { actor: a, frame: { type: 'set_role', user: 'hp-b', role: 'admin' }, seq: null },
      // The new admin demotes the creator.
      {
        actor: b,
        frame: { type: 'set_role', user: 'hp-a', role: 'member' },
        seq: 6,
        body: { event: 'role_changed', user: 'hp-a', role: 'member' },
        from: 'hp-b',
      },
      // hp-a is no admin now: only admins set roles.
      { actor: a, frame: { type: 'set_role', user: 'hp-a', role: 'admin' }, error: 'forbidden' },
      {
        actor: b,
        frame: { type: 'set_role', user: 'hp-a', role: 'admin' },
        seq: 7,
        body: { event: 'role_changed', user: 'hp-a', role: 'admin' },
        from: 'hp-b',
      },
      {
        actor: a,
        frame: { type: 'remove_members', users: ['hp-e'] },
        seq: 8,
        body: { event: 'members_removed', users: ['hp-e'] },
      },
      // Removing non-members (one removed, one never a member) changes nothing.
      { actor: a, frame: { type: 'remove_members', users: ['hp-e', 'hp-nobody'] }, seq: null },
      {
        actor: c,
        frame: { type: 'leave' },
        seq: 9,
        body: { event: 'member_left', user: 'hp-c' },
        from: 'hp-c',
      },
      // A plain member may remove themself with remove_members.
      {
        actor: d,
        frame: { type: 'remove_members', users: ['hp-d'] },
        seq: 10,
        body: { event: 'members_removed', users: ['hp-d'] },
        from: 'hp-d',
      },
    ];
    for (const [i, step] of steps.entries()) {
      const r = await step.actor.request({ ...step.frame, conv });
      const what = `step ${i}: ${JSON.stringify(step.frame)} → ${JSON.stringify(r)}`;
      if ('error' in step) {
        assert.equal(r.ok, false, what);
        assert.equal(r.error.code, step.error, what);
        continue;
      }
      if (step.seq === null) {
        assertResult(r, ['conv']);
        assert.equal(r.conv, conv, what);
        continue;
      }
      assertResult(r, ['conv', 'seq', 'ts']);
      assert.equal(r.conv, conv, what);
      assert.equal(r.seq, step.seq, what);
      assert.equal(typeof r.ts, 'number', what);
    }

    // The log: every change is a system message from its actor, in one sequence.
    await seqEvent(a, conv, 10);
    const h = await a.request({ type: 'history', conv, after: 0, limit: 200 });
    const changes = steps.filter((st): st is Step & { seq: number } => 'seq' in st && st.seq !== null);
    assert.deepEqual(
      h.messages.map((m: Frame) => [m.seq, m.kind, m.from, m.cmid, JSON.parse(m.body)]),
      [
        [
          1,
          'system',
          'hp-a',
          'system:1',
          { event: 'created', name: 'Start', members: ['hp-a', 'hp-b', 'hp-c'] },
        ],
        ...changes.map((st) => [st.seq, 'system', st.from ?? 'hp-a', `system:${st.seq}`, st.body]),
      ],
    );
    assert.equal(h.messages[1].from_device, 'dev-a');

    // Each change reached the members after it and anyone it removed; nobody else.
    const expectedSeqs: [TestClient, number[]][] = [
      [a, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
      [b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
      [c, [1, 2, 3, 4, 5, 6, 7, 8, 9]],
      [d, [2, 3, 4, 5, 6, 7, 8, 9, 10]],
      [e, [3, 4, 5, 6, 7, 8]],
    ];
    for (const [client, seqs] of expectedSeqs) {
      const got = inboxOf(await syncAll(client), conv);
      assert.deepEqual(
        got.map((m) => m.seq),
        seqs,
      );
      assert.deepEqual(
        got.map((m) => m.inbox),
        seqs.map((_, i) => i + 1),
      );
    }
    const g = await info(b, conv);
    assert.equal(g.name, 'Renamed');
    assert.deepEqual(members(g), [
      ['hp-a', 'admin', 1],
      ['hp-b', 'admin', 1],
    ]);
  });

  test('only admins add, remove, rename and set roles: a member gets forbidden and nothing changes', async () => {
    const a = await s.client('ad-a');
    const m = await s.client('ad-m');
    await s.client('ad-x');
    const conv = await create(a, 'Admins only', ['ad-m', 'ad-x']);
    for (const frame of [
      { type: 'add_members', users: ['ad-new'] },
      { type: 'add_members', users: ['ad-x'] },
      { type: 'remove_members', users: ['ad-x'] },
      { type: 'remove_members', users: ['ad-a'] },
      { type: 'update_group', name: 'Mine now' },
      { type: 'set_role', user: 'ad-m', role: 'admin' },
      { type: 'set_role', user: 'ad-x', role: 'admin' },
      { type: 'set_role', user: 'ad-a', role: 'member' },
    ]) {
      const r = await m.request({ ...frame, conv });
      assert.equal(r.ok, false, JSON.stringify(frame));
      assert.equal(r.error.code, 'forbidden', JSON.stringify(frame));
    }
    const g = await info(a, conv);
    assert.equal(g.name, 'Admins only');
    assert.deepEqual(members(g), [
      ['ad-a', 'admin', 1],
      ['ad-m', 'member', 1],
      ['ad-x', 'member', 1],
    ]);
    const h = await a.request({ type: 'history', conv });
    assert.deepEqual(
      h.messages.map((x: Frame) => x.seq),
      [1],
    );
  });

  test('a member removing a non-member is forbidden, as adding an existing member is (admin ops check rights first)', async () => {
    const a = await s.client('ad2-a');
    const m = await s.client('ad2-m');
    const conv = await create(a, 'Admins only', ['ad2-m', 'ad2-x']);
    const add = await m.request({ type: 'add_members', conv, users: ['ad2-x'] });
    assert.equal(add.error?.code, 'forbidden');
    const remove = await m.request({ type: 'remove_members', conv, users: ['ad2-nobody'] });
    assert.equal(remove.error?.code, 'forbidden', JSON.stringify(remove));
  });

  test('set_role on a non-member is not_found; demoting the last admin is conflict', async () => {
    const a = await s.client('sr-a');
    const conv = await create(a, 'Roles', ['sr-b']);
    const stranger = await a.request({ type: 'set_role', conv, user: 'sr-zz', role: 'admin' });
    assert.equal(stranger.error?.code, 'not_found');
    const last = await a.request({ type: 'set_role', conv, user: 'sr-a', role: 'member' });
    assert.equal(last.error?.code, 'conflict');
    // With a second admin, the first may step down.
    assert.equal((await a.request({ type: 'set_role', conv, user: 'sr-b', role: 'admin' })).seq, 2);
    assert.equal((await a.request({ type: 'set_role', conv, user: 'sr-a', role: 'member' })).seq, 3);
    // A removed member is a non-member too.
    const b = await s.client('sr-b');
    assert.equal((await b.request({ type: 'remove_members', conv, users: ['sr-a'] })).seq, 4);
    const removed = await b.request({ type: 'set_role', conv, user: 'sr-a', role: 'admin' });
    assert.equal(removed.error?.code, 'not_found');
    const sole = await b.request({ type: 'set_role', conv, user: 'sr-b', role: 'member' });
    assert.equal(sole.error?.code, 'conflict');
    assert.deepEqual(members(await info(b, conv)), [['sr-b', 'admin', 1]]);
  });

  test('concurrent role changes take effect in seq order: two admins demoting each other, or themselves', async () => {
    const a = await s.client('cc-a');
    const b = await s.client('cc-b');
    const conv = await create(a, 'Race', ['cc-b']);
    assert.equal((await a.request({ type: 'set_role', conv, user: 'cc-b', role: 'admin' })).seq, 2);
    // Each demotes the other at the same time: the first one sequenced wins, the second is no admin.
    const [ra, rb] = await Promise.all([
      a.request({ type: 'set_role', conv, user: 'cc-b', role: 'member' }),
      b.request({ type: 'set_role', conv, user: 'cc-a', role: 'member' }),
    ]);
    const outcomes = [ra, rb].map((r) => (r.ok ? r.seq : r.error.code)).sort();
    assert.deepEqual(outcomes, [3, 'forbidden']);
    const admins = (await info(a, conv)).members.filter((m: Frame) => m.role === 'admin');
    assert.equal(admins.length, 1);
    // Two admins stepping down at the same time: one succeeds, the last admin gets conflict.
    const winner = admins[0].user === 'cc-a' ? a : b;
    const other = winner === a ? 'cc-b' : 'cc-a';
    assert.equal((await winner.request({ type: 'set_role', conv, user: other, role: 'admin' })).seq, 4);
    const [sa, sb] = await Promise.all([
      a.request({ type: 'set_role', conv, user: 'cc-a', role: 'member' }),
      b.request({ type: 'set_role', conv, user: 'cc-b', role: 'member' }),
    ]);
    assert.deepEqual([sa, sb].map((r) => (r.ok ? r.seq : r.error.code)).sort(), [5, 'conflict']);
    assert.equal((await info(b, conv)).members.filter((m: Frame) => m.role === 'admin').length, 1);
  });

  test('the last admin leaving promotes the longest-standing member (lowest joined_seq, then user id)', async () => {
    const a = await s.client('pr-a');
    const b = await s.client('pr-b');
    const z = await s.client('pr-z');
    const conv = await create(a, 'Promotions', ['pr-z', 'pr-b']);
    // pr-aa sorts first by id but joined later.
    assert.equal((await a.request({ type: 'add_members', conv, users: ['pr-aa'] })).seq, 2);
    const left = await a.request({ type: 'leave', conv });
    assert.equal(left.seq, 3);
    const m3 = await seqEvent(z, conv, 3);
    assert.deepEqual(JSON.parse(m3.body), { event: 'member_left', user: 'pr-a', promoted: 'pr-b' });
    assert.deepEqual(members(await info(b, conv)), [
      ['pr-b', 'admin', 1],
      ['pr-z', 'member', 1],
      ['pr-aa', 'member', 2],
    ]);
    // The promoted admin removes themself: the next longest-standing member takes over.
    assert.equal((await b.request({ type: 'remove_members', conv, users: ['pr-b'] })).seq, 4);
    const m4 = await seqEvent(z, conv, 4);
    assert.deepEqual(JSON.parse(m4.body), { event: 'members_removed', users: ['pr-b'], promoted: 'pr-z' });
    assert.deepEqual(members(await info(z, conv)), [
      ['pr-z', 'admin', 1],
      ['pr-aa', 'member', 2],
    ]);
    // An admin removing someone while staying admin promotes nobody.
    assert.equal((await z.request({ type: 'remove_members', conv, users: ['pr-aa'] })).seq, 5);
    const m5 = await seqEvent(z, conv, 5);
    assert.deepEqual(JSON.parse(m5.body), { event: 'members_removed', users: ['pr-aa'] });
  });

  test(`max_group_size (${MAX_GROUP}): creating or growing beyond it is too_large, and nothing is stored`, async () => {
    const a = await s.client('mx-a');
    const others = (n: number) => Array.from({ length: n }, (_, i) => `mx-${i}`);
    const tooMany = await a.request({ type: 'create_group', name: 'Big', members: others(MAX_GROUP) });
    assert.equal(tooMany.error?.code, 'too_large');
    const conv = await create(a, 'Full', others(MAX_GROUP - 1));
    assert.equal((await info(a, conv)).members.length, MAX_GROUP);
    const add = await a.request({ type: 'add_members', conv, users: ['mx-new'] });
    assert.equal(add.error?.code, 'too_large');
    // Adding existing members to a full group changes nothing (no error).
    assertResult(await a.request({ type: 'add_members', conv, users: ['mx-0'] }), ['conv']);
    // After one leaves there is room for exactly one.
    const m0 = await s.client('mx-0');
    assert.equal((await m0.request({ type: 'leave', conv })).seq, 2);
    const two = await a.request({ type: 'add_members', conv, users: ['mx-new', 'mx-new2'] });
    assert.equal(two.error?.code, 'too_large');
    assert.equal((await a.request({ type: 'add_members', conv, users: ['mx-new'] })).seq, 3);
    const h = await a.request({ type: 'history', conv });
    assert.deepEqual(
      h.messages.map((m: Frame) => JSON.parse(m.body).event),
      ['created', 'member_left', 'members_added'],
    );
  });
});

describe('joined and removed members', () => {
  test('a new member sees from joined_seq; a removed one gets the removal and nothing after; re-added gets a new joined_seq', async () => {
    const a = await s.client('js-a');
    const c = await s.client('js-c');
    const conv = await create(a, 'Joiners', ['js-b']);
    for (let i = 0; i < 3; i++) await send(a, conv, `before-${i}`); // seq 2..4
    assert.equal((await a.request({ type: 'add_members', conv, users: ['js-c'] })).seq, 5);
    await send(a, conv, 'after-1'); // 6
    await send(a, conv, 'after-2'); // 7

    assert.deepEqual(members(await info(c, conv)).at(-1), ['js-c', 'member', 5]);
    const hist = async (q: Frame) => {
      const r = await c.request({ type: 'history', conv, ...q });
      assert.equal(r.ok, true, JSON.stringify(r));
      return r.messages.map((m: Frame) => m.seq);
    };
    assert.deepEqual(await hist({}), [5, 6, 7]);
    assert.deepEqual(await hist({ after: 0 }), [5, 6, 7]);
    assert.deepEqual(await hist({ before: 5 }), []);
    assert.deepEqual(await hist({ before: 6 }), [5]);
    assert.deepEqual(await hist({ after: 2, limit: 1 }), [5]);
    const auth = { authorization: `Bearer ${await s.token('js-c')}` };
    const http = await (
      await fetch(`${s.httpUrl}/v1/conversations/${conv}/messages?after=0`, { headers: auth })
    ).json();
    assert.deepEqual(
      http.messages.map((m: Frame) => m.seq),
      [5, 6, 7],
    );
    await seqEvent(a, conv, 7);
    assert.deepEqual(
      inboxOf(await syncAll(c), conv).map((m) => [m.inbox, m.seq]),
      [
        [1, 5],
        [2, 6],
        [3, 7],
      ],
    );
    for (const seq of [5, 6, 7]) await seqEvent(c, conv, seq);

    // Removal at seq 8; messages 9 and 10 must not reach js-c.
    assert.equal((await a.request({ type: 'remove_members', conv, users: ['js-c'] })).seq, 8);
    const removal = await seqEvent(c, conv, 8);
    assert.deepEqual(JSON.parse(removal.body), { event: 'members_removed', users: ['js-c'] });
    await send(a, conv, 'gone-1'); // 9
    await send(a, conv, 'gone-2'); // 10
    await seqEvent(a, conv, 10);
    assert.deepEqual(
      inboxOf(await syncAll(c), conv).map((m) => m.seq),
      [5, 6, 7, 8],
    );

    // Typing in the group no longer reaches them either (the requests below are the barrier).
    assert.equal((await a.request({ type: 'typing', conv, state: 'start' })).ok, true);
    // Every op naming the group is forbidden, with the stranger's message.
    const notMember = `not a member of ${conv}`;
    for (const frame of [
      { type: 'send', conv, cmid: 'late', kind: 'text', body: 'let me in' },
      { type: 'history', conv },
      { type: 'receipts', conv },
      { type: 'receipt', conv, kind: 'read', seq: 8 },
      { type: 'typing', conv, state: 'start' },
      { type: 'group_info', conv },
      { type: 'add_members', conv, users: ['js-c'] },
      { type: 'remove_members', conv, users: ['js-c'] },
      { type: 'leave', conv },
      { type: 'update_group', conv, name: 'x' },
      { type: 'set_role', conv, user: 'js-c', role: 'admin' },
    ]) {
      const r = await c.request(frame);
      assert.deepEqual([r.ok, r.error?.code, r.error?.message], [false, 'forbidden', notMember], frame.type);
    }
    const res = await fetch(`${s.httpUrl}/v1/conversations/${conv}/messages`, { headers: auth });
    assert.equal(res.status, 403);
    assert.deepEqual((await res.json()).error, { code: 'forbidden', message: notMember });
    // Nothing arrived live after the removal either.
    assert.equal(c.events.filter((f) => f.conv === conv).length, 0, JSON.stringify(c.events));

    // Re-added at seq 11: a new joined_seq; history starts there; the old events stay in the inbox.
    assert.equal((await a.request({ type: 'add_members', conv, users: ['js-c'] })).seq, 11);
    await send(a, conv, 'welcome back'); // 12
    await seqEvent(a, conv, 12);
    assert.deepEqual(members(await info(c, conv)).at(-1), ['js-c', 'member', 11]);
    assert.deepEqual(await hist({}), [11, 12]);
    assert.deepEqual(await hist({ after: 0 }), [11, 12]);
    assert.deepEqual(await hist({ before: 11 }), []);
    assert.deepEqual(
      inboxOf(await syncAll(c), conv).map((m) => [m.inbox, m.seq]),
      [
        [1, 5],
        [2, 6],
        [3, 7],
        [4, 8],
        [5, 11],
        [6, 12],
      ],
    );
    // Their chat list counts unread from the new joined_seq (11): 11 and 12.
    const listed = (await c.request({ type: 'conversations' })).conversations.find(
      (x: Frame) => x.conv === conv,
    );
    assert.deepEqual([listed.last_seq, listed.read, listed.unread, listed.members], [12, 0, 2, 3]);
    // Live: the events of 11 and 12, once each (5..8 were taken above).
    for (const seq of [11, 12]) await seqEvent(c, conv, seq);
    await a.request({ type: 'ping' });
    assert.equal(c.events.filter((f) => f.conv === conv).length, 0, JSON.stringify(c.events));
  });

  test('a group message is stored once and reaches each member’s inbox exactly once, with contiguous numbers', async () => {
    const users = ['once-a', 'once-b', 'once-c', 'once-d'];
    const a1 = await s.client('once-a', 'one');
    const a2 = await s.client('once-a', 'two');
    const others = await Promise.all(users.slice(1).map((u) => s.client(u)));
    // Different amounts of earlier traffic, so each user's inbox numbers differ.
    for (const [i, c] of others.entries()) {
      for (let k = 0; k <= i; k++) await send(c, `dm:${users[i + 1]}:${users[i + 1]}`, `note ${k}`);
    }
    const conv = await create(a1, 'Once', users.slice(1));
    const r = await a1.request({ type: 'send', conv, cmid: 'the-one', kind: 'text', body: 'hello all' });
    assert.equal(r.seq, 2);
    const devices = [a1, a2, ...others];
    const live = await Promise.all(devices.map((c) => seqEvent(c, conv, 2)));
    assert.equal(live[0]!.inbox, live[1]!.inbox, 'both devices of a user get the same inbox number');
    const h = await a2.request({ type: 'history', conv });
    assert.deepEqual(
      h.messages.filter((m: Frame) => m.cmid === 'the-one').map((m: Frame) => m.seq),
      [2],
    );
    for (const [i, c] of [a1, ...others].entries()) {
      const events = await syncAll(c);
      assert.deepEqual(
        events.map((e) => e.inbox),
        events.map((_, k) => k + 1),
        `${users[i]}: contiguous inbox numbers`,
      );
      const copies = events.filter((e) => e.type === 'message' && e.cmid === 'the-one');
      assert.equal(copies.length, 1, users[i]);
      assert.equal(copies[0]!.inbox, i === 0 ? live[0]!.inbox : live[i + 1]!.inbox);
      // Inbox numbers are per user: earlier notes-to-self come first.
      assert.equal(copies[0]!.inbox, i === 0 ? 2 : i + 2);
    }
    // No device got a second copy live.
    for (const c of devices) assert.equal(c.events.filter((f) => f.cmid === 'the-one').length, 0);
  });
});

describe('conversations for group members', () => {
  test('name, active member count, unread from joined_seq; a removed member’s entry is frozen at the removal', async () => {
    const a = await s.client('cv-a');
    const b = await s.client('cv-b');
    const d = await s.client('cv-d');
    const c = await s.client('cv-c');
    const conv = await create(a, 'Book club', ['cv-b', 'cv-c']);
    for (let i = 0; i < 3; i++) await send(a, conv, `m${i}`); // 2..4
    assert.equal((await a.request({ type: 'add_members', conv, users: ['cv-d'] })).seq, 5);
    await send(a, conv, 'm3'); // 6
    const removal = await a.request({ type: 'remove_members', conv, users: ['cv-c'] }); // 7
    assert.equal(removal.seq, 7);
    const last = await send(a, conv, 'm4'); // 8
    await seqEvent(a, conv, 8);
    const entry = async (cl: TestClient) => {
      const r = await cl.request({ type: 'conversations' });
      assert.equal(r.ok, true, JSON.stringify(r));
      const found = r.conversations.find((x: Frame) => x.conv === conv);
      assert.ok(found, 'group listed');
      return found;
    };
    assert.deepEqual(await entry(b), {
      conv,
      kind: 'group',
      name: 'Book club',
      members: 3,
      last_seq: 8,
      last_ts: last.ts,
      read: 0,
      delivered: 0,
      unread: 8,
    });
    // Joined at 5: unread counts 5..8.
    const dEntry = await entry(d);
    assert.deepEqual([dEntry.members, dEntry.last_seq, dEntry.unread], [3, 8, 4]);
    // Reading moves unread.
    assert.equal((await b.request({ type: 'receipt', conv, kind: 'read', seq: 6 })).ok, true);
    const bEntry = await entry(b);
    assert.deepEqual([bEntry.read, bEntry.delivered, bEntry.unread], [6, 6, 2]);
    // The removed member's entry stops at the removal (seq 7): 7 unread, last activity the removal.
    const cEntry = await entry(c);
    assert.deepEqual(
      [cEntry.last_seq, cEntry.unread, cEntry.last_ts, cEntry.name],
      [7, 7, removal.ts, 'Book club'],
    );
  });

  test('a removed member’s entry does not follow later renames or membership changes', async () => {
    const a = await s.client('fz-a');
    const c = await s.client('fz-c');
    const conv = await create(a, 'Before', ['fz-b', 'fz-c']);
    const removal = await a.request({ type: 'remove_members', conv, users: ['fz-c'] }); // 2
    assert.equal(removal.seq, 2);
    assert.equal((await a.request({ type: 'update_group', conv, name: 'After' })).seq, 3);
    assert.equal((await a.request({ type: 'add_members', conv, users: ['fz-d', 'fz-e'] })).seq, 4);
    await seqEvent(a, conv, 4);
    const e = (await c.request({ type: 'conversations' })).conversations.find((x: Frame) => x.conv === conv);
    // Frozen at the removal: the name and member count as they were then (fz-a, fz-b).
    assert.deepEqual(
      [e.name, e.members, e.last_seq, e.last_ts],
      ['Before', 2, 2, removal.ts],
      JSON.stringify(e),
    );
  });

  test('the sender’s own messages never count as unread', async () => {
    const a = await s.client('own-a');
    const conv = await create(a, 'Mine', ['own-b']);
    await send(a, conv, 'x'); // 2
    await send(a, conv, 'y'); // 3
    // Sending implies reading (applied just after the reply): poll briefly.
    let e: Frame | undefined;
    for (let i = 0; i < 50; i++) {
      e = (await a.request({ type: 'conversations' })).conversations.find((x: Frame) => x.conv === conv);
      if (e?.read === 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual([e?.last_seq, e?.read, e?.unread], [3, 3, 0]);
  });

  test('a group change does not leave its actor with unread system messages', async () => {
    const a = await s.client('act-a');
    const conv = await create(a, 'Made by me', ['act-b']);
    assert.equal((await a.request({ type: 'update_group', conv, name: 'Renamed by me' })).seq, 2);
    await seqEvent(a, conv, 2);
    await new Promise((r) => setTimeout(r, 100)); // past the receipt coalescing window (20 ms)
    const e = (await a.request({ type: 'conversations' })).conversations.find((x: Frame) => x.conv === conv);
    assert.deepEqual([e.last_seq, e.unread], [2, 0]);
  });
});

describe('a configured max_group_size above the default', () => {
  let big: TestServer;
  before(async () => {
    big = await startServer({ maxGroupSize: 600 });
  });
  after(() => big.stop());

  test('create_group and add_members accept lists up to the configured size (600), not the default 512', async () => {
    const a = await big.client('bg-a');
    const users = Array.from({ length: 599 }, (_, i) => `bg-${i}`);
    const created = await a.request({ type: 'create_group', name: 'Big', members: users.slice(0, 520) });
    assert.equal(created.ok, true, JSON.stringify(created).slice(0, 300));
    const added = await a.request({ type: 'add_members', conv: created.conv, users: users.slice(520) });
    assert.equal(added.seq, 2);
    assert.equal((await info(a, created.conv)).members.length, 600);
    const over = await a.request({ type: 'add_members', conv: created.conv, users: ['bg-one-more'] });
    assert.equal(over.error?.code, 'too_large');
  });
});
