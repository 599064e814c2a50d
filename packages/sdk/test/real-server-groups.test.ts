// The SDK's group, receipt, presence and typing helpers against the real server (a child
// process, as an operator runs it): three SDK clients in one group.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { mintToken } from '../../server/src/gateway/auth.js';
import { type ChildServer, spawnServer } from '../../server/test/child-server.js';
import { TEST_SECRET, tempDir } from '../../server/test/helpers.js';
import {
  type MessageEvent,
  ParleyClient,
  type ParleyClientOptions,
  type PresenceEvent,
  parseSystemMessage,
  type ReceiptEvent,
  type TypingEvent,
} from '../src/index.js';
import { sleep, waitUntil } from './fake-server.js';

const secret = new TextEncoder().encode(TEST_SECRET);

let srv: ChildServer;
let data: { dir: string; remove: () => void };
const clients: ParleyClient[] = [];

before(async () => {
  data = tempDir();
  srv = await spawnServer({ PARLEY_DATA_DIR: data.dir, PARLEY_JWT_SECRET: TEST_SECRET });
});

after(async () => {
  for (const c of clients.splice(0)) await c.close();
  srv.kill('SIGKILL');
  await srv.exited;
  data.remove();
});

/** One SDK client with everything it emitted and every frame it wrote. */
interface Peer {
  user: string;
  client: ParleyClient;
  messages: MessageEvent[];
  receipts: ReceiptEvent[];
  presence: PresenceEvent[];
  typing: TypingEvent[];
  /** Frames written, over every socket. */
  sent: Record<string, unknown>[];
  /** Every socket the client opened, in order. */
  sockets: WebSocket[];
}

async function peer(user: string, opts: Partial<ParleyClientOptions> = {}): Promise<Peer> {
  const sent: Record<string, unknown>[] = [];
  const sockets: WebSocket[] = [];
  class TrackingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols);
      sockets.push(this);
      const send = this.send.bind(this);
      this.send = ((frame: string) => {
        sent.push(JSON.parse(frame) as Record<string, unknown>);
        send(frame);
      }) as typeof this.send;
    }
  }
  const client = new ParleyClient({
    url: srv.url,
    device: 'd1',
    tokenProvider: () => mintToken(secret, { user, ttlSeconds: 600 }),
    WebSocket: TrackingWebSocket,
    minReconnectDelayMs: 20,
    maxReconnectDelayMs: 100,
    requestTimeoutMs: 5000,
    ...opts,
  });
  clients.push(client);
  const p: Peer = { user, client, messages: [], receipts: [], presence: [], typing: [], sent, sockets };
  client.on('message', (m) => p.messages.push(m));
  client.on('receipt', (r) => p.receipts.push(r));
  client.on('presence', (e) => p.presence.push(e));
  client.on('typing', (t) => p.typing.push(t));
  await client.connect();
  return p;
}

/** Three connected users `<prefix>-a` (who creates the group), `-b`, `-c`, and their group. */
async function trio(prefix: string, opts: { c?: Partial<ParleyClientOptions> } = {}) {
  const [a, b, c] = await Promise.all([
    peer(`${prefix}-a`),
    peer(`${prefix}-b`),
    peer(`${prefix}-c`, opts.c ?? {}),
  ]);
  const { conv } = await a.client.createGroup(`${prefix} group`, [b.user, c.user]);
  return { a, b, c, conv };
}

function inConv(p: Peer, conv: string): MessageEvent[] {
  return p.messages.filter((m) => m.conv === conv);
}

test('a group of three: messages reach every member; system messages parse', {
  timeout: 20_000,
}, async () => {
  const { a, b, c, conv } = await trio('grp');
  assert.match(conv, /^g:/);
  for (const p of [a, b, c]) {
    await waitUntil(() => inConv(p, conv).length >= 1, 3000, `${p.user} sees the creation`);
    const created = inConv(p, conv)[0]!;
    assert.equal(created.seq, 1);
    assert.deepEqual(parseSystemMessage(created), {
      event: 'created',
      actor: a.user,
      name: 'grp group',
      members: [a.user, b.user, c.user],
    });
  }

  const sent = await a.client.send(conv, 'hello group');
  const reply = await b.client.send(conv, 'hi from b');
  for (const p of [a, b, c]) {
    await waitUntil(() => inConv(p, conv).length >= 3, 3000, `${p.user} gets both messages`);
    assert.deepEqual(
      inConv(p, conv).map((m) => [m.seq, m.from, m.body]),
      [
        [1, a.user, inConv(p, conv)[0]!.body],
        [sent.seq, a.user, 'hello group'],
        [reply.seq, b.user, 'hi from b'],
      ],
    );
    assert.equal(parseSystemMessage(inConv(p, conv)[1]!), null, 'a text message is not a system message');
  }

  const added = await a.client.addMembers(conv, ['grp-dave']);
  assert.deepEqual(Object.keys(added).sort(), ['conv', 'seq', 'ts']);
  assert.equal(added.seq, reply.seq + 1);
  assert.deepEqual(await a.client.addMembers(conv, ['grp-dave']), { conv }, 'nothing changed: no seq');
  const removed = await a.client.removeMembers(conv, ['grp-dave']);
  assert.equal(removed.seq, added.seq! + 1);
  await waitUntil(() => inConv(b, conv).length >= 5, 3000, 'b sees add and remove');
  const [add, remove] = inConv(b, conv).slice(3);
  assert.equal(add?.kind, 'system');
  assert.deepEqual(parseSystemMessage(add!), { event: 'members_added', actor: a.user, users: ['grp-dave'] });
  assert.deepEqual(parseSystemMessage(remove!), {
    event: 'members_removed',
    actor: a.user,
    users: ['grp-dave'],
  });

  const info = await c.client.groupInfo(conv);
  assert.deepEqual(
    info.members.map((m) => [m.user, m.role]),
    [
      [a.user, 'admin'],
      [b.user, 'member'],
      [c.user, 'member'],
    ],
  );
});

test('automatic delivered receipts and markRead reach the sender as receipt events', {
  timeout: 20_000,
}, async () => {
  // c does not send delivered receipts automatically: the contrast shows b's come from the SDK.
  const { a, b, c, conv } = await trio('rcpt', { c: { autoDeliveredReceipts: false } });
  const { seq } = await a.client.send(conv, 'did you get this?');
  await waitUntil(
    () => a.receipts.some((r) => r.user === b.user && r.kind === 'delivered' && r.seq >= seq),
    3000,
    'a delivered receipt from b',
  );
  await waitUntil(() => inConv(c, conv).some((m) => m.seq === seq), 3000, 'c got the message');
  assert.ok(
    b.sent.some((f) => f.type === 'receipt' && f.kind === 'delivered' && f.seq === seq && f.id === undefined),
    'b wrote a fire-and-forget delivered receipt',
  );

  b.client.markRead(conv, seq);
  await waitUntil(
    () => a.receipts.some((r) => r.user === b.user && r.kind === 'read' && r.seq === seq),
    3000,
    'a read receipt from b',
  );
  const marks = await a.client.receipts(conv);
  const of = (u: string) => marks.members.find((m) => m.user === u);
  assert.equal(of(b.user)?.read, seq);
  assert.equal(of(b.user)?.delivered, seq);
  assert.equal(of(c.user)?.delivered, 0, 'no automatic receipt from c');
  assert.ok(!a.receipts.some((r) => r.user === c.user), 'no receipt events from c');
  // The sender's own messages never get a receipt from the sender.
  assert.ok(!a.sent.some((f) => f.type === 'receipt'), 'a sent no receipts for its own messages');
});

test('presence: online/offline with last_seen, renewed after a reconnect', { timeout: 20_000 }, async () => {
  const { a, b, c } = await trio('pres');
  const { presence } = await a.client.subscribePresence([b.user, c.user]);
  assert.deepEqual(presence, [
    { user: b.user, status: 'online' },
    { user: c.user, status: 'online' },
  ]);
  assert.deepEqual(a.client.presence(c.user), { user: c.user, status: 'online' });

  const beforeClose = Date.now();
  await c.client.close();
  await waitUntil(
    () => a.presence.some((p) => p.user === c.user && p.status === 'offline'),
    3000,
    'c offline',
  );
  const off = a.client.presence(c.user);
  assert.equal(off?.status, 'offline');
  assert.equal(typeof off?.last_seen, 'number');
  assert.ok(
    off!.last_seen! >= beforeClose - 1000 && off!.last_seen! <= Date.now() + 1000,
    'last_seen is now',
  );

  // Cut a's connection: the server forgets its subscriptions; the SDK must subscribe again.
  const subsBefore = a.sent.filter((f) => f.type === 'presence_sub').length;
  let connects = 0;
  a.client.on('connected', () => {
    connects += 1;
  });
  a.sockets.at(-1)!.terminate();
  await waitUntil(() => connects === 1, 3000, 'a reconnected');
  await waitUntil(() => a.sent.filter((f) => f.type === 'presence_sub').length === subsBefore + 1, 3000);
  await sleep(100);
  assert.deepEqual(a.sent.filter((f) => f.type === 'presence_sub').at(-1)?.users, [b.user, c.user]);

  const seen = a.presence.length;
  await c.client.connect();
  await waitUntil(
    () => a.presence.slice(seen).some((p) => p.user === c.user && p.status === 'online'),
    3000,
    'c online again, seen through the renewed subscription',
  );
  assert.deepEqual(a.client.presence(c.user), { user: c.user, status: 'online' });
  await b.client.close();
  await waitUntil(
    () => a.client.presence(b.user)?.status === 'offline',
    3000,
    'b offline after the reconnect',
  );
});

test('typing reaches the other members; the SDK drops repeated starts within 2 s', {
  timeout: 20_000,
}, async () => {
  const { a, b, c, conv } = await trio('typ');
  assert.equal(a.client.typing(conv, 'start'), true);
  assert.equal(a.client.typing(conv, 'start'), false, 'dropped locally');
  assert.equal(a.client.typing(conv, 'start'), false, 'dropped locally');
  for (const p of [b, c]) {
    await waitUntil(() => p.typing.length === 1, 3000, `${p.user} sees a typing`);
    assert.deepEqual(p.typing[0], { type: 'typing', conv, user: a.user, state: 'start' });
  }
  assert.equal(a.sent.filter((f) => f.type === 'typing').length, 1, 'one start written');

  assert.equal(a.client.typing(conv, 'stop'), true);
  assert.equal(a.client.typing(conv, 'start'), false, 'within 2 s of the last start, even after a stop');
  for (const p of [b, c]) {
    await waitUntil(() => p.typing.length === 2, 3000, `${p.user} sees the stop`);
    assert.deepEqual(
      p.typing.map((t) => t.state),
      ['start', 'stop'],
    );
  }
  await sleep(50);
  assert.equal(a.typing.length, 0, 'never echoed to the typist');
});
