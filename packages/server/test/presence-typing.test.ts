// Presence and typing against an in-process server: subscription replies, online/offline events
// across devices and heartbeat timeouts, privacy and blocking, the subscription limit, and typing
// delivery, rate limit and blocking.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  eventually,
  type Frame,
  sleep,
  startServer,
  syncAll,
  type TestClient,
  type TestServer,
} from './helpers.js';

/** Long enough for the server to see a terminated socket close (localhost). */
const CLOSE_SETTLE_MS = 100;

let s: TestServer;
before(async () => {
  s = await startServer({ receiptCoalesceMs: 20 });
});
after(() => s.stop());

async function subscribe(c: TestClient, users: string[]): Promise<Frame[]> {
  const r = await c.request({ type: 'presence_sub', users });
  assert.equal(r.ok, true, JSON.stringify(r).slice(0, 300));
  return r.presence;
}

const presenceOf = (user: string) => (f: Frame) => f.type === 'presence' && f.user === user;

/**
 * Subscribes `watcher` to `user` until the answer is `status` (5 s at most), and returns the last
 * answer. A block or unblock made on one process reaches the others' caches through the bus, a
 * moment after its reply (in cluster mode, possibly after the watcher's next request).
 */
async function seenBy(watcher: TestClient, user: string, status: string): Promise<Frame[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const answer = await subscribe(watcher, [user]);
    if (answer[0]?.status === status || Date.now() > deadline) return answer;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Connects `marker` (which `watcher` subscribed to) and waits for its online event: an ordering barrier. */
async function barrier(srv: TestServer, watcher: TestClient, marker: string): Promise<TestClient> {
  const m = await srv.client(marker);
  assert.deepEqual(await watcher.nextEvent(presenceOf(marker)), {
    type: 'presence',
    user: marker,
    status: 'online',
  });
  return m;
}

/** Closes a client and gives the server a moment to see it. */
async function disconnect(c: TestClient): Promise<void> {
  c.close();
  await c.closed();
  await sleep(CLOSE_SETTLE_MS);
}

describe('presence', () => {
  test('presence_sub answers in the order asked: offline without a time, online, offline with last_seen', async () => {
    const w = await s.client('p1-w');
    await s.client('p1-on');
    const gone = await s.client('p1-gone');
    const t0 = Date.now();
    await disconnect(gone);
    const t1 = Date.now();
    const reply = await subscribe(w, ['p1-never', 'p1-on', 'p1-gone']);
    assert.equal(reply.length, 3);
    assert.deepEqual(reply[0], { user: 'p1-never', status: 'offline' });
    assert.deepEqual(reply[1], { user: 'p1-on', status: 'online' });
    const { last_seen, ...rest } = reply[2]!;
    assert.deepEqual(rest, { user: 'p1-gone', status: 'offline' });
    assert.ok(last_seen >= t0 && last_seen <= t1, `last_seen ${last_seen} in [${t0}, ${t1}]`);
    // Subscribing again answers again (and counts once).
    assert.deepEqual(await subscribe(w, ['p1-on']), [{ user: 'p1-on', status: 'online' }]);
  });

  test('online on the first device; nothing for a second device or one of two leaving; offline with last_seen when the last leaves', async () => {
    const w = await s.client('p2-w');
    assert.deepEqual(await subscribe(w, ['p2-x', 'p2-m1', 'p2-m2']), [
      { user: 'p2-x', status: 'offline' },
      { user: 'p2-m1', status: 'offline' },
      { user: 'p2-m2', status: 'offline' },
    ]);
    const x1 = await s.client('p2-x', 'one');
    assert.deepEqual(await w.nextEvent(presenceOf('p2-x')), {
      type: 'presence',
      user: 'p2-x',
      status: 'online',
    });
    const x2 = await s.client('p2-x', 'two');
    await disconnect(x1);
    await barrier(s, w, 'p2-m1');
    assert.deepEqual(w.events.filter(presenceOf('p2-x')), []);
    assert.deepEqual(await subscribe(w, ['p2-x']), [{ user: 'p2-x', status: 'online' }]);
    const t0 = Date.now();
    x2.close();
    const off = await w.nextEvent(presenceOf('p2-x'));
    const t1 = Date.now();
    const { last_seen, ...rest } = off;
    assert.deepEqual(rest, { type: 'presence', user: 'p2-x', status: 'offline' });
    assert.ok(last_seen >= t0 && last_seen <= t1, `last_seen ${last_seen} in [${t0}, ${t1}]`);
    // Exactly one event each way.
    await barrier(s, w, 'p2-m2');
    assert.deepEqual(w.events.filter(presenceOf('p2-x')), []);
  });

  test('a device replaced by a newer connection (4409) causes no offline/online flap', async () => {
    const w = await s.client('p7-w');
    await subscribe(w, ['p7-x', 'p7-m']);
    const old = await s.client('p7-x', 'phone');
    await w.nextEvent(presenceOf('p7-x'));
    await s.client('p7-x', 'phone');
    assert.equal(await old.closed(), 4409);
    await sleep(CLOSE_SETTLE_MS);
    await barrier(s, w, 'p7-m');
    assert.deepEqual(w.events.filter(presenceOf('p7-x')), []);
    assert.deepEqual(await subscribe(w, ['p7-x']), [{ user: 'p7-x', status: 'online' }]);
  });

  test('last_seen "nobody": offline without a time, in the reply and in the event', async () => {
    const w = await s.client('p3-w');
    const x = await s.client('p3-x');
    const set = await x.request({ type: 'settings', last_seen: 'nobody' });
    assert.deepEqual([set.read_receipts, set.last_seen], [true, 'nobody']);
    assert.deepEqual(await subscribe(w, ['p3-x']), [{ user: 'p3-x', status: 'online' }]);
    x.close();
    assert.deepEqual(await w.nextEvent(presenceOf('p3-x')), {
      type: 'presence',
      user: 'p3-x',
      status: 'offline',
    });
    assert.deepEqual(await subscribe(w, ['p3-x']), [{ user: 'p3-x', status: 'offline' }]);
    // The time is still kept: shown again once the user allows it.
    const x2 = await s.client('p3-x', 'd2');
    await w.nextEvent(presenceOf('p3-x'));
    await x2.request({ type: 'settings', last_seen: 'everyone' });
    await disconnect(x2);
    const [v] = await subscribe(w, ['p3-x']);
    assert.equal(typeof v!.last_seen, 'number');
  });

  test('a watcher the user blocked sees them offline without last_seen and gets no events', async () => {
    const w = await s.client('p4-w');
    const v = await s.client('p4-v');
    const x = await s.client('p4-x');
    const blocked = await x.request({ type: 'block', user: 'p4-w' });
    assert.deepEqual(blocked, { type: 'reply', id: blocked.id, ok: true });
    assert.deepEqual(await subscribe(w, ['p4-x', 'p4-m1', 'p4-m2']), [
      { user: 'p4-x', status: 'offline' },
      { user: 'p4-m1', status: 'offline' },
      { user: 'p4-m2', status: 'offline' },
    ]);
    await subscribe(v, ['p4-x']);
    await disconnect(x);
    // The other watcher (control) sees the change; the blocked one does not.
    const off = await v.nextEvent(presenceOf('p4-x'));
    assert.equal(typeof off.last_seen, 'number');
    assert.deepEqual(await subscribe(w, ['p4-x']), [{ user: 'p4-x', status: 'offline' }]);
    const x2 = await s.client('p4-x');
    await v.nextEvent(presenceOf('p4-x'));
    await barrier(s, w, 'p4-m1');
    assert.deepEqual(w.events.filter(presenceOf('p4-x')), []);
    // Unblocked: the truth again, and events again.
    await x2.request({ type: 'unblock', user: 'p4-w' });
    assert.deepEqual(await seenBy(w, 'p4-x', 'online'), [{ user: 'p4-x', status: 'online' }]);
    // Blocked while already subscribed: the events stop.
    await x2.request({ type: 'block', user: 'p4-w' });
    assert.deepEqual(await seenBy(w, 'p4-x', 'offline'), [{ user: 'p4-x', status: 'offline' }]);
    await disconnect(x2);
    await v.nextEvent(presenceOf('p4-x'));
    await barrier(s, w, 'p4-m2');
    assert.deepEqual(w.events.filter(presenceOf('p4-x')), []);
  });

  test('presence events go only to subscribers; presence_unsub stops them', async () => {
    const sub = await s.client('p5-sub');
    const non = await s.client('p5-non');
    await subscribe(sub, ['p5-x', 'p5-m1', 'p5-m2']);
    await subscribe(non, ['p5-m1', 'p5-m2']);
    const x = await s.client('p5-x');
    await sub.nextEvent(presenceOf('p5-x'));
    await barrier(s, non, 'p5-m1');
    assert.deepEqual(non.events.filter(presenceOf('p5-x')), []);
    const unsub = await sub.request({ type: 'presence_unsub', users: ['p5-x'] });
    assert.deepEqual(unsub, { type: 'reply', id: unsub.id, ok: true });
    await disconnect(x);
    await s.client('p5-x');
    await barrier(s, sub, 'p5-m2');
    assert.deepEqual(sub.events.filter(presenceOf('p5-x')), []);
  });

  test('at most 1,000 subscriptions per connection: 1,000 across two frames, then one more is too_large', async () => {
    const w = await s.client('p6-w');
    const names = Array.from({ length: 1001 }, (_, i) => `p6-u${i}`);
    assert.equal((await subscribe(w, names.slice(0, 600))).length, 600);
    assert.equal((await subscribe(w, names.slice(600, 1000))).length, 400);
    // Already subscribed: counts once.
    assert.equal((await subscribe(w, names.slice(0, 10))).length, 10);
    const over = await w.request({ type: 'presence_sub', users: [names[1000]] });
    assert.equal(over.error?.code, 'too_large');
    await w.request({ type: 'presence_unsub', users: [names[0]] });
    assert.deepEqual(await subscribe(w, [names[1000]!]), [{ user: 'p6-u1000', status: 'offline' }]);
    // In one frame, 1,001 is too_large too.
    const fresh = await s.client('p6-w', 'other');
    const big = await fresh.request({ type: 'presence_sub', users: names });
    assert.equal(big.error?.code, 'too_large');
  });
});

describe('presence with a 200 ms heartbeat', () => {
  let h: TestServer;
  before(async () => {
    h = await startServer({ heartbeatMs: 200 });
  });
  after(() => h.stop());

  test('a silent connection is dropped after twice the heartbeat and its subscribers see offline', async () => {
    const w = await h.client('hb-w');
    const pinger = setInterval(() => w.sendRaw(JSON.stringify({ type: 'ping' })), 100);
    try {
      const connected = Date.now(); // the server hears from x at or after this
      const x = await h.client('hb-x');
      assert.deepEqual(await subscribe(w, ['hb-x']), [{ user: 'hb-x', status: 'online' }]);
      assert.equal(await x.closed(3000), 1006);
      const off = await w.nextEvent(presenceOf('hb-x'), 3000);
      const { last_seen, ...rest } = off;
      assert.deepEqual(rest, { type: 'presence', user: 'hb-x', status: 'offline' });
      assert.ok(
        last_seen >= connected + 400 && last_seen <= Date.now(),
        `last_seen ${last_seen - connected} ms`,
      );
      assert.equal(w.closeCode, null, 'the pinging watcher stays');
    } finally {
      clearInterval(pinger);
    }
  });
});

describe('typing', () => {
  async function group(admin: TestClient, members: string[]): Promise<string> {
    const r = await admin.request({ type: 'create_group', name: 'Typing', members });
    assert.equal(r.ok, true, JSON.stringify(r));
    return r.conv;
  }
  const typingFrom = (user: string) => (f: Frame) => f.type === 'typing' && f.user === user;

  test('typing reaches the other members’ live devices only, never the typist’s own, and is never stored', async () => {
    const a1 = await s.client('t1-a', 'one');
    const a2 = await s.client('t1-a', 'two');
    const b1 = await s.client('t1-b', 'one');
    const b2 = await s.client('t1-b', 'two');
    const conv = await group(a1, ['t1-b', 't1-c']);
    const cHead = async () => {
      const c = await s.client('t1-c');
      const events = await syncAll(c);
      c.close();
      await c.closed();
      return events;
    };
    // c's inbox has the creation (in cluster mode c's inbox may be another process's: a member
    // having it live says nothing about when c's entry is stored).
    let initial: Frame[] = [];
    await eventually(async () => {
      initial = await cHead();
      assert.deepEqual(
        initial.map((e) => [e.type, e.conv, e.seq]),
        [['message', conv, 1]],
      );
    });
    const r = await a1.request({ type: 'typing', conv, state: 'start' });
    assert.deepEqual(r, { type: 'reply', id: r.id, ok: true });
    for (const b of [b1, b2]) {
      assert.deepEqual(await b.nextEvent(typingFrom('t1-a')), {
        type: 'typing',
        conv,
        user: 't1-a',
        state: 'start',
      });
    }
    // Barrier: b types back; a's devices get that, and had nothing from themselves before it.
    await b1.request({ type: 'typing', conv, state: 'start' });
    for (const a of [a1, a2]) {
      assert.deepEqual(await a.nextEvent(typingFrom('t1-b')), {
        type: 'typing',
        conv,
        user: 't1-b',
        state: 'start',
      });
      assert.deepEqual(a.events.filter(typingFrom('t1-a')), []);
    }
    assert.deepEqual(b2.events.filter(typingFrom('t1-b')), [], 'b’s own other device');
    // c was offline: nothing was stored for them, and nothing arrives on connecting.
    const afterTyping = await cHead();
    assert.deepEqual(afterTyping, initial);
    assert.ok(afterTyping.every((e) => e.type !== 'typing'));
    const a1Sync = await syncAll(a1);
    assert.ok(a1Sync.every((e) => e.type !== 'typing'));
    // Direct conversations too.
    await a1.request({ type: 'typing', conv: 'dm:t1-a:t1-b', state: 'start' });
    assert.deepEqual(await b2.nextEvent(typingFrom('t1-a')), {
      type: 'typing',
      conv: 'dm:t1-a:t1-b',
      user: 't1-a',
      state: 'start',
    });
  });

  test('at most one start per 2 s per conversation is forwarded; a stop only after a forwarded start', async () => {
    const a = await s.client('t2-a');
    const b = await s.client('t2-b');
    const conv = await group(a, ['t2-b']);
    const conv2 = await group(a, ['t2-b']);
    const type = async (c: string, state: 'start' | 'stop') =>
      assert.equal((await a.request({ type: 'typing', conv: c, state })).ok, true);
    await type(conv, 'stop'); // nothing was shown: dropped
    await type(conv, 'start'); // forwarded
    await type(conv, 'start'); // dropped
    await type(conv2, 'start'); // another conversation: forwarded
    await type(conv, 'stop'); // forwarded
    await type(conv, 'stop'); // already stopped: dropped
    await type(conv, 'start'); // within 2 s of the last forwarded start: dropped, even after a stop
    await type(conv, 'stop'); // that start was not shown: dropped
    await sleep(2100);
    await type(conv, 'start'); // the window has passed: forwarded
    await type(conv, 'stop'); // forwarded
    await type(conv2, 'stop'); // forwarded (the end marker)
    const got: Frame[] = [];
    for (;;) {
      const e = await b.nextEvent(typingFrom('t2-a'));
      got.push(e);
      if (e.conv === conv2 && e.state === 'stop') break;
    }
    assert.deepEqual(
      got.map((e) => [e.conv === conv ? 1 : 2, e.state]),
      [
        [1, 'start'],
        [2, 'start'],
        [1, 'stop'],
        [1, 'start'],
        [1, 'stop'],
        [2, 'stop'],
      ],
    );
  });

  test('alternating start and stop, or a flood of stops, forwards one start and one stop', async () => {
    const a = await s.client('t4-a');
    const b = await s.client('t4-b');
    const conv = await group(a, ['t4-b']);
    for (let i = 0; i < 250; i++) {
      a.sendRaw(JSON.stringify({ type: 'typing', conv, state: 'start' }));
      a.sendRaw(JSON.stringify({ type: 'typing', conv, state: 'stop' }));
    }
    for (let i = 0; i < 500; i++) a.sendRaw(JSON.stringify({ type: 'typing', conv, state: 'stop' }));
    // Barrier: a request after the flood is answered once every frame before it was handled.
    assert.equal((await a.request({ type: 'ping' })).ok, true);
    await sleep(100);
    assert.deepEqual(
      b.events.filter(typingFrom('t4-a')).map((e) => e.state),
      ['start', 'stop'],
    );
  });

  test('the blocker receives no typing from the blocked user (group and direct); others still do', async () => {
    const a = await s.client('t3-a');
    const b = await s.client('t3-b');
    const c = await s.client('t3-c');
    const conv = await group(a, ['t3-b', 't3-c']);
    await b.request({ type: 'block', user: 't3-a' });
    const r1 = await a.request({ type: 'typing', conv, state: 'start' });
    const r2 = await a.request({ type: 'typing', conv: 'dm:t3-a:t3-b', state: 'start' });
    assert.deepEqual([r1.ok, r2.ok], [true, true]);
    await c.nextEvent(typingFrom('t3-a'));
    // Barrier: c types; b gets that, and nothing from a before it.
    await c.request({ type: 'typing', conv, state: 'start' });
    await b.nextEvent(typingFrom('t3-c'));
    assert.deepEqual(b.events.filter(typingFrom('t3-a')), []);
    // The blocker's own typing still reaches the blocked user.
    await b.request({ type: 'typing', conv, state: 'start' });
    assert.deepEqual(await a.nextEvent(typingFrom('t3-b')), {
      type: 'typing',
      conv,
      user: 't3-b',
      state: 'start',
    });
  });
});
