// A full-size group: 512 members, each with a real WebSocket connection to an in-process server.
// Every message reaches every member's device exactly once with that member's own inbox number,
// and the sender's reply does not wait for the fan-out.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Frame, recordEvents, sleep, startServer, type TestClient, type TestServer } from './helpers.js';

const MEMBERS = 512;
const MESSAGES = 5;
const CONNECT_BATCH = 64;

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.stop());

test(`a ${MEMBERS}-member group: every device gets each message once; the reply precedes the fan-out`, {
  timeout: 60_000,
}, async () => {
  const users = Array.from({ length: MEMBERS }, (_, i) => `f512-${String(i).padStart(3, '0')}`);
  const clients: TestClient[] = [];
  const recs: ReturnType<typeof recordEvents>[] = [];
  const opened = performance.now();
  for (let i = 0; i < MEMBERS; i += CONNECT_BATCH) {
    const batch = await Promise.all(users.slice(i, i + CONNECT_BATCH).map((u) => s.client(u)));
    for (const c of batch) {
      clients.push(c);
      recs.push(recordEvents(c));
    }
  }
  console.log(`${MEMBERS} connections opened in ${(performance.now() - opened).toFixed(0)} ms`);
  const sender = clients[0]!;

  /** Resolves when every member has the message at `seq`; returns each member's arrival time. */
  const everyoneHas = async (conv: string, seq: number): Promise<number[]> => {
    const at: (number | undefined)[] = new Array(MEMBERS);
    const deadline = performance.now() + 20_000;
    for (;;) {
      let missing = 0;
      for (let i = 0; i < MEMBERS; i++) {
        if (at[i] !== undefined) continue;
        const rec = recs[i]!;
        const k = rec.frames.findIndex((f) => f.type === 'message' && f.conv === conv && f.seq === seq);
        if (k >= 0) at[i] = rec.at[k];
        else missing++;
      }
      if (missing === 0) return at as number[];
      assert.ok(performance.now() < deadline, `${missing} members still lack seq ${seq}`);
      await sleep(5);
    }
  };

  const created = await sender.request({ type: 'create_group', name: 'Everyone', members: users.slice(1) });
  assert.equal(created.ok, true, JSON.stringify(created).slice(0, 300));
  const conv: string = created.conv;
  await everyoneHas(conv, 1);
  const info = await sender.request({ type: 'group_info', conv });
  assert.equal(info.members.length, MEMBERS);

  for (let k = 1; k <= MESSAGES; k++) {
    const sent = performance.now();
    let replied = 0;
    const reply = await sender
      .request({ type: 'send', conv, cmid: `fan-${k}`, kind: 'text', body: `message ${k}` }, 20_000)
      .then((r) => {
        replied = performance.now();
        return r;
      });
    assert.equal(reply.seq, k + 1);
    const arrivals = await everyoneHas(conv, k + 1);
    const last = Math.max(...arrivals);
    const first = Math.min(...arrivals);
    console.log(
      `${MEMBERS}-member fan-out: reply after ${(replied - sent).toFixed(1)} ms, ` +
        `last delivery ${(last - replied).toFixed(1)} ms after the reply ` +
        `(first delivery ${(first - replied).toFixed(1)} ms after it)`,
    );
    assert.ok(replied <= last, 'the reply arrives before the fan-out completes');
  }

  // Exactly once each, with each member's own contiguous inbox numbers (fresh users: 1..6).
  await sender.request({ type: 'ping' });
  for (const [i, rec] of recs.entries()) {
    const numbered = rec.frames.filter((f: Frame) => typeof f.inbox === 'number');
    assert.deepEqual(
      numbered.map((f) => [f.type, f.inbox, f.seq]),
      Array.from({ length: MESSAGES + 1 }, (_, k) => ['message', k + 1, k + 1]),
      users[i],
    );
  }
});
