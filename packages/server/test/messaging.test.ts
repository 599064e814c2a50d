// Ordering, idempotency, multi-device and offline delivery, against an in-process server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Frame, startServer, type TestClient, type TestServer } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.stop());

/** Collects `n` events of `type` from a client, in arrival order. */
async function collect(
  c: TestClient,
  n: number,
  pred: (f: Frame) => boolean,
  timeoutMs = 10_000,
): Promise<Frame[]> {
  const out: Frame[] = [];
  while (out.length < n) out.push(await c.nextEvent(pred, timeoutMs));
  return out;
}

test('500 pipelined sends arrive with seqs 1..500 in send order', async () => {
  const a = await s.client('ord-a');
  const b = await s.client('ord-b');
  const conv = 'dm:ord-a:ord-b';
  const replies = Array.from({ length: 500 }, (_, i) =>
    a.request({ type: 'send', conv, cmid: `m${i}`, kind: 'text', body: `#${i}` }, 20_000),
  );
  const acks = await Promise.all(replies);
  assert.deepEqual(
    acks.map((r) => r.seq),
    Array.from({ length: 500 }, (_, i) => i + 1),
  );
  const got = await collect(b, 500, (f) => f.type === 'message');
  assert.deepEqual(
    got.map((m) => [m.seq, m.body]),
    Array.from({ length: 500 }, (_, i) => [i + 1, `#${i}`]),
  );
  assert.deepEqual(
    got.map((m) => m.inbox),
    Array.from({ length: 500 }, (_, i) => i + 1),
  );
});

test('the same cmid three times stores one message: one seq, dup twice', async () => {
  const a = await s.client('dup-a');
  const frame = { type: 'send', conv: 'dm:dup-a:dup-b', cmid: 'same', kind: 'text', body: 'once' };
  // Two while the first is in flight, one after it is durable.
  const [r1, r2] = await Promise.all([a.request(frame), a.request(frame)]);
  const r3 = await a.request(frame);
  assert.deepEqual([r1.seq, r2.seq, r3.seq], [1, 1, 1]);
  assert.deepEqual([r1.ts, r2.ts], [r3.ts, r3.ts]);
  assert.deepEqual([r1.dup, r2.dup, r3.dup], [undefined, true, true]);
  const hist = await a.request({ type: 'history', conv: 'dm:dup-a:dup-b' });
  assert.equal(hist.messages.length, 1);
  // The same cmid from another sender is a different message.
  const b = await s.client('dup-b');
  const rb = await b.request(frame);
  assert.equal(rb.seq, 2);
  assert.equal(rb.dup, undefined);
});

test('every device of a user gets the same events, the sender’s other device included', async () => {
  const phone = await s.client('md-a', 'phone');
  const laptop = await s.client('md-a', 'laptop');
  const bob1 = await s.client('md-b', 'one');
  const bob2 = await s.client('md-b', 'two');
  await phone.request({ type: 'send', conv: 'dm:md-a:md-b', cmid: 'x1', kind: 'text', body: 'from phone' });
  await bob2.request({ type: 'send', conv: 'dm:md-a:md-b', cmid: 'y1', kind: 'text', body: 'from bob2' });
  const views: Frame[][] = [];
  for (const c of [phone, laptop, bob1, bob2]) views.push(await collect(c, 2, (f) => f.type === 'message'));
  const key = (evs: Frame[]) => evs.map((e) => [e.inbox, e.seq, e.from, e.from_device, e.body]);
  assert.deepEqual(key(views[0]!), key(views[1]!));
  assert.deepEqual(key(views[2]!), key(views[3]!));
  assert.deepEqual(key(views[0]!), [
    [1, 1, 'md-a', 'phone', 'from phone'],
    [2, 2, 'md-b', 'two', 'from bob2'],
  ]);
});

test('an offline recipient syncs 1,000 missed messages with contiguous inbox numbers', async () => {
  const a = await s.client('off-a');
  const conv = 'dm:off-a:off-b';
  const acks = await Promise.all(
    Array.from({ length: 1000 }, (_, i) =>
      a.request({ type: 'send', conv, cmid: `o${i}`, kind: 'text', body: `m${i}` }, 30_000),
    ),
  );
  assert.equal(acks.filter((r) => r.ok).length, 1000);
  await collect(a, 1000, (f) => f.type === 'message', 30_000); // a's own copies: fan-out done
  const b = await s.client('off-b');
  const events: Frame[] = [];
  let cursor = 0;
  let pages = 0;
  for (;;) {
    const r = await b.request({ type: 'sync', after: cursor, limit: 300 });
    assert.equal(r.ok, true);
    events.push(...r.events);
    pages++;
    cursor = r.events.at(-1)?.inbox ?? cursor;
    if (!r.more) break;
  }
  assert.equal(pages, 4);
  assert.equal(events.length, 1000);
  assert.deepEqual(
    events.map((e) => e.inbox),
    Array.from({ length: 1000 }, (_, i) => i + 1),
  );
  assert.deepEqual(
    events.map((e) => e.body),
    Array.from({ length: 1000 }, (_, i) => `m${i}`),
  );
  const head = await b.request({ type: 'sync', after: cursor });
  assert.deepEqual([head.events.length, head.inbox_head, head.more], [0, 1000, false]);
});

test('delivered receipts from the recipient reach the sender once per move', async () => {
  const a = await s.client('rc-a');
  const b = await s.client('rc-b');
  const conv = 'dm:rc-a:rc-b';
  for (let i = 0; i < 3; i++) await a.request({ type: 'send', conv, cmid: `r${i}`, kind: 'text', body: 'x' });
  const got = await collect(b, 3, (f) => f.type === 'message');
  for (const m of got) b.sendRaw(JSON.stringify({ type: 'receipt', conv, kind: 'delivered', seq: m.seq }));
  const last = await a.nextEvent((f) => f.type === 'receipt' && f.kind === 'delivered' && f.seq === 3);
  assert.equal(last.user, 'rc-b');
  // A lower watermark changes nothing.
  const r = await b.request({ type: 'receipt', conv, kind: 'delivered', seq: 1 });
  assert.equal(r.ok, true);
  const marks = await a.request({ type: 'receipts', conv });
  assert.deepEqual(marks.members, [
    { user: 'rc-a', delivered: 3, read: 3 },
    { user: 'rc-b', delivered: 3, read: 0 },
  ]);
});
