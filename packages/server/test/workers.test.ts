// `parley serve --workers 3`: the backend in the primary, three gateway workers sharing the port.
// Routing, device replacement, per-user limits, presence and typing must work across workers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mintToken } from '../src/gateway/auth.js';
import { type ChildServer, spawnServer } from './child-server.js';
import { type Frame, TEST_SECRET, TestClient, tempDir } from './helpers.js';

const secret = new TextEncoder().encode(TEST_SECRET);
let srv: ChildServer;
let data: ReturnType<typeof tempDir>;
const open: TestClient[] = [];

async function client(user: string, device = 'd1'): Promise<TestClient> {
  const c = await TestClient.open(srv.url);
  open.push(c);
  const r = await c.request({
    type: 'connect',
    token: await mintToken(secret, { user, ttlSeconds: 600 }),
    device,
  });
  assert.equal(r.ok, true, JSON.stringify(r));
  return c;
}

before(async () => {
  data = tempDir();
  srv = await spawnServer({
    PARLEY_DATA_DIR: data.dir,
    PARLEY_JWT_SECRET: TEST_SECRET,
    PARLEY_WORKERS: '3',
    PARLEY_MAX_CONNECTIONS_PER_USER: '3',
    PARLEY_DRAIN_MS: '500',
  });
});
after(async () => {
  for (const c of open) c.close();
  srv.kill('SIGKILL');
  await srv.exited;
  data.remove();
});

test('messages, receipts and group fan-out reach users on every worker', async () => {
  // Round-robin spreads consecutive connections over the workers.
  const users = ['wa', 'wb', 'wc', 'wd', 'we', 'wf'];
  const clients = await Promise.all(users.map((u) => client(u)));
  const [a, b] = clients as [TestClient, TestClient];
  const r = await a.request({ type: 'send', conv: 'dm:wa:wb', cmid: 'x', kind: 'text', body: 'across' });
  assert.equal(r.seq, 1);
  const m = await b.nextEvent((f) => f.type === 'message');
  assert.equal(m.body, 'across');
  const g = await a.request({ type: 'create_group', name: 'all', members: users.slice(1) });
  await a.request({ type: 'send', conv: g.conv, cmid: 'g1', kind: 'text', body: 'hello all' });
  for (const c of clients) {
    const ev = await c.nextEvent((f) => f.type === 'message' && f.body === 'hello all');
    assert.equal(ev.seq, 2);
  }
  b.sendRaw(JSON.stringify({ type: 'receipt', conv: 'dm:wa:wb', kind: 'read', seq: 1 }));
  const rr = await a.nextEvent((f) => f.type === 'receipt' && f.user === 'wb');
  assert.equal(rr.kind, 'read');
});

test('a device connecting on another worker replaces the old connection (4409); the per-user cap holds', async () => {
  const first = await client('rep', 'phone');
  const second = await client('rep', 'phone');
  assert.equal(await first.closed(), 4409);
  await client('rep', 'laptop');
  await client('rep', 'tablet');
  const c = await TestClient.open(srv.url);
  open.push(c);
  const r = await c.request({
    type: 'connect',
    token: await mintToken(secret, { user: 'rep', ttlSeconds: 60 }),
    device: 'tv',
  });
  assert.equal(r.ok, false);
  assert.equal(await c.closed(), 4429);
  assert.equal(second.closeCode, null);
});

test('presence and typing cross workers', async () => {
  const watcher = await client('pw');
  const sub = await watcher.request({ type: 'presence_sub', users: ['pt'] });
  assert.deepEqual(sub.presence, [{ user: 'pt', status: 'offline' }]);
  const t1 = await client('pt', 'one');
  assert.equal((await watcher.nextEvent((f) => f.type === 'presence')).status, 'online');
  const dm = 'dm:pt:pw';
  await t1.request({ type: 'typing', conv: dm, state: 'start' });
  const typing = await watcher.nextEvent((f: Frame) => f.type === 'typing');
  assert.deepEqual([typing.user, typing.state], ['pt', 'start']);
  t1.close();
  const off = await watcher.nextEvent((f) => f.type === 'presence');
  assert.equal(off.status, 'offline');
  assert.equal(typeof off.last_seen, 'number');
});

test('metrics aggregate every process; readiness asks the backend', async () => {
  assert.equal((await fetch(`${srv.httpUrl}/metrics`)).status, 404);
  const text = await (await fetch(`${srv.adminUrl}/metrics`)).text();
  const connections = Number(/^parley_connections (\d+)/m.exec(text)?.[1]);
  assert.ok(connections >= 5, text.slice(0, 300));
  assert.match(text, /parley_messages_stored_total [1-9]/);
  assert.equal((await fetch(`${srv.httpUrl}/readyz`)).status, 200);
  assert.equal((await fetch(`${srv.adminUrl}/readyz`)).status, 200);
});

test('SIGTERM drains every worker and exits 0', async () => {
  const c = await client('last');
  srv.kill('SIGTERM');
  const hint = await c.nextEvent((f) => f.type === 'reconnect');
  assert.ok(hint.after_ms < 500);
  assert.equal(await c.closed(5000), 1012);
  assert.equal(await srv.exited, 0);
});
