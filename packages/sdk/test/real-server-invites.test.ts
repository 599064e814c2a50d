// The SDK's invite helpers and the `group_add` setting against a real server over real sockets:
// a user who allows no group adds is refused by `createGroup`, joins with `joinGroup` on a code
// from `createInvite`, and a revoked code fails with `not_found`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { mintToken } from '../../server/src/gateway/auth.js';
import { startServer, TEST_SECRET, type TestServer } from '../../server/test/helpers.js';
import { type MessageEvent, ParleyClient, ParleyError, parseSystemMessage } from '../src/index.js';
import { waitUntil } from './fake-server.js';

const secret = new TextEncoder().encode(TEST_SECRET);
let srv: TestServer;
const clients: ParleyClient[] = [];

before(async () => {
  srv = await startServer();
});

after(async () => {
  for (const c of clients.splice(0)) await c.close();
  await srv.stop();
});

async function connected(user: string): Promise<ParleyClient> {
  const client = new ParleyClient({
    url: srv.url,
    device: 'd1',
    tokenProvider: () => mintToken(secret, { user, ttlSeconds: 600 }),
    WebSocket,
    requestTimeoutMs: 5000,
  });
  clients.push(client);
  await client.connect();
  return client;
}

test('group_add nobody, createInvite, joinGroup and revokeInvite', async () => {
  const alice = await connected('sdk-inv-alice');
  const dave = await connected('sdk-inv-dave');
  assert.deepEqual(await dave.settings(), {
    read_receipts: true,
    last_seen: 'everyone',
    group_add: 'everyone',
  });
  assert.deepEqual(await dave.settings({ group_add: 'nobody' }), {
    read_receipts: true,
    last_seen: 'everyone',
    group_add: 'nobody',
  });

  await assert.rejects(alice.createGroup('Climbing', ['sdk-inv-dave']), (err: unknown) => {
    assert.ok(err instanceof ParleyError);
    assert.equal(err.code, 'forbidden');
    return true;
  });
  const { conv } = await alice.createGroup('Climbing', []);

  const invite = await alice.createInvite(conv, { expires_in_ms: 60_000, max_uses: 5 });
  assert.match(invite.code, /^[A-Za-z0-9_-]{24}$/);
  assert.ok(invite.expires_ts > Date.now());

  const messages: MessageEvent[] = [];
  dave.on('message', (m) => {
    if (m.conv === conv && m.kind === 'system') messages.push(m);
  });
  const joined = await dave.joinGroup(invite.code);
  assert.equal(joined.conv, conv);
  assert.equal(typeof joined.seq, 'number');
  await waitUntil(() => messages.length === 1, 3000, 'dave gets the members_added message');
  // The joiner is the actor of the system message that added them.
  assert.deepEqual(parseSystemMessage(messages[0]!), {
    event: 'members_added',
    actor: 'sdk-inv-dave',
    users: ['sdk-inv-dave'],
  });
  assert.deepEqual(await dave.joinGroup(invite.code), { conv }, 'joining again changes nothing');
  assert.deepEqual(
    (await alice.groupInfo(conv)).members.map((m) => m.user),
    ['sdk-inv-alice', 'sdk-inv-dave'],
  );

  await alice.revokeInvite(conv, invite.code);
  await alice.revokeInvite(conv, invite.code); // idempotent
  const erin = await connected('sdk-inv-erin');
  await assert.rejects(erin.joinGroup(invite.code), (err: unknown) => {
    assert.ok(err instanceof ParleyError);
    assert.equal(err.code, 'not_found');
    return true;
  });
});
