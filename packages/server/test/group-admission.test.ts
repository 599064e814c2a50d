// Who may put whom in a group, against an in-process server over real sockets: users who blocked
// the actor and users with `group_add: nobody` cannot be added; being added is limited per
// recipient; invites (create, revoke, join) with their refusals, the size limit and the budgets.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Frame, sleep, startServer, type TestClient, type TestServer } from './helpers.js';

const MAX_GROUP = 4;
const RECIPIENT_BURST = 3;
let s: TestServer;
before(async () => {
  s = await startServer({
    maxGroupSize: MAX_GROUP,
    groupAddsPerRecipientBurst: RECIPIENT_BURST,
    // One token an hour: nothing refills while the tests run.
    groupAddsPerRecipientPerHour: 1,
    inviteCreateBurst: 4,
    inviteCreatePerHour: 1,
  });
});
after(() => s.stop());

let groups = 0;
const create = (c: TestClient, members: string[]) =>
  c.request({ type: 'create_group', name: `g${++groups}`, members });

async function created(c: TestClient, members: string[]): Promise<string> {
  const r = await create(c, members);
  assert.equal(r.ok, true, JSON.stringify(r));
  return r.conv;
}

function refused(r: Frame, code: string, message?: RegExp): void {
  assert.equal(r.ok, false, JSON.stringify(r));
  assert.equal(r.error.code, code, JSON.stringify(r));
  if (message) assert.match(r.error.message, message);
}

async function memberIds(c: TestClient, conv: string): Promise<string[]> {
  const r = await c.request({ type: 'group_info', conv });
  assert.equal(r.ok, true, JSON.stringify(r));
  return r.members.map((m: Frame) => m.user);
}

async function invite(c: TestClient, conv: string, extra: Frame = {}): Promise<string> {
  const r = await c.request({ type: 'create_invite', conv, ...extra });
  assert.equal(r.ok, true, JSON.stringify(r));
  return r.code;
}

const convsOf = async (c: TestClient) =>
  (await c.request({ type: 'conversations' })).conversations as Frame[];

describe('blocking and group_add', () => {
  test('a user who blocked the actor cannot be put in a group by them, on create or add', async () => {
    const alice = await s.client('bl-alice');
    const bob = await s.client('bl-bob');
    const carol = await s.client('bl-carol');
    assert.equal((await bob.request({ type: 'block', user: 'bl-alice' })).ok, true);

    const r = await create(alice, ['bl-bob', 'bl-carol']);
    refused(r, 'forbidden', /^cannot add bl-bob: they join groups by invite only$/);
    // Nothing was stored: nobody has the group.
    assert.deepEqual(await convsOf(alice), []);
    assert.deepEqual(await convsOf(carol), []);

    const conv = await created(alice, ['bl-carol']);
    const add = await alice.request({ type: 'add_members', conv, users: ['bl-bob'] });
    refused(add, 'forbidden', /^cannot add bl-bob: they join groups by invite only$/);
    assert.deepEqual(await memberIds(alice, conv), ['bl-alice', 'bl-carol']);
    assert.deepEqual(await convsOf(bob), []);

    // Blocking is one-way: bob may still add alice; and once unblocked, alice may add bob.
    assert.equal((await create(bob, ['bl-alice'])).ok, true);
    assert.equal((await bob.request({ type: 'unblock', user: 'bl-alice' })).ok, true);
    const again = await alice.request({ type: 'add_members', conv, users: ['bl-bob'] });
    assert.equal(again.ok, true, JSON.stringify(again));
    assert.equal(typeof again.seq, 'number');
  });

  test('group_add nobody refuses every add with the same words as a block; settings report it', async () => {
    const alice = await s.client('ga-alice');
    const dave = await s.client('ga-dave');
    const read = await dave.request({ type: 'settings' });
    assert.deepEqual(
      { read_receipts: read.read_receipts, last_seen: read.last_seen, group_add: read.group_add },
      { read_receipts: true, last_seen: 'everyone', group_add: 'everyone' },
    );
    const set = await dave.request({ type: 'settings', group_add: 'nobody' });
    assert.equal(set.ok, true, JSON.stringify(set));
    assert.equal(set.group_add, 'nobody');
    assert.equal(set.read_receipts, true, 'other settings are kept');
    refused(await dave.request({ type: 'settings', group_add: 'some' }), 'bad_request', /group_add/);

    refused(
      await create(alice, ['ga-dave']),
      'forbidden',
      /^cannot add ga-dave: they join groups by invite only$/,
    );
    const conv = await created(alice, []);
    refused(
      await alice.request({ type: 'add_members', conv, users: ['ga-dave'] }),
      'forbidden',
      /^cannot add ga-dave: they join groups by invite only$/,
    );
    assert.deepEqual(await convsOf(dave), []);

    // Through an invite dave joins: a members_added system message with dave as its actor.
    const code = await invite(alice, conv);
    assert.match(code, /^[A-Za-z0-9_-]{24}$/);
    const j = await dave.request({ type: 'join_group', code });
    assert.equal(j.ok, true, JSON.stringify(j));
    assert.deepEqual(Object.keys(j).sort(), ['conv', 'id', 'ok', 'seq', 'ts', 'type']);
    assert.equal(j.conv, conv);
    for (const c of [alice, dave]) {
      const m = await c.nextEvent((f) => f.type === 'message' && f.conv === conv && f.seq === j.seq);
      assert.equal(m.kind, 'system');
      assert.equal(m.from, 'ga-dave');
      assert.deepEqual(JSON.parse(m.body), { event: 'members_added', users: ['ga-dave'] });
    }
    assert.deepEqual(await memberIds(dave, conv), ['ga-alice', 'ga-dave']);
    // Joining again changes nothing (a retry is safe).
    const again = await dave.request({ type: 'join_group', code });
    assert.equal(again.ok, true);
    assert.deepEqual(Object.keys(again).sort(), ['conv', 'id', 'ok', 'type']);

    // Back to everyone: adds work again.
    assert.equal((await dave.request({ type: 'settings', group_add: 'everyone' })).group_add, 'everyone');
    assert.equal((await create(alice, ['ga-dave'])).ok, true);
  });
});

describe('the per-recipient budget', () => {
  test('past the burst, strangers cannot put a user in more groups; other users are unaffected', async () => {
    const strangers = await Promise.all([1, 2, 3, 4, 5].map((i) => s.client(`rb-s${i}`)));
    const victim = await s.client('rb-victim');
    await s.client('rb-other');
    for (let i = 0; i < RECIPIENT_BURST; i++) await created(strangers[i]!, ['rb-victim']);
    const r = await create(strangers[3]!, ['rb-victim']);
    refused(r, 'rate_limited');
    assert.ok(r.error.retry_after_ms > 0, JSON.stringify(r));
    // add_members counts the same way, and nothing is stored.
    const conv = await created(strangers[4]!, []);
    refused(await strangers[4]!.request({ type: 'add_members', conv, users: ['rb-victim'] }), 'rate_limited');
    assert.deepEqual(await memberIds(strangers[4]!, conv), ['rb-s5']);
    assert.equal((await convsOf(victim)).length, RECIPIENT_BURST);

    // A change naming the spent user and another is refused whole; the other's budget is given back.
    refused(await create(strangers[3]!, ['rb-victim', 'rb-other']), 'rate_limited');
    for (let i = 0; i < RECIPIENT_BURST; i++) await created(strangers[i]!, ['rb-other']);
    refused(await create(strangers[3]!, ['rb-other']), 'rate_limited');
  });

  test('joining through an invite is not counted, and does not need the budget', async () => {
    const admins = await Promise.all([1, 2, 3, 4].map((i) => s.client(`ri-a${i}`)));
    const joiner = await s.client('ri-joiner');
    for (let i = 0; i < RECIPIENT_BURST; i++) await created(admins[i]!, ['ri-joiner']);
    refused(await create(admins[3]!, ['ri-joiner']), 'rate_limited');
    const conv = await created(admins[3]!, []);
    const j = await joiner.request({ type: 'join_group', code: await invite(admins[3]!, conv) });
    assert.equal(j.ok, true, JSON.stringify(j));
    assert.deepEqual(await memberIds(joiner, conv), ['ri-a4', 'ri-joiner']);
  });
});

describe('invites', () => {
  test('only admins make and revoke invites', async () => {
    const alice = await s.client('ia-alice');
    const bob = await s.client('ia-bob');
    const eve = await s.client('ia-eve');
    const conv = await created(alice, ['ia-bob']);
    refused(await bob.request({ type: 'create_invite', conv }), 'forbidden', /only admins/);
    refused(await eve.request({ type: 'create_invite', conv }), 'forbidden', /^not a member of g:/);
    const code = await invite(alice, conv);
    refused(await bob.request({ type: 'revoke_invite', conv, code }), 'forbidden', /only admins/);
    refused(await eve.request({ type: 'revoke_invite', conv, code }), 'forbidden', /^not a member of g:/);
    // A direct conversation has no invites.
    refused(await alice.request({ type: 'create_invite', conv: 'dm:ia-alice:ia-bob' }), 'bad_request');
    refused(await alice.request({ type: 'create_invite', conv, expires_in_ms: 0 }), 'bad_request');
    refused(await alice.request({ type: 'create_invite', conv, max_uses: 0 }), 'bad_request');
    refused(await alice.request({ type: 'join_group', code: 'not a code!' }), 'bad_request');
    const r = await alice.request({ type: 'create_invite', conv, expires_in_ms: 60_000 });
    assert.deepEqual(Object.keys(r).sort(), ['code', 'expires_ts', 'id', 'ok', 'type']);
    assert.ok(Math.abs(r.expires_ts - (Date.now() + 60_000)) < 5_000);
  });

  test('unknown, expired, revoked and used-up codes are all not_found, alike', async () => {
    const alice = await s.client('ib-alice');
    const joiners = await Promise.all([1, 2, 3, 4, 5].map((i) => s.client(`ib-j${i}`)));
    const conv = await created(alice, []);
    const noSuch = /^no such invite$/;

    refused(
      await joiners[0]!.request({ type: 'join_group', code: 'AAAAAAAAAAAAAAAAAAAAAAAA' }),
      'not_found',
      noSuch,
    );

    const short = await invite(alice, conv, { expires_in_ms: 1 });
    await sleep(20);
    refused(await joiners[0]!.request({ type: 'join_group', code: short }), 'not_found', noSuch);

    const revoked = await invite(alice, conv);
    assert.deepEqual(
      Object.keys(await alice.request({ type: 'revoke_invite', conv, code: revoked })).sort(),
      ['id', 'ok', 'type'],
    );
    refused(await joiners[0]!.request({ type: 'join_group', code: revoked }), 'not_found', noSuch);
    // Revoking is idempotent, and a code of another group is left alone.
    assert.equal((await alice.request({ type: 'revoke_invite', conv, code: revoked })).ok, true);
    const otherConv = await created(alice, []);
    const other = await invite(alice, otherConv);
    assert.equal((await alice.request({ type: 'revoke_invite', conv, code: other })).ok, true);
    assert.equal((await joiners[4]!.request({ type: 'join_group', code: other })).ok, true);

    const once = await invite(alice, conv, { max_uses: 2 });
    assert.equal((await joiners[0]!.request({ type: 'join_group', code: once })).ok, true);
    assert.equal((await joiners[1]!.request({ type: 'join_group', code: once })).ok, true);
    refused(await joiners[2]!.request({ type: 'join_group', code: once }), 'not_found', noSuch);
    assert.deepEqual(await memberIds(alice, conv), ['ib-alice', 'ib-j1', 'ib-j2']);
  });

  test('an invite dies when its creator stops being an admin of the group', async () => {
    const alice = await s.client('ic-alice');
    const bob = await s.client('ic-bob');
    const joiner = await s.client('ic-joiner');
    const conv = await created(alice, ['ic-bob']);
    assert.equal((await alice.request({ type: 'set_role', conv, user: 'ic-bob', role: 'admin' })).ok, true);
    const bobs = await invite(bob, conv);
    const alices = await invite(alice, conv);
    assert.equal((await bob.request({ type: 'leave', conv })).ok, true);
    refused(await joiner.request({ type: 'join_group', code: bobs }), 'not_found', /^no such invite$/);
    // Re-added, bob is a new member: his old invite stays dead.
    assert.equal((await alice.request({ type: 'add_members', conv, users: ['ic-bob'] })).ok, true);
    assert.equal((await alice.request({ type: 'set_role', conv, user: 'ic-bob', role: 'admin' })).ok, true);
    refused(await joiner.request({ type: 'join_group', code: bobs }), 'not_found', /^no such invite$/);
    assert.equal((await joiner.request({ type: 'join_group', code: alices })).ok, true);
  });

  test('the size limit holds through invites, and a refused join uses nothing up', async () => {
    const alice = await s.client('id-alice');
    const joiners = await Promise.all([1, 2, 3].map((i) => s.client(`id-j${i}`)));
    const conv = await created(alice, ['id-m1', 'id-m2']);
    const code = await invite(alice, conv, { max_uses: 2 });
    assert.equal((await joiners[0]!.request({ type: 'join_group', code })).ok, true);
    assert.equal((await memberIds(alice, conv)).length, MAX_GROUP);
    refused(await joiners[1]!.request({ type: 'join_group', code }), 'too_large');
    assert.equal((await memberIds(alice, conv)).length, MAX_GROUP);
    // With room again, the second use is still there.
    assert.equal((await alice.request({ type: 'remove_members', conv, users: ['id-m1'] })).ok, true);
    assert.equal((await joiners[1]!.request({ type: 'join_group', code })).ok, true);
    assert.equal((await alice.request({ type: 'remove_members', conv, users: ['id-m2'] })).ok, true);
    refused(await joiners[2]!.request({ type: 'join_group', code }), 'not_found');
  });

  test('invite creation is limited per user', async () => {
    const alice = await s.client('ie-alice');
    const conv = await created(alice, []);
    for (let i = 0; i < 4; i++) await invite(alice, conv);
    const r = await alice.request({ type: 'create_invite', conv });
    refused(r, 'rate_limited');
    assert.ok(r.error.retry_after_ms > 0);
  });
});

describe('joining counts against the send budget', () => {
  let small: TestServer;
  before(async () => {
    small = await startServer({ sendBurst: 3, sendRatePerSecond: 1 });
  });
  after(() => small.stop());

  test('a join takes a unit of the joiner’s send budget', async () => {
    const alice = await small.client('sb-alice');
    const joiner = await small.client('sb-joiner');
    const conv = await created(alice, []);
    const code = await invite(alice, conv);
    for (let i = 0; i < 3; i++) {
      const r = await joiner.request({
        type: 'send',
        conv: 'dm:sb-alice:sb-joiner',
        cmid: `m${i}`,
        kind: 'text',
        body: 'x',
      });
      assert.equal(r.ok, true, JSON.stringify(r));
    }
    refused(await joiner.request({ type: 'join_group', code }), 'rate_limited');
    assert.deepEqual(await memberIds(alice, conv), ['sb-alice']);
  });
});
