// Receipt watermarks against an in-process server: merging across devices in any order, who is
// told of a move, read-receipt privacy on either side, and coalescing of one-by-one receipts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Frame, sleep, startServer, syncAll, type TestClient, type TestServer } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer({ receiptCoalesceMs: 20, groupAddsPerRecipientBurst: 10_000 });
});
after(() => s.stop());

let cmids = 0;
const send = (c: TestClient, conv: string, body = 'x') =>
  c.request({ type: 'send', conv, cmid: `c${++cmids}`, kind: 'text', body });

async function create(c: TestClient, name: string, members: string[]): Promise<string> {
  const r = await c.request({ type: 'create_group', name, members });
  assert.equal(r.ok, true, JSON.stringify(r));
  return r.conv;
}

async function receipt(c: TestClient, conv: string, kind: 'delivered' | 'read', seq: number) {
  const r = await c.request({ type: 'receipt', conv, kind, seq });
  assert.deepEqual([r.ok, r.error], [true, undefined], JSON.stringify(r));
}

/** `user`'s watermarks as `asker` sees them in `receipts`. */
async function marks(asker: TestClient, conv: string): Promise<Frame[]> {
  const r = await asker.request({ type: 'receipts', conv });
  assert.equal(r.ok, true, JSON.stringify(r));
  return r.members;
}

const receiptEvent = (conv: string, user: string, kind: string, seq: number) => (f: Frame) =>
  f.type === 'receipt' && f.conv === conv && f.user === user && f.kind === kind && f.seq === seq;

/** The receipt events in a user's synced inbox for `conv` by `user`, as [kind, seq]. */
async function receiptsFrom(c: TestClient, conv: string, user: string): Promise<[string, number][]> {
  return (await syncAll(c))
    .filter((e) => e.type === 'receipt' && e.conv === conv && e.user === user)
    .map((e) => [e.kind, e.seq]);
}

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

describe('watermarks', () => {
  test('two devices’ receipts in all 24 orders give the same watermark; lower values change nothing', async () => {
    const sender = await s.client('pm-a');
    const dev1 = await s.client('pm-b', 'dev1');
    const dev2 = await s.client('pm-b', 'dev2');
    const devices = { dev1, dev2 };
    const updates = [
      { dev: 'dev1', kind: 'delivered', seq: 3 },
      { dev: 'dev2', kind: 'read', seq: 2 },
      { dev: 'dev2', kind: 'delivered', seq: 5 },
      { dev: 'dev1', kind: 'read', seq: 4 },
    ] as const;
    const orders = permutations(updates);
    assert.equal(orders.length, 24);
    // The orders run side by side (each on its own conversation); within one, strictly in turn.
    await Promise.all(
      orders.map(async (order, i) => {
        // A fresh conversation per order: seq 1 is the creation, 2..6 the sender's messages.
        const conv = await create(sender, `perm ${i}`, ['pm-b']);
        for (let k = 0; k < 5; k++) await send(sender, conv);
        for (const u of order) await receipt(devices[u.dev], conv, u.kind, u.seq);
        const what = `order ${i}: ${order.map((u) => `${u.kind} ${u.seq} on ${u.dev}`).join(', ')}`;
        assert.deepEqual(
          (await marks(sender, conv)).find((m) => m.user === 'pm-b'),
          { user: 'pm-b', delivered: 5, read: 4 },
          what,
        );
        // The sender hears of the final positions.
        await sender.nextEvent(receiptEvent(conv, 'pm-b', 'read', 4));
        await sender.nextEvent(receiptEvent(conv, 'pm-b', 'delivered', 5));
        // Lower values are accepted and ignored.
        await receipt(dev1, conv, 'read', 1);
        await receipt(dev2, conv, 'delivered', 2);
        await receipt(dev2, conv, 'read', 4);
        assert.deepEqual(
          (await marks(dev1, conv)).find((m) => m.user === 'pm-b'),
          { user: 'pm-b', delivered: 5, read: 4 },
          what,
        );
      }),
    );
  });

  test('read implies delivered; one move of both gives the sender only the read event', async () => {
    const a = await s.client('ri-a');
    const b = await s.client('ri-b');
    const conv = 'dm:ri-a:ri-b';
    for (let k = 0; k < 3; k++) await send(a, conv);
    await receipt(b, conv, 'read', 2);
    assert.deepEqual(await marks(a, conv), [
      { user: 'ri-a', delivered: 3, read: 3 },
      { user: 'ri-b', delivered: 2, read: 2 },
    ]);
    await receipt(b, conv, 'delivered', 3);
    await a.nextEvent(receiptEvent(conv, 'ri-b', 'delivered', 3));
    assert.deepEqual(await receiptsFrom(a, conv, 'ri-b'), [
      ['read', 2],
      ['delivered', 3],
    ]);
    // A receipt beyond the last seq is bad_request.
    const beyond = await b.request({ type: 'receipt', conv, kind: 'read', seq: 4 });
    assert.equal(beyond.error?.code, 'bad_request');
  });

  test('events go to the senders of the newly covered range only; read (not delivered) also to the reader’s inbox', async () => {
    const a = await s.client('ro-a');
    const b = await s.client('ro-b');
    const c = await s.client('ro-c');
    const d1 = await s.client('ro-d', 'one');
    const d2 = await s.client('ro-d', 'two');
    const conv = await create(a, 'Ranges', ['ro-b', 'ro-c', 'ro-d']); // 1 (from ro-a)
    await send(a, conv); // 2
    await send(a, conv); // 3
    await send(b, conv); // 4
    await send(c, conv); // 5
    await d1.nextEvent((f) => f.type === 'message' && f.conv === conv && f.seq === 5);
    await receipt(d1, conv, 'read', 3); // covers 1..3: ro-a only
    await receipt(d1, conv, 'read', 4); // covers 4: ro-b only
    await receipt(d1, conv, 'delivered', 5); // covers 5: ro-c only
    await c.nextEvent(receiptEvent(conv, 'ro-d', 'delivered', 5));
    // The other device of the reader sees the read moves (not the delivered one).
    await d2.nextEvent(receiptEvent(conv, 'ro-d', 'read', 3));
    await d2.nextEvent(receiptEvent(conv, 'ro-d', 'read', 4));
    assert.deepEqual(await receiptsFrom(a, conv, 'ro-d'), [['read', 3]]);
    assert.deepEqual(await receiptsFrom(b, conv, 'ro-d'), [['read', 4]]);
    assert.deepEqual(await receiptsFrom(c, conv, 'ro-d'), [['delivered', 5]]);
    assert.deepEqual(await receiptsFrom(d1, conv, 'ro-d'), [
      ['read', 3],
      ['read', 4],
    ]);
    const ev = (await syncAll(a)).find((e) => e.type === 'receipt' && e.user === 'ro-d')!;
    assert.deepEqual(Object.keys(ev).sort(), ['conv', 'inbox', 'kind', 'seq', 'ts', 'type', 'user']);
    assert.deepEqual(await marks(b, conv), [
      { user: 'ro-a', delivered: 3, read: 3 },
      { user: 'ro-b', delivered: 4, read: 4 },
      { user: 'ro-c', delivered: 5, read: 5 },
      { user: 'ro-d', delivered: 5, read: 4 },
    ]);
  });

  test('receipt events go only to current members: a removed sender hears nothing after the removal', async () => {
    const a = await s.client('rm-a');
    const b = await s.client('rm-b');
    const c = await s.client('rm-c');
    const conv = await create(a, 'Removed sender', ['rm-b', 'rm-c']);
    await send(b, conv); // 2 (from rm-b)
    assert.equal((await a.request({ type: 'remove_members', conv, users: ['rm-b'] })).seq, 3);
    await send(a, conv); // 4 (from rm-a)
    await c.nextEvent((f) => f.type === 'message' && f.conv === conv && f.seq === 4);
    await receipt(c, conv, 'read', 4); // covers rm-b's seq 2 and rm-a's seq 4
    await a.nextEvent(receiptEvent(conv, 'rm-c', 'read', 4));
    await c.nextEvent(receiptEvent(conv, 'rm-c', 'read', 4)); // c's own inbox: the batch is stored
    assert.deepEqual(await receiptsFrom(b, conv, 'rm-c'), []);
    // Before the removal, rm-b was told: a read by rm-a (its send implies reading) covered seq 2.
    assert.deepEqual(await receiptsFrom(b, conv, 'rm-a'), []);
  });

  for (const how of ['leave', 'remove_members'] as const) {
    test(`a member who leaves (by ${how}) sends no read receipt for it`, async () => {
      const p = `lv-${how === 'leave' ? 'l' : 'r'}`;
      const a = await s.client(`${p}-a`);
      const b = await s.client(`${p}-b`);
      const c = await s.client(`${p}-c`);
      const conv = await create(a, 'Leaving', [`${p}-b`, `${p}-c`]);
      await send(b, conv); // 2 (from b)
      await c.nextEvent((f) => f.type === 'message' && f.conv === conv && f.seq === 2);
      const frame =
        how === 'leave' ? { type: 'leave', conv } : { type: 'remove_members', conv, users: [`${p}-c`] };
      assert.equal((await c.request(frame)).seq, 3);
      // Barrier: a's send implies a's read of 1..4, which covers b's message.
      await send(a, conv); // 4
      await b.nextEvent(receiptEvent(conv, `${p}-a`, 'read', 4));
      // The one who left never read b's message.
      assert.deepEqual(await receiptsFrom(b, conv, `${p}-c`), []);
    });
  }

  test('system messages produce no receipt events; a group change marks its actor’s read', async () => {
    const a = await s.client('sy-a');
    const b = await s.client('sy-b');
    const conv = await create(a, 'System', ['sy-b']); // 1
    assert.equal((await a.request({ type: 'update_group', conv, name: 'Renamed' })).seq, 2);
    await b.nextEvent((f) => f.type === 'message' && f.conv === conv && f.seq === 2);
    await receipt(b, conv, 'read', 2); // covers only system messages
    await send(a, conv); // 3
    await receipt(b, conv, 'read', 3); // covers a's message
    await a.nextEvent(receiptEvent(conv, 'sy-b', 'read', 3));
    assert.deepEqual(await receiptsFrom(a, conv, 'sy-b'), [['read', 3]]);
    assert.deepEqual((await marks(b, conv))[0], { user: 'sy-a', delivered: 3, read: 3 });
  });
});

describe('read receipts turned off', () => {
  test('reader off: the sender gets delivered but no read; the reader’s own devices still get read', async () => {
    const a = await s.client('pv-a');
    const b1 = await s.client('pv-b', 'one');
    const b2 = await s.client('pv-b', 'two');
    const conv = 'dm:pv-a:pv-b';
    const set = await b1.request({ type: 'settings', read_receipts: false });
    assert.deepEqual([set.read_receipts, set.last_seen], [false, 'everyone']);
    for (let k = 0; k < 3; k++) await send(a, conv);
    await receipt(b1, conv, 'delivered', 3);
    await a.nextEvent(receiptEvent(conv, 'pv-b', 'delivered', 3));
    await receipt(b1, conv, 'read', 3);
    await b2.nextEvent(receiptEvent(conv, 'pv-b', 'read', 3));
    // One update moving both: delivered is unaffected by the privacy setting.
    await send(a, conv); // 4
    await send(a, conv); // 5
    await receipt(b2, conv, 'read', 5);
    await b1.nextEvent(receiptEvent(conv, 'pv-b', 'read', 5));
    await a.nextEvent(receiptEvent(conv, 'pv-b', 'delivered', 5));
    assert.deepEqual(await receiptsFrom(a, conv, 'pv-b'), [
      ['delivered', 3],
      ['delivered', 5],
    ]);
    assert.deepEqual(await receiptsFrom(b1, conv, 'pv-b'), [
      ['read', 3],
      ['read', 5],
    ]);
    // `receipts`: the sender sees no read for pv-b; pv-b sees their own, and no read of others.
    assert.deepEqual(await marks(a, conv), [
      { user: 'pv-a', delivered: 5, read: 5 },
      { user: 'pv-b', delivered: 5, read: 0 },
    ]);
    assert.deepEqual(await marks(b2, conv), [
      { user: 'pv-a', delivered: 5, read: 0 },
      { user: 'pv-b', delivered: 5, read: 5 },
    ]);
  });

  test('sender off: gets no read events from others (delivered still), and sees no read of others', async () => {
    const a = await s.client('ps-a');
    const b1 = await s.client('ps-b', 'one');
    const b2 = await s.client('ps-b', 'two');
    const conv = 'dm:ps-a:ps-b';
    assert.equal((await a.request({ type: 'settings', read_receipts: false })).read_receipts, false);
    for (let k = 0; k < 3; k++) await send(a, conv);
    await receipt(b1, conv, 'read', 2);
    await b2.nextEvent(receiptEvent(conv, 'ps-b', 'read', 2));
    await receipt(b1, conv, 'delivered', 3);
    await a.nextEvent(receiptEvent(conv, 'ps-b', 'delivered', 3));
    assert.deepEqual(await receiptsFrom(a, conv, 'ps-b'), [
      ['delivered', 2],
      ['delivered', 3],
    ]);
    assert.deepEqual(await marks(a, conv), [
      { user: 'ps-a', delivered: 3, read: 3 },
      { user: 'ps-b', delivered: 3, read: 0 },
    ]);
    assert.deepEqual(await marks(b1, conv), [
      { user: 'ps-a', delivered: 3, read: 0 },
      { user: 'ps-b', delivered: 3, read: 2 },
    ]);
    // Turned back on: read events flow again.
    assert.equal((await a.request({ type: 'settings', read_receipts: true })).read_receipts, true);
    await receipt(b1, conv, 'read', 3);
    await a.nextEvent(receiptEvent(conv, 'ps-b', 'read', 3));
    assert.deepEqual((await marks(a, conv))[1], { user: 'ps-b', delivered: 3, read: 3 });
  });

  test('in a group, `receipts` hides read for a member with receipts off, and from them', async () => {
    const a = await s.client('gm-a');
    const b = await s.client('gm-b');
    const c = await s.client('gm-c');
    await b.request({ type: 'settings', read_receipts: false });
    const conv = await create(a, 'Masks', ['gm-b', 'gm-c']);
    await send(a, conv); // 2
    await c.nextEvent((f) => f.type === 'message' && f.conv === conv && f.seq === 2);
    await receipt(b, conv, 'read', 2);
    await receipt(c, conv, 'read', 1);
    await send(a, conv); // 3: a reads up to 3
    await a.nextEvent((f) => f.type === 'message' && f.conv === conv && f.seq === 3);
    let seen: Frame[] = [];
    for (let i = 0; i < 50; i++) {
      seen = await marks(a, conv);
      if (seen[0]!.read === 3) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(seen, [
      { user: 'gm-a', delivered: 3, read: 3 },
      { user: 'gm-b', delivered: 2, read: 0 },
      { user: 'gm-c', delivered: 1, read: 1 },
    ]);
    assert.deepEqual(await marks(b, conv), [
      { user: 'gm-a', delivered: 3, read: 0 },
      { user: 'gm-b', delivered: 2, read: 2 },
      { user: 'gm-c', delivered: 1, read: 0 },
    ]);
    assert.deepEqual(await marks(c, conv), [
      { user: 'gm-a', delivered: 3, read: 3 },
      { user: 'gm-b', delivered: 2, read: 0 },
      { user: 'gm-c', delivered: 1, read: 1 },
    ]);
  });
});

describe('coalescing (default 50 ms window)', () => {
  let d: TestServer;
  before(async () => {
    d = await startServer();
  });
  after(() => d.stop());

  /** Sends 200 receipts one by one (`gapMs` apart, or back to back) and counts the sender's events. */
  async function oneByOne(name: string, kind: 'delivered' | 'read', gapMs: number): Promise<number> {
    const a = await d.client(`${name}-a`);
    const b = await d.client(`${name}-b`);
    const conv = `dm:${name}-a:${name}-b`;
    const acks = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        a.request({ type: 'send', conv, cmid: `m${i}`, kind: 'text', body: `${i}` }, 20_000),
      ),
    );
    assert.equal(acks.at(-1)!.seq, 200);
    // 200 receipt frames without id.
    for (let seq = 1; seq <= 200; seq++) {
      b.sendRaw(JSON.stringify({ type: 'receipt', conv, kind, seq }));
      if (gapMs > 0) await sleep(gapMs);
    }
    const got: Frame[] = [];
    for (;;) {
      const e = await a.nextEvent((f) => f.type === 'receipt' && f.conv === conv && f.user === `${name}-b`);
      got.push(e);
      if (e.seq === 200) break;
    }
    assert.ok(
      got.every((e, i) => e.kind === kind && (i === 0 || e.seq > got[i - 1]!.seq)),
      JSON.stringify(got),
    );
    // Nothing more after the final one.
    assert.equal((await receiptsFrom(a, conv, `${name}-b`)).length, got.length);
    return got.length;
  }

  for (const kind of ['delivered', 'read'] as const) {
    test(`200 ${kind} receipts sent back to back produce a handful of events`, async () => {
      const n = await oneByOne(`co-${kind}`, kind, 0);
      console.log(`receipt coalescing: 200 ${kind} receipts → ${n} events`);
      assert.ok(n >= 1 && n <= 10, `${n} events`);
    });
  }

  test('200 read receipts 1 ms apart (a reader scrolling) are coalesced too', async () => {
    const started = performance.now();
    const n = await oneByOne('co-paced', 'read', 1);
    const ms = performance.now() - started;
    console.log(`receipt coalescing: 200 read receipts 1 ms apart → ${n} events (over ${ms.toFixed(0)} ms)`);
    // Batches gather for the window and then while the previous batch is stored, so a steady
    // stream yields about one event per store commit: the count depends on the disk. The first
    // window alone takes in ~40 receipts, which bounds the count on any machine.
    assert.ok(n <= 160, `${n} events`);
  });
});
