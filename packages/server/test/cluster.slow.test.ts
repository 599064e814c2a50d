// Cluster mode on the real engines: three `parley serve` processes (all roles) on one keyspace and
// one set of topics, clients spread over them. 1:1 and group messages, receipts, presence and
// typing cross processes; a device that reconnects to another process syncs what it missed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mintToken } from '../src/gateway/auth.js';
import { type ChildServer, spawnServer } from './child-server.js';
import { requireEngine } from './engines.js';
import { TEST_SECRET, TestClient } from './helpers.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const cassandra = requireEngine('cassandra', 'cluster mode: three processes on the real engines');
const kafka = cassandra && requireEngine('kafka', 'cluster mode: three processes (Kafka)');
const redis = kafka && requireEngine('redis', 'cluster mode: three processes (Redis)');

if (cassandra && kafka && redis) {
  describe('cluster mode: three processes', () => {
    const id = randomBytes(3).toString('hex');
    const dc = process.env.PARLEY_TEST_CASSANDRA_DC ?? 'datacenter1';
    const env = {
      PARLEY_JWT_SECRET: TEST_SECRET,
      PARLEY_CASSANDRA: cassandra,
      PARLEY_CASSANDRA_DC: dc,
      PARLEY_KEYSPACE: `parley_cluster_${id}`,
      PARLEY_KAFKA: kafka,
      PARLEY_TOPIC_PREFIX: `parley-cluster-${id}.`,
      PARLEY_REDIS_URL: redis,
      PARLEY_DRAIN_MS: '0',
    };
    const servers: ChildServer[] = [];
    const clients: TestClient[] = [];
    const secret = new TextEncoder().encode(TEST_SECRET);

    before(async () => {
      await run(process.execPath, [
        '--import',
        'tsx',
        CLI,
        'migrate-cluster',
        '--cassandra',
        cassandra,
        '--cassandra-dc',
        dc,
        '--keyspace',
        env.PARLEY_KEYSPACE,
        '--replication-factor',
        '1',
        '--kafka',
        kafka,
        '--partitions',
        '6',
        '--topic-prefix',
        env.PARLEY_TOPIC_PREFIX,
      ]);
      for (let i = 0; i < 3; i++) servers.push(await spawnServer(env, 60_000));
      // Let the consumer groups settle on all three members before measuring anything.
      await new Promise((r) => setTimeout(r, 4_000));
    });
    after(async () => {
      for (const c of clients) c.close();
      for (const s of servers) s.kill('SIGKILL');
    });

    const connect = async (server: number, user: string, device = 'd1') => {
      const c = await TestClient.open(servers[server]!.url);
      clients.push(c);
      const r = await c.request(
        { type: 'connect', token: await mintToken(secret, { user, ttlSeconds: 3600 }), device },
        15_000,
      );
      assert.equal(r.ok, true, JSON.stringify(r));
      return c;
    };
    const u = (name: string) => `${name}-${id}`;

    test('a 1:1 message sent on one process is acknowledged and delivered on another', async () => {
      const alice = await connect(0, u('alice'));
      const bob = await connect(1, u('bob'));
      const conv = `dm:${u('alice')}:${u('bob')}`;
      const t0 = Date.now();
      const r = await alice.request({ type: 'send', conv, cmid: 'c1', kind: 'text', body: 'hi bob' }, 15_000);
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(r.seq, 1);
      const m = await bob.nextEvent((f) => f.type === 'message' && f.conv === conv, 15_000);
      assert.equal(m.body, 'hi bob');
      assert.equal(m.inbox, 1);
      console.log(`# first cross-process send→deliver: ${Date.now() - t0} ms`);
      // The same cmid again is a duplicate, answered with the same seq.
      const again = await alice.request(
        { type: 'send', conv, cmid: 'c1', kind: 'text', body: 'hi bob' },
        15_000,
      );
      assert.deepEqual([again.ok, again.seq, again.dup], [true, 1, true]);
    });

    test('a group spread over three processes: every member gets each message once, in order', async () => {
      const owner = await connect(0, u('owner'));
      const m1 = await connect(1, u('m1'));
      const m2 = await connect(2, u('m2'));
      const g = await owner.request(
        { type: 'create_group', name: 'spread', members: [u('m1'), u('m2')] },
        15_000,
      );
      assert.equal(g.ok, true, JSON.stringify(g));
      for (let i = 0; i < 5; i++) {
        const r = await m2.request(
          { type: 'send', conv: g.conv, cmid: `g${i}`, kind: 'text', body: `b${i}` },
          15_000,
        );
        assert.equal(r.ok, true, JSON.stringify(r));
      }
      for (const c of [owner, m1]) {
        const bodies: string[] = [];
        while (bodies.length < 5)
          bodies.push(
            (await c.nextEvent((f) => f.type === 'message' && f.conv === g.conv && f.kind === 'text', 15_000))
              .body,
          );
        assert.deepEqual(bodies, ['b0', 'b1', 'b2', 'b3', 'b4']);
      }
    });

    test('receipts, presence and typing cross processes', async () => {
      const a = await connect(2, u('ra'));
      const b = await connect(0, u('rb'));
      const conv = `dm:${u('ra')}:${u('rb')}`;
      const sent = await a.request({ type: 'send', conv, cmid: 'x', kind: 'text', body: 'read me' }, 15_000);
      assert.equal(sent.ok, true);
      await b.nextEvent((f) => f.type === 'message' && f.conv === conv, 15_000);
      b.sendRaw(JSON.stringify({ type: 'receipt', conv, kind: 'read', seq: sent.seq }));
      const receipt = await a.nextEvent((f) => f.type === 'receipt' && f.conv === conv, 15_000);
      assert.deepEqual(
        [receipt.kind, receipt.user ?? receipt.actor, receipt.seq],
        ['read', u('rb'), sent.seq],
      );
      const sub = await a.request({ type: 'presence_sub', users: [u('rb')] }, 15_000);
      assert.equal(sub.ok, true, JSON.stringify(sub));
      assert.equal(sub.presence[0].status, 'online');
      b.sendRaw(JSON.stringify({ type: 'typing', conv, state: 'start' }));
      const typing = await a.nextEvent((f) => f.type === 'typing' && f.conv === conv, 15_000);
      assert.equal(typing.state, 'start');
      b.close();
      const offline = await a.nextEvent((f) => f.type === 'presence' && f.user === u('rb'), 15_000);
      assert.equal(offline.status, 'offline');
    });

    test('a device that reconnects to another process syncs what it missed', async () => {
      const a = await connect(0, u('sa'));
      let b = await connect(1, u('sb'));
      const conv = `dm:${u('sa')}:${u('sb')}`;
      await a.request({ type: 'send', conv, cmid: 'm1', kind: 'text', body: 'one' }, 15_000);
      await b.nextEvent((f) => f.type === 'message', 15_000);
      b.close();
      await a.request({ type: 'send', conv, cmid: 'm2', kind: 'text', body: 'two' }, 15_000);
      await a.request({ type: 'send', conv, cmid: 'm3', kind: 'text', body: 'three' }, 15_000);
      b = await connect(2, u('sb'));
      const deadline = Date.now() + 15_000;
      let events: { body?: string; inbox: number }[] = [];
      while (Date.now() < deadline) {
        const r = await b.request({ type: 'sync', after: 1 }, 15_000);
        events = r.events;
        if (events.length >= 2) break;
        await new Promise((res) => setTimeout(res, 200));
      }
      assert.deepEqual(
        events.map((e) => [e.inbox, e.body]),
        [
          [2, 'two'],
          [3, 'three'],
        ],
      );
    });
  });
}
