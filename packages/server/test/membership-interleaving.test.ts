// Membership changes interleaved with pipelined sends from several members: afterwards, each user's
// inbox must hold exactly the group's messages sequenced while they were a member (from their
// joined seq to their removal's seq), once each, with contiguous inbox numbers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  type Frame,
  historyAll,
  recordEvents,
  sleep,
  startServer,
  syncAll,
  type TestClient,
  type TestServer,
} from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer({ receiptCoalesceMs: 20 });
});
after(() => s.stop());

const ADMIN = 'mi-admin';
const STEADY = ['mi-s1', 'mi-s2', 'mi-s3'];
/** Transient members; t1 and t2 also send (and some of their sends land while they are out). */
const TRANSIENT = ['mi-t1', 'mi-t2', 'mi-t3', 'mi-t4', 'mi-t5', 'mi-t6'];
const SENDERS = [...STEADY, 'mi-t1', 'mi-t2'];
/** Messages each sender pipelines per round (one round per change). */
const BURST = 5;

/** The admin's changes, in order: [op, users]. */
const SCRIPT: ['add' | 'remove', string[]][] = [
  ['add', ['mi-t3']],
  ['remove', ['mi-t1']],
  ['add', ['mi-t4', 'mi-t5']],
  ['remove', ['mi-t2']],
  ['remove', ['mi-t3']],
  ['add', ['mi-t1']],
  ['remove', ['mi-t4']],
  ['add', ['mi-t6']],
  ['add', ['mi-t2', 'mi-t3']],
  ['remove', ['mi-t5']],
  ['remove', ['mi-t6', 'mi-t1']],
  ['add', ['mi-t4']],
  ['remove', ['mi-t2']],
  ['add', ['mi-t5', 'mi-t1']],
  ['remove', ['mi-t3']],
  ['add', ['mi-t6']],
];

/** Each user's membership intervals [joined, removed] (removed: Infinity while still a member), from the log. */
function membership(log: Frame[]): Map<string, [number, number][]> {
  const spans = new Map<string, [number, number][]>();
  const join = (u: string, seq: number) => {
    const list = spans.get(u) ?? [];
    const last = list.at(-1);
    assert.ok(!last || last[1] !== Infinity, `${u} joined twice without leaving (seq ${seq})`);
    list.push([seq, Infinity]);
    spans.set(u, list);
  };
  const leave = (u: string, seq: number) => {
    const last = spans.get(u)?.at(-1);
    assert.ok(last && last[1] === Infinity, `${u} removed while not a member (seq ${seq})`);
    last[1] = seq;
  };
  for (const m of log) {
    if (m.kind !== 'system') continue;
    const b = JSON.parse(m.body);
    if (b.event === 'created' || b.event === 'members_added') {
      for (const u of b.users ?? b.members) join(u, m.seq);
    } else if (b.event === 'members_removed') {
      for (const u of b.users) leave(u, m.seq);
    } else if (b.event === 'member_left') {
      leave(b.user, m.seq);
    }
  }
  return spans;
}

const within = (spans: [number, number][] | undefined, seq: number) =>
  (spans ?? []).some(([from, to]) => from <= seq && seq <= to);

test('each member’s inbox holds exactly the messages sequenced during their membership', async () => {
  const users = [ADMIN, ...STEADY, ...TRANSIENT];
  const clients = new Map<string, TestClient>();
  for (const u of users) clients.set(u, await s.client(u));
  const live = new Map(users.map((u) => [u, recordEvents(clients.get(u)!)] as const));
  const admin = clients.get(ADMIN)!;
  const created = await admin.request({
    type: 'create_group',
    name: 'Interleaved',
    members: [...STEADY, 'mi-t1', 'mi-t2'],
  });
  const conv: string = created.conv;

  // Rounds: every sender pipelines a burst (not waiting for replies) and the admin pipelines one
  // change; nothing is awaited until the end, so changes land between messages.
  const sendReplies: Promise<{ user: string; reply: Frame }>[] = [];
  const changeReplies: Promise<Frame>[] = [];
  for (const [round, [op, list]] of SCRIPT.entries()) {
    for (const u of SENDERS) {
      const c = clients.get(u)!;
      for (let i = 0; i < BURST; i++) {
        const n = round * BURST + i;
        const frame = { type: 'send', conv, cmid: `${u}-${n}`, kind: 'text', body: `${u} #${n}` };
        sendReplies.push(c.request(frame, 20_000).then((reply) => ({ user: u, reply })));
      }
    }
    changeReplies.push(
      admin.request({ type: op === 'add' ? 'add_members' : 'remove_members', conv, users: list }, 20_000),
    );
    await sleep(round % 3);
  }
  for (const r of await Promise.all(changeReplies)) assert.equal(typeof r.seq, 'number', JSON.stringify(r));
  const replies = await Promise.all(sendReplies);
  const end = await admin.request({ type: 'send', conv, cmid: 'end', kind: 'text', body: 'end' });
  // The admin is a member throughout: once it has the last message live, every fan-out is stored.
  await admin.nextEvent((f) => f.type === 'message' && f.conv === conv && f.seq === end.seq, 20_000);

  const log = await historyAll(admin, conv);
  assert.deepEqual(
    log.map((m) => m.seq),
    Array.from({ length: end.seq }, (_, i) => i + 1),
    'the log is 1..last without gaps',
  );
  const spans = membership(log);
  const current = (await admin.request({ type: 'group_info', conv })).members;
  assert.deepEqual(
    current.map((m: Frame) => [m.user, m.joined_seq]).sort(),
    [...spans]
      .filter(([, list]) => list.at(-1)![1] === Infinity)
      .map(([u, list]) => [u, list.at(-1)![0]])
      .sort(),
    'group_info agrees with the log',
  );

  // The changes really were interleaved with the messages.
  const firstMsg = log.findIndex((m) => m.kind !== 'system');
  const lastMsg = log.findLastIndex((m) => m.kind !== 'system' && m.cmid !== 'end');
  const changesBetween = log.slice(firstMsg, lastMsg).filter((m) => m.kind === 'system').length;
  console.log(
    `membership interleaving: ${log.length} seqs, ${SCRIPT.length} changes, ${changesBetween} of them between messages`,
  );
  assert.ok(changesBetween >= SCRIPT.length / 2, `only ${changesBetween} changes fell between messages`);

  // Every send was stored while its sender was a member, or refused as a stranger's.
  let refused = 0;
  for (const { user, reply } of replies) {
    if (reply.ok) {
      assert.ok(within(spans.get(user), reply.seq), `${user}'s message at ${reply.seq} outside membership`);
      assert.equal(log[reply.seq - 1]!.from, user);
    } else {
      assert.deepEqual(reply.error, { code: 'forbidden', message: `not a member of ${conv}` });
      refused++;
    }
  }
  assert.equal(
    replies.filter((r) => r.reply.ok).length + 1 + SCRIPT.length + 1,
    end.seq,
    'every accepted send and every change has a seq',
  );
  console.log(`membership interleaving: ${replies.length - refused} sends stored, ${refused} refused`);

  for (const u of users) {
    const c = clients.get(u)!;
    const expected = log.filter((m) => within(spans.get(u), m.seq)).map((m) => m.seq);
    const inbox = await syncAll(c);
    assert.deepEqual(
      inbox.map((e) => e.inbox),
      inbox.map((_, i) => i + 1),
      `${u}: inbox numbers contiguous`,
    );
    const mine = inbox.filter((e) => e.type === 'message' && e.conv === conv);
    assert.deepEqual(
      mine.map((e) => e.seq),
      expected,
      `${u}: exactly the messages of their membership, in seq order, once each`,
    );
    // What arrived live is the same, once each.
    const got = live.get(u)!.frames.filter((f) => f.type === 'message' && f.conv === conv);
    assert.deepEqual(
      got.map((f) => [f.inbox, f.seq]),
      mine.map((e) => [e.inbox, e.seq]),
      `${u}: live events`,
    );
  }
});
