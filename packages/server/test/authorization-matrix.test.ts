// The authorization matrix: every op that names a conversation, run by every kind of actor, on a
// group and on a direct conversation, against an in-process server. The expected outcome of each
// cell is written below as data; each cell runs on a fresh conversation so that no cell's effect
// (a leave, a removal) changes another's.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Frame, startServer, type TestClient, type TestServer } from './helpers.js';

/** ok; forbidden with the stranger's message (`not a member of <conv>`); forbidden for non-admins; bad_request. */
const ok = 'ok';
const NM = 'not_member';
const AO = 'admins_only';
const BR = 'bad_request';
type Outcome = typeof ok | typeof NM | typeof AO | typeof BR;

const OPS = [
  'send',
  'history',
  'receipts',
  'receipt',
  'typing',
  'group_info',
  'add_members',
  'remove_members',
  'leave',
  'update_group',
  'set_role',
  'http_history',
] as const;
type Op = (typeof OPS)[number];

// Columns, in OPS order:
//   send, history, receipts, receipt, typing, group_info,
//   add_members, remove_members, leave, update_group, set_role, HTTP GET messages
const GROUP_MATRIX = {
  admin: [ok, ok, ok, ok, ok, ok, ok, ok, ok, ok, ok, ok],
  member: [ok, ok, ok, ok, ok, ok, AO, AO, ok, AO, AO, ok],
  // A member whom the admin blocked: blocking does not affect groups.
  blocked: [ok, ok, ok, ok, ok, ok, AO, AO, ok, AO, AO, ok],
  non_member: [NM, NM, NM, NM, NM, NM, NM, NM, NM, NM, NM, NM],
  removed: [NM, NM, NM, NM, NM, NM, NM, NM, NM, NM, NM, NM],
} satisfies Record<string, Outcome[]>;

// A direct conversation dm:<blocker>:<blocked>: group ops are refused by the validator.
const DM_MATRIX = {
  // The participant who blocked the other: their own sends are unaffected.
  member: [ok, ok, ok, ok, ok, BR, BR, BR, BR, BR, BR, ok],
  // The participant who was blocked: only sending is refused, as for a stranger.
  blocked: [NM, ok, ok, ok, ok, BR, BR, BR, BR, BR, BR, ok],
  non_member: [NM, NM, NM, NM, NM, BR, BR, BR, BR, BR, BR, NM],
} satisfies Record<string, Outcome[]>;

let s: TestServer;
let cmid = 0;

/** The frame of `op` on `conv`; `victim` is a plain member that admin ops target. */
function frameFor(op: Exclude<Op, 'http_history'>, conv: string, victim: string): Frame {
  switch (op) {
    case 'send':
      return { type: 'send', conv, cmid: `am-${++cmid}`, kind: 'text', body: 'x' };
    case 'history':
    case 'receipts':
    case 'group_info':
    case 'leave':
      return { type: op, conv };
    case 'receipt':
      return { type: 'receipt', conv, kind: 'read', seq: 1 };
    case 'typing':
      return { type: 'typing', conv, state: 'start' };
    case 'add_members':
      return { type: 'add_members', conv, users: ['am-newcomer'] };
    case 'remove_members':
      return { type: 'remove_members', conv, users: [victim] };
    case 'update_group':
      return { type: 'update_group', conv, name: 'Renamed' };
    case 'set_role':
      return { type: 'set_role', conv, user: victim, role: 'admin' };
  }
}

interface Result {
  ok: boolean;
  code?: string;
  message?: string;
}

async function run(op: Op, actor: TestClient, user: string, conv: string, victim: string): Promise<Result> {
  if (op === 'http_history') {
    const res = await fetch(`${s.httpUrl}/v1/conversations/${conv}/messages`, {
      headers: { authorization: `Bearer ${await s.token(user)}` },
    });
    const body = await res.json();
    if (res.status === 200) {
      assert.ok(Array.isArray(body.messages));
      return { ok: true };
    }
    const status = { bad_request: 400, forbidden: 403 }[body.error.code as string];
    assert.equal(res.status, status, JSON.stringify(body));
    return { ok: false, code: body.error.code, message: body.error.message };
  }
  const r = await actor.request(frameFor(op, conv, victim));
  return r.ok ? { ok: true } : { ok: false, code: r.error.code, message: r.error.message };
}

function check(cell: string, outcome: Outcome, got: Result, conv: string): void {
  switch (outcome) {
    case ok:
      assert.deepEqual(got, { ok: true }, cell);
      break;
    case NM:
      assert.deepEqual(got, { ok: false, code: 'forbidden', message: `not a member of ${conv}` }, cell);
      break;
    case AO:
      assert.deepEqual([got.ok, got.code], [false, 'forbidden'], cell);
      assert.notEqual(got.message, `not a member of ${conv}`, `${cell}: a member is told it is admins only`);
      break;
    case BR:
      assert.deepEqual([got.ok, got.code], [false, 'bad_request'], cell);
      break;
  }
}

before(async () => {
  s = await startServer({ receiptCoalesceMs: 20, groupAddsPerRecipientBurst: 10_000 });
});
after(() => s.stop());

describe('group: every op × admin, member, blocked member, non-member, removed member', () => {
  const names = {
    admin: 'am-admin',
    member: 'am-member',
    blocked: 'am-blocked',
    non_member: 'am-stranger',
    removed: 'am-removed',
  } as const;
  const victim = 'am-victim';
  let clients: Record<keyof typeof names, TestClient>;
  before(async () => {
    clients = Object.fromEntries(
      await Promise.all(Object.entries(names).map(async ([k, u]) => [k, await s.client(u)] as const)),
    ) as Record<keyof typeof names, TestClient>;
    assert.equal((await clients.admin.request({ type: 'block', user: names.blocked })).ok, true);
  });

  for (const [actor, row] of Object.entries(GROUP_MATRIX) as [keyof typeof names, Outcome[]][]) {
    for (const [i, op] of OPS.entries()) {
      test(`${actor} × ${op} → ${row[i]}`, async () => {
        // A fresh group: the admin, three members (one blocked by the admin), one removed member.
        const created = await clients.admin.request({
          type: 'create_group',
          name: 'Matrix',
          members: [names.member, names.blocked, victim, names.removed],
        });
        const conv: string = created.conv;
        const removal = await clients.admin.request({ type: 'remove_members', conv, users: [names.removed] });
        assert.equal(removal.seq, 2);
        const got = await run(op, clients[actor], names[actor], conv, victim);
        check(`group ${actor} × ${op}: ${JSON.stringify(got)}`, row[i]!, got, conv);
      });
    }
  }
});

describe('direct conversation: every op × participant, blocked participant, non-participant', () => {
  const names = { member: 'am-dma', blocked: 'am-dmb', non_member: 'am-dmx' } as const;
  const conv = 'dm:am-dma:am-dmb';
  let clients: Record<keyof typeof names, TestClient>;
  const sendMessages = new Map<string, string | undefined>();
  before(async () => {
    clients = {
      member: await s.client(names.member),
      blocked: await s.client(names.blocked),
      non_member: await s.client(names.non_member),
    };
    assert.equal((await clients.blocked.request(frameFor('send', conv, ''))).seq, 1);
    assert.equal((await clients.member.request({ type: 'block', user: names.blocked })).ok, true);
  });

  for (const [actor, row] of Object.entries(DM_MATRIX) as [keyof typeof names, Outcome[]][]) {
    for (const [i, op] of OPS.entries()) {
      test(`${actor} × ${op} → ${row[i]}`, async () => {
        const got = await run(op, clients[actor], names[actor], conv, names.member);
        check(`dm ${actor} × ${op}: ${JSON.stringify(got)}`, row[i]!, got, conv);
        if (op === 'send') sendMessages.set(actor, got.message);
      });
    }
  }

  test('the blocked participant cannot tell a block from not being a participant', () => {
    assert.equal(sendMessages.size, 3);
    assert.equal(sendMessages.get('blocked'), `not a member of ${conv}`);
    assert.equal(sendMessages.get('blocked'), sendMessages.get('non_member'));
  });
});
