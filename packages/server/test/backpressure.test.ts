// Backpressure at the socket: a connection's requests beyond its limits wait (the socket is not
// read meanwhile) and are all answered in order; a reader that keeps up is never cut off however
// large a burst, one that stops reading is; unauthenticated sockets are capped per address.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Frame, sleep, startServer, TestClient, type TestServer } from './helpers.js';

const BIG = 'y'.repeat(64 * 1024 - 100);

describe('pipelining', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ maxPipelinedRequests: 8, maxConcurrentReads: 1 });
  });
  after(() => s.stop());

  test('thousands of frames in one burst are all answered, in order, and the socket is not closed', async () => {
    const c = await s.client('pp-a');
    const replies: string[] = [];
    const done = new Promise<void>((resolve) => {
      c.ws.on('message', (data) => {
        const f = JSON.parse(data.toString()) as Frame;
        if (f.type === 'reply' && typeof f.id === 'string' && f.id.startsWith('p')) {
          replies.push(f.id);
          if (replies.length === 3000) resolve();
        }
      });
    });
    const frames: string[] = [];
    for (let i = 0; i < 3000; i++) {
      frames.push(
        i % 10 === 0
          ? JSON.stringify({ type: 'sync', id: `p${i}`, after: 0, limit: 10 })
          : JSON.stringify({ type: 'ping', id: `p${i}` }),
      );
    }
    // One write: the frames reach the server in as few reads as TCP makes of them.
    const socket = (c.ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
    socket.cork();
    for (const f of frames) c.ws.send(f);
    socket.uncork();
    await done;
    const order = replies.map((id) => Number(id.slice(1)));
    const pings = order.filter((n) => n % 10 !== 0);
    assert.deepEqual(
      pings,
      [...pings].sort((a, b) => a - b),
      'pings (answered at once) come back in the order sent',
    );
    assert.equal(c.closeCode, null);
    assert.equal((await c.request({ type: 'ping' })).ok, true);
  });

  test('sends pipelined past the limit still reach the conversation in the order sent', async () => {
    const a = await s.client('pp-s');
    const conv = 'dm:pp-s:pp-t';
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        a.request({ type: 'send', conv, cmid: `c${i}`, kind: 'text', body: String(i) }),
      ),
    );
    assert.deepEqual(
      replies.map((r) => r.seq),
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
  });
});

describe('slow and fast readers', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ slowReaderMs: 600, maxOutboundBytes: 16 * 1024 * 1024 });
  });
  after(() => s.stop());

  test('a recipient reading at full speed is not closed by a burst of 150 messages of 64 KiB', async () => {
    const sender = await s.client('fr-a');
    const reader = await s.client('fr-b');
    const conv = 'dm:fr-a:fr-b';
    let got = 0;
    reader.ws.on('message', (d) => {
      if ((d as Buffer).includes('"type":"message"')) got++;
    });
    const replies = await Promise.all(
      Array.from({ length: 150 }, (_, i) =>
        sender.request({ type: 'send', conv, cmid: `f${i}`, kind: 'text', body: BIG }, 15_000),
      ),
    );
    assert.ok(replies.every((r) => r.ok));
    for (let i = 0; i < 100 && got < 150; i++) await sleep(50);
    assert.equal(got, 150, 'every message delivered live');
    assert.equal(reader.closeCode, null, 'the reader kept up');
    assert.equal(sender.closeCode, null, 'the sender (who gets its own echoes) too');
  });

  test('a recipient that stops reading is closed with 1013 once its backlog stays high', async () => {
    const sender = await s.client('sr-a');
    const stalled = await s.client('sr-b');
    (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const conv = 'dm:sr-a:sr-b';
    // More than loopback's socket buffers hold, so a backlog stays on the server.
    for (let i = 0; i < 200; i++) {
      await sender.request({ type: 'send', conv, cmid: `s${i}`, kind: 'text', body: BIG });
    }
    // Past slowReaderMs (600 ms) and a sweep (1 s) the server closes it; the close frame waits
    // behind the backlog, which the client reads once it resumes.
    await sleep(2500);
    (stalled.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    assert.equal(await stalled.closed(10_000), 1013);
    assert.equal(sender.closeCode, null);
  });
});

describe('unauthenticated sockets per address', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ maxUnauthenticatedPerAddress: 5 });
  });
  after(() => s.stop());

  test('past the cap a socket from the same address is closed with 1008; another address and authenticated ones are not', async () => {
    const idle: TestClient[] = [];
    for (let i = 0; i < 5; i++) idle.push(await TestClient.open(s.url));
    const extra = await TestClient.open(s.url);
    assert.equal(await extra.closed(), 1008);
    const elsewhere = await TestClient.open(s.url, { localAddress: '127.0.0.2' } as never);
    const reply = await elsewhere.request({ type: 'connect', token: await s.token('ua-b'), device: 'd' });
    assert.equal(reply.ok, true, 'another address has its own count');
    // A socket that completes connect stops counting: the slot is free again.
    const first = idle[0]!;
    assert.equal(
      (await first.request({ type: 'connect', token: await s.token('ua-a'), device: 'd' })).ok,
      true,
    );
    const again = await TestClient.open(s.url);
    await sleep(100);
    assert.equal(again.closeCode, null);
    for (const c of [...idle, again, elsewhere]) c.close();
  });
});
