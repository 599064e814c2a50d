// Cluster mode on the real engines: three `parley serve` processes (all roles) on one keyspace and
// one set of topics, clients spread over them, and HAProxy in front. 1:1 and group messages,
// receipts, presence and typing cross processes; a device that reconnects to another process
// syncs what it missed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { clusterEngines, startCluster, type TestCluster } from './cluster-fixture.js';
import { requireEngine } from './engines.js';
import type { TestClient } from './helpers.js';

const ready =
  clusterEngines() !== undefined ||
  (requireEngine(
    'cassandra',
    'cluster mode: three processes on the real engines (Cassandra, Kafka, Redis)',
  ) &&
    false);

if (ready) {
  describe('cluster mode: three processes', () => {
    let cluster: TestCluster;
    let id = '';
    const clients: TestClient[] = [];
    before(async () => {
      cluster = await startCluster(3, { haproxy: true });
      id = cluster.id;
    });
    after(async () => {
      for (const c of clients) c.close();
      await cluster.stop();
    });
    const connect = async (at: number | 'lb', user: string, device = 'd1') => {
      const c = await cluster.connect(at, user, device);
      clients.push(c);
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

    test('a 64 KiB message to a 100-member group reaches its members, and the group goes on', async () => {
      const owner = await connect(0, u('big-owner'));
      const reader = await connect(2, u('big-reader'));
      const others = Array.from({ length: 98 }, (_, i) => u(`big-m${i}`));
      const g = await owner.request(
        { type: 'create_group', name: 'big', members: [u('big-reader'), ...others] },
        15_000,
      );
      assert.equal(g.ok, true, JSON.stringify(g));
      // 64 KiB of UTF-8: a copy of it per recipient would put about 1.5 MB in each fan-out
      // partition's batch, over Kafka's 1 MB record-batch limit.
      const body = 'é'.repeat(32_768);
      const big = await owner.request(
        { type: 'send', conv: g.conv, cmid: 'big', kind: 'text', body },
        15_000,
      );
      assert.equal(big.ok, true, JSON.stringify(big).slice(0, 200));
      const small = await owner.request(
        { type: 'send', conv: g.conv, cmid: 'small', kind: 'text', body: 'after' },
        15_000,
      );
      assert.equal(small.ok, true);
      const got = await reader.nextEvent((f) => f.type === 'message' && f.cmid === 'big', 20_000);
      assert.equal(got.body, body);
      await reader.nextEvent((f) => f.type === 'message' && f.cmid === 'small', 20_000);
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

    test('a block made on any process holds on every process at once, and so does its undoing', async () => {
      const bob = await connect(1, u('blockee'));
      const conv = `dm:${[u('blocker'), u('blockee')].sort().join(':')}`;
      let n = 0;
      const send = () =>
        bob.request({ type: 'send', conv, cmid: `b${++n}`, kind: 'text', body: 'hi' }, 15_000);
      // From each process in turn, so at least two of the blocks are made away from the process
      // that sequences the conversation (which has alice's blocks cached from the send before).
      for (const at of [0, 1, 2]) {
        const alice = await connect(at, u('blocker'), `d${at}`);
        assert.equal((await send()).ok, true);
        assert.equal((await alice.request({ type: 'block', user: u('blockee') }, 10_000)).ok, true);
        const refused = await send();
        assert.equal(refused.ok, false, `a block made on process ${at} holds on the sequencer at once`);
        assert.deepEqual(refused.error, { code: 'forbidden', message: `not a member of ${conv}` });
        assert.equal((await alice.request({ type: 'unblock', user: u('blockee') }, 10_000)).ok, true);
      }
      assert.equal((await send()).ok, true, 'and so does the unblock');
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

    test('through HAProxy: connections spread over the processes, and messages flow between them', async () => {
      const users = Array.from({ length: 6 }, (_, i) => u(`lb${i}`));
      const cs: TestClient[] = [];
      for (const x of users) cs.push(await connect('lb', x));
      for (let i = 0; i < 5; i += 2) {
        const conv = `dm:${[users[i], users[i + 1]].sort().join(':')}`;
        const r = await cs[i]!.request(
          { type: 'send', conv, cmid: 'lb', kind: 'text', body: `pair ${i}` },
          15_000,
        );
        assert.equal(r.ok, true, JSON.stringify(r));
        const m = await cs[i + 1]!.nextEvent((f) => f.type === 'message' && f.conv === conv, 15_000);
        assert.equal(m.body, `pair ${i}`);
      }
      // Round-robin put connections on every process (each one's own gauge says so).
      for (const s of cluster.servers) {
        const text = await (await fetch(`${s!.adminUrl}/metrics`)).text();
        const open = Number(/^parley_connections (\d+)/m.exec(text)?.[1] ?? 0);
        assert.ok(open >= 2, `a process holds ${open} connections`);
      }
    });
  });

  describe('cluster mode: roles split over processes', () => {
    let cluster: TestCluster;
    before(async () => {
      cluster = await startCluster(2, {
        serverEnv: [{ PARLEY_ROLES: 'gateway' }, { PARLEY_ROLES: 'sequencer,fanout' }],
      });
    });
    after(async () => {
      await cluster.stop();
    });

    test('a gateway-only process serves clients while a stages-only process sequences and fans out', async () => {
      const [ua, ub] = [`ga-${cluster.id}`, `gb-${cluster.id}`];
      const a = await cluster.connect(0, ua);
      const b = await cluster.connect(0, ub, 'd2');
      try {
        const conv = `dm:${[ua, ub].sort().join(':')}`;
        const r = await a.request({ type: 'send', conv, cmid: 'r1', kind: 'text', body: 'split' }, 15_000);
        assert.equal(r.ok, true, JSON.stringify(r));
        const m = await b.nextEvent((f) => f.type === 'message' && f.cmid === 'r1', 15_000);
        assert.equal(m.body, 'split');
      } finally {
        a.close();
        b.close();
      }
      // The stages-only process takes no clients: WebSocket and HTTP API answer 503.
      await assert.rejects(cluster.connect(1, ua), /503/);
      const api = await fetch(`http://127.0.0.1:${cluster.servers[1]!.port}/v1/conversations`);
      assert.equal(api.status, 503);
      const health = await fetch(`http://127.0.0.1:${cluster.servers[1]!.port}/healthz`);
      assert.equal(health.status, 200);
    });
  });
}
