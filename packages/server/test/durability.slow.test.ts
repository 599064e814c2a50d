// Kill -9 under load: every acknowledged message survives, exactly once, with contiguous seqs;
// unacknowledged ones retried with their cmid land once; inboxes stay contiguous (fan-out redone).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mintToken } from '../src/gateway/auth.js';
import { type ChildServer, spawnServer } from './child-server.js';
import { type Frame, TEST_SECRET, TestClient, tempDir } from './helpers.js';

const CYCLES = 4;
const SENDERS = 4;
const secret = new TextEncoder().encode(TEST_SECRET);

async function connect(srv: ChildServer, user: string): Promise<TestClient> {
  const c = await TestClient.open(srv.url);
  const r = await c.request({
    type: 'connect',
    token: await mintToken(secret, { user, ttlSeconds: 600 }),
    device: 'd',
  });
  assert.equal(r.ok, true);
  return c;
}

test('SIGKILL at random moments loses no acknowledged message', { timeout: 120_000 }, async () => {
  const data = tempDir();
  // A crash test, not a rate-limit test: the senders go as fast as the server answers, and the
  // check reads every message back (on a fast machine more than the default read burst holds).
  const unlimited = '1000000000';
  const env = {
    PARLEY_DATA_DIR: data.dir,
    PARLEY_JWT_SECRET: TEST_SECRET,
    PARLEY_SEND_RATE_PER_SECOND: unlimited,
    PARLEY_SEND_BURST: unlimited,
    PARLEY_FANOUT_RATE_PER_SECOND: unlimited,
    PARLEY_FANOUT_BURST: unlimited,
    PARLEY_READ_RATE_PER_SECOND: unlimited,
    PARLEY_READ_BURST: unlimited,
  };
  // Per sender: cmid → seq acknowledged; cmids sent but not acknowledged.
  const acked = new Map<string, Map<string, number>>();
  const unacked = new Map<string, Set<string>>();
  const users = Array.from({ length: SENDERS }, (_, i) => `s${i}`);
  const convOf = (u: string) => `dm:${u}:sink`;
  for (const u of users) {
    acked.set(u, new Map());
    unacked.set(u, new Set());
  }
  let next = 0;
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const srv = await spawnServer(env);
      const clients = await Promise.all(users.map((u) => connect(srv, u)));
      // First retry what was in doubt at the last crash, with the same cmids.
      await Promise.all(
        users.map(async (u, i) => {
          for (const cmid of [...unacked.get(u)!]) {
            const r = await clients[i]!.request({
              type: 'send',
              conv: convOf(u),
              cmid,
              kind: 'text',
              body: cmid,
            });
            assert.equal(r.ok, true, JSON.stringify(r));
            acked.get(u)!.set(cmid, r.seq);
            unacked.get(u)!.delete(cmid);
          }
        }),
      );
      let stop = false;
      const load = users.map(async (u, i) => {
        const c = clients[i]!;
        while (!stop) {
          const batch = Array.from({ length: 20 }, () => `c${next++}`);
          await Promise.all(
            batch.map(async (cmid) => {
              unacked.get(u)!.add(cmid);
              let r: Frame;
              try {
                r = await c.request({ type: 'send', conv: convOf(u), cmid, kind: 'text', body: cmid }, 3000);
              } catch {
                return; // no reply: in doubt
              }
              if (r.ok) {
                acked.get(u)!.set(cmid, r.seq);
                unacked.get(u)!.delete(cmid);
              }
            }),
          );
        }
      });
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      srv.kill('SIGKILL');
      await srv.exited;
      stop = true;
      for (const c of clients) c.close();
      await Promise.allSettled(load);
    }

    // Verify on a fresh start.
    const srv = await spawnServer(env);
    try {
      let totalAcked = 0;
      for (const u of users) {
        const c = await connect(srv, u);
        const messages: Frame[] = [];
        let afterSeq = 0;
        for (;;) {
          const r = await c.request({ type: 'history', conv: convOf(u), after: afterSeq, limit: 200 });
          assert.equal(r.ok, true, JSON.stringify(r));
          messages.push(...r.messages);
          if (!r.more) break;
          afterSeq = r.messages.at(-1).seq;
        }
        assert.deepEqual(
          messages.map((m) => m.seq),
          Array.from({ length: messages.length }, (_, i) => i + 1),
          'seqs contiguous from 1',
        );
        const byCmid = new Map<string, number>();
        for (const m of messages) {
          assert.equal(byCmid.has(m.cmid), false, `cmid ${m.cmid} stored twice`);
          byCmid.set(m.cmid, m.seq);
        }
        for (const [cmid, seq] of acked.get(u)!)
          assert.equal(byCmid.get(cmid), seq, `acked ${cmid} kept its seq`);
        totalAcked += acked.get(u)!.size;
        // The sender's inbox holds one entry per message, numbered without gaps.
        const inbox: Frame[] = [];
        const numbers: number[] = [];
        let cursor = 0;
        for (;;) {
          const r = await c.request({ type: 'sync', after: cursor, limit: 1000 });
          assert.equal(r.ok, true, JSON.stringify(r));
          numbers.push(...r.events.map((e: Frame) => e.inbox));
          inbox.push(...r.events.filter((e: Frame) => e.type === 'message'));
          cursor = r.events.at(-1)?.inbox ?? cursor;
          if (!r.more) break;
        }
        assert.equal(inbox.length, messages.length, 'one inbox entry per stored message');
        assert.deepEqual(
          numbers,
          Array.from({ length: numbers.length }, (_, i) => i + 1),
          'inbox contiguous',
        );
        c.close();
      }
      assert.ok(totalAcked > 200, `load was real: ${totalAcked} acknowledged`);
      console.log(`durability: ${CYCLES} kills, ${totalAcked} acknowledged messages, all present once`);
    } finally {
      srv.kill('SIGKILL');
      await srv.exited;
    }
  } finally {
    data.remove();
  }
});
