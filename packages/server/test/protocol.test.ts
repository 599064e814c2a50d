// The protocol over a real WebSocket against `parley serve` running as a child process: every
// implemented op's happy path, its error codes, the limits, and the connection rules.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { mintToken } from '../src/gateway/auth.js';
import { type ChildServer, spawnServer } from './child-server.js';
import { type Frame, TEST_SECRET, TestClient, tempDir } from './helpers.js';

const secret = new TextEncoder().encode(TEST_SECRET);
const token = (user: string, ttlSeconds = 3600, device?: string) =>
  mintToken(secret, device ? { user, ttlSeconds, device } : { user, ttlSeconds });

let srv: ChildServer;
let data: ReturnType<typeof tempDir>;
const open: TestClient[] = [];

async function client(user?: string, device = 'd1'): Promise<TestClient> {
  const c = await TestClient.open(srv.url);
  open.push(c);
  if (user) {
    const r = await c.request({ type: 'connect', token: await token(user), device, client: 'test/1' });
    assert.equal(r.ok, true, JSON.stringify(r));
  }
  return c;
}

const send = (c: TestClient, conv: string, body: string, extra: Frame = {}) =>
  c.request({ type: 'send', conv, cmid: `${Math.random()}`, kind: 'text', body, ...extra });

before(async () => {
  data = tempDir();
  srv = await spawnServer({
    PARLEY_DATA_DIR: data.dir,
    PARLEY_JWT_SECRET: TEST_SECRET,
    PARLEY_MAX_CONNECTIONS_PER_USER: '2',
    PARLEY_MAX_BAD_FRAMES_PER_MINUTE: '12',
  });
});
after(async () => {
  for (const c of open) c.close();
  srv.kill('SIGKILL');
  await srv.exited;
  data.remove();
});

describe('connect', () => {
  test('replies with the session fields', async () => {
    const c = await client();
    const r = await c.request({ type: 'connect', token: await token('carl'), device: 'phone-1' });
    assert.equal(r.ok, true);
    assert.equal(r.user, 'carl');
    assert.equal(r.device, 'phone-1');
    assert.equal(typeof r.session, 'string');
    assert.equal(r.heartbeat_ms, 30000);
    assert.equal(r.inbox_head, 0);
    assert.ok(Math.abs(r.server_time - Date.now()) < 5000);
    assert.equal(c.ws.protocol, 'parley.v1.json');
  });

  test('frames before connect get unauthorized, and the socket stays usable', async () => {
    const c = await client();
    for (const f of [
      { type: 'ping' },
      { type: 'sync', after: 0 },
      { type: 'send', conv: 'dm:a:b', cmid: 'x', kind: 't', body: 'b' },
    ]) {
      const r = await c.request(f);
      assert.equal(r.ok, false);
      assert.equal(r.error.code, 'unauthorized');
    }
    const r = await c.request({ type: 'connect', token: await token('dora'), device: 'd1' });
    assert.equal(r.ok, true);
  });

  test('a second connect on the same socket is refused', async () => {
    const c = await client('erin');
    const r = await c.request({ type: 'connect', token: await token('erin'), device: 'd1' });
    assert.equal(r.error.code, 'bad_request');
  });

  const badTokens: [string, () => Promise<string>][] = [
    ['garbage', async () => 'not.a.jwt'],
    ['expired', () => token('x', -60)],
    [
      'wrong secret',
      () =>
        mintToken(new TextEncoder().encode('another-secret-another-secret-another-1'), {
          user: 'x',
          ttlSeconds: 60,
        }),
    ],
    [
      'alg none',
      async () => {
        const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ sub: 'x', exp: Math.floor(Date.now() / 1000) + 60 })}.`;
      },
    ],
    [
      'wrong algorithm (RS256 when only HS256 is configured)',
      async () => {
        const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
        return new SignJWT({})
          .setProtectedHeader({ alg: 'RS256' })
          .setSubject('x')
          .setExpirationTime('1h')
          .sign(privateKey);
      },
    ],
    [
      'HS512 with the right secret',
      async () =>
        new SignJWT({})
          .setProtectedHeader({ alg: 'HS512' })
          .setSubject('x')
          .setExpirationTime('1h')
          .sign(secret),
    ],
    ['no exp', async () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('x').sign(secret)],
  ];
  for (const [name, make] of badTokens) {
    test(`token rejected: ${name} → unauthorized, then close 4401`, async () => {
      const c = await client();
      const r = await c.request({ type: 'connect', token: await make(), device: 'd1' });
      assert.equal(r.ok, false);
      assert.equal(r.error.code, 'unauthorized');
      assert.equal(await c.closed(), 4401);
    });
  }

  test('a token bound to a device must match the device param', async () => {
    const c = await client();
    const r = await c.request({ type: 'connect', token: await token('fay', 60, 'phone'), device: 'laptop' });
    assert.equal(r.error.code, 'unauthorized');
  });

  test('a second connection of the same device replaces the first with 4409', async () => {
    const first = await client('gus', 'phone');
    await client('gus', 'phone');
    assert.equal(await first.closed(), 4409);
  });

  test('more devices than allowed → 4429', async () => {
    await client('hal', 'a');
    await client('hal', 'b');
    const third = await client();
    const r = await third.request({ type: 'connect', token: await token('hal'), device: 'c' });
    assert.equal(r.ok, false);
    assert.equal(await third.closed(), 4429);
  });
});

describe('frames', () => {
  test('malformed JSON gets bad_request and the connection stays usable', async () => {
    const c = await client('ivy');
    c.sendRaw('{"type": "ping", "id": ');
    const err = await c.nextEvent((f) => f.type === 'reply');
    assert.equal(err.ok, false);
    assert.equal(err.error.code, 'bad_request');
    assert.equal(err.id, undefined);
    const pong = await c.request({ type: 'ping' });
    assert.equal(pong.ok, true);
    assert.equal(typeof pong.server_time, 'number');
  });

  test('invalid fields are bad_request with the request id', async () => {
    const c = await client('jay');
    const cases: Frame[] = [
      { type: 'nope' },
      { type: 'send', conv: 'dm:jay', cmid: 'c', kind: 'text', body: 'x' },
      { type: 'send', conv: 'dm:zed:jay', cmid: 'c', kind: 'text', body: 'x' },
      { type: 'send', conv: 'dm:jay:zed', cmid: 'c'.repeat(65), kind: 'text', body: 'x' },
      { type: 'send', conv: 'dm:jay:zed', cmid: 'c', kind: 'text', body: 5 },
      { type: 'sync', after: -1 },
      { type: 'sync', after: 0, limit: 1001 },
      { type: 'history', conv: 'dm:jay:zed', before: 5, after: 1 },
      { type: 'history', conv: 'dm:jay:zed', limit: 201 },
      { type: 'receipt', id: 'r', conv: 'dm:jay:zed', kind: 'seen', seq: 1 },
    ];
    for (const f of cases) {
      const r = await c.request(f);
      assert.equal(r.ok, false, JSON.stringify(f));
      assert.equal(r.error.code, 'bad_request', JSON.stringify(f));
      assert.ok(r.error.message.length > 0);
    }
  });

  test('body limit: 64 KiB is accepted, 64 KiB + 1 byte is too_large', async () => {
    const c = await client('kim');
    const ok = await send(c, 'dm:kim:lee', 'x'.repeat(65536));
    assert.equal(ok.ok, true);
    const big = await send(c, 'dm:kim:lee', 'x'.repeat(65537));
    assert.equal(big.ok, false);
    assert.equal(big.error.code, 'too_large');
    const multibyte = await send(c, 'dm:kim:lee', `${'é'.repeat(32768)}x`);
    assert.equal(multibyte.error.code, 'too_large');
  });

  test('a frame over 128 KiB closes the connection with 1008', async () => {
    const c = await client('max');
    c.sendRaw(JSON.stringify({ type: 'ping', id: '1', pad: 'x'.repeat(140 * 1024) }));
    assert.equal(await c.closed(), 1008);
  });

  test('binary frames are refused', async () => {
    const c = await client('ned');
    c.sendRaw(Buffer.from('{"type":"ping","id":"1"}'));
    const r = await c.nextEvent((f) => f.type === 'reply');
    assert.equal(r.error.code, 'bad_request');
  });

  test('a client that keeps sending garbage is closed with 4400', async () => {
    const c = await client('oli');
    for (let i = 0; i < 20; i++) c.sendRaw('garbage');
    assert.equal(await c.closed(), 4400);
  });

  test('every op of the protocol is served: keys_count of a device without keys is 0', async () => {
    const c = await client('pam');
    const r = await c.request({ type: 'keys_count' });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.one_time_prekeys, 0);
  });
});

describe('messaging ops', () => {
  test('send, then message events, sync, history, conversations, receipts', async () => {
    const a = await client('ann');
    const b = await client('bea');
    const conv = 'dm:ann:bea';
    const s1 = await send(a, conv, 'one');
    assert.deepEqual([s1.ok, s1.conv, s1.seq], [true, conv, 1]);
    assert.equal(typeof s1.ts, 'number');
    const s2 = await send(b, conv, 'two', { reply_to: 1 });
    assert.equal(s2.seq, 2);
    const ev = await b.nextEvent((f) => f.type === 'message' && f.seq === 1);
    // Inbox entries follow the reply: wait for Bea's copy of her own message before syncing.
    await b.nextEvent((f) => f.type === 'message' && f.seq === 2);
    assert.deepEqual(
      { ...ev, ts: 0 },
      {
        type: 'message',
        inbox: 1,
        conv,
        seq: 1,
        ts: 0,
        from: 'ann',
        from_device: 'd1',
        cmid: ev.cmid,
        kind: 'text',
        body: 'one',
      },
    );
    const sync = await b.request({ type: 'sync', after: 0, limit: 10 });
    assert.equal(sync.ok, true);
    assert.deepEqual(
      sync.events
        .filter((e: Frame) => e.type === 'message')
        .map((e: Frame) => [e.inbox, e.seq, e.body, e.reply_to]),
      [
        [1, 1, 'one', undefined],
        [2, 2, 'two', 1],
      ],
    );
    assert.equal(sync.more, false);
    const hist = await a.request({ type: 'history', conv, limit: 1 });
    assert.deepEqual(
      hist.messages.map((m: Frame) => m.seq),
      [2],
    );
    assert.equal(hist.more, true);
    const older = await a.request({ type: 'history', conv, before: 2 });
    assert.deepEqual(
      older.messages.map((m: Frame) => m.body),
      ['one'],
    );
    assert.equal(older.more, false);
    const newer = await a.request({ type: 'history', conv, after: 1 });
    assert.deepEqual(
      newer.messages.map((m: Frame) => m.body),
      ['two'],
    );

    // Ann reads up to 2: Bea (sender of 2) gets a read receipt; Ann's own inbox gets one too.
    a.sendRaw(JSON.stringify({ type: 'receipt', conv, kind: 'read', seq: 2 }));
    // Bea's reply implied she read Ann's message 1: Ann was told so.
    const implied = await a.nextEvent((f) => f.type === 'receipt' && f.user === 'bea');
    assert.deepEqual([implied.kind, implied.seq], ['read', 2]);
    const rr = await b.nextEvent((f) => f.type === 'receipt' && f.user === 'ann');
    assert.deepEqual([rr.conv, rr.user, rr.kind, rr.seq], [conv, 'ann', 'read', 2]);
    assert.equal(typeof rr.inbox, 'number');
    const own = await a.nextEvent((f) => f.type === 'receipt' && f.user === 'ann');
    assert.deepEqual([own.user, own.kind, own.seq], ['ann', 'read', 2]);
    const marks = await b.request({ type: 'receipts', conv });
    assert.deepEqual(marks.members, [
      { user: 'ann', delivered: 2, read: 2 },
      { user: 'bea', delivered: 2, read: 2 },
    ]);
    const list = await b.request({ type: 'conversations' });
    assert.equal(list.ok, true);
    assert.deepEqual(
      list.conversations.map((c: Frame) => [c.conv, c.kind, c.members, c.last_seq, c.read, c.unread]),
      [[conv, 'direct', 2, 2, 2, 0]],
    );
  });

  test('authorization: only the two users of a direct conversation may use it', async () => {
    const mal = await client('mal');
    for (const f of [
      { type: 'send', conv: 'dm:ann:bea', cmid: 'x', kind: 'text', body: 'x' },
      { type: 'history', conv: 'dm:ann:bea' },
      { type: 'receipts', conv: 'dm:ann:bea' },
      { type: 'receipt', id: 'x', conv: 'dm:ann:bea', kind: 'read', seq: 1 },
      { type: 'send', conv: 'g:unknown', cmid: 'x', kind: 'text', body: 'x' },
    ]) {
      const r = await mal.request(f);
      assert.equal(r.error?.code, 'forbidden', JSON.stringify(f));
    }
  });

  test('reply_to and receipts beyond the head, and sync beyond the inbox head, are bad_request', async () => {
    const c = await client('quin');
    await send(c, 'dm:quin:quin', 'note to self');
    assert.equal((await send(c, 'dm:quin:quin', 'x', { reply_to: 9 })).error.code, 'bad_request');
    assert.equal(
      (await c.request({ type: 'receipt', conv: 'dm:quin:quin', kind: 'read', seq: 9 })).error.code,
      'bad_request',
    );
    assert.equal((await c.request({ type: 'sync', after: 99 })).error.code, 'bad_request');
  });
});

describe('HTTP', () => {
  test('health and readiness on both listeners; metrics on the admin listener only', async () => {
    for (const base of [srv.httpUrl, srv.adminUrl]) {
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
    }
    assert.equal((await fetch(`${srv.httpUrl}/metrics`)).status, 404);
    const metrics = await (await fetch(`${srv.adminUrl}/metrics`)).text();
    for (const name of [
      'parley_connections',
      'parley_frames_received_total',
      'parley_messages_stored_total',
      'parley_send_reply_seconds_bucket',
      'parley_store_batch_operations_bucket',
      'parley_store_commit_seconds_bucket',
      'parley_event_loop_delay_max_seconds',
      'parley_store_pending_writes',
      'parley_conversations_in_memory',
      'parley_process_resident_memory_bytes',
    ]) {
      assert.ok(metrics.includes(name), name);
    }
    assert.equal((await fetch(`${srv.httpUrl}/nope`)).status, 404);
  });

  test('conversations and messages with a Bearer token', async () => {
    const a = await client('rae');
    await send(a, 'dm:rae:sam', 'hello');
    await send(a, 'dm:rae:sam', 'again');
    const auth = { authorization: `Bearer ${await token('sam')}` };
    const list = await (await fetch(`${srv.httpUrl}/v1/conversations`, { headers: auth })).json();
    assert.equal(list.conversations[0].conv, 'dm:rae:sam');
    assert.equal(list.conversations[0].unread, 2);
    const page = await (
      await fetch(`${srv.httpUrl}/v1/conversations/dm:rae:sam/messages?after=1&limit=5`, { headers: auth })
    ).json();
    assert.deepEqual(
      page.messages.map((m: Frame) => m.body),
      ['again'],
    );
    assert.equal((await fetch(`${srv.httpUrl}/v1/conversations`)).status, 401);
    const other = { authorization: `Bearer ${await token('tom')}` };
    const res = await fetch(`${srv.httpUrl}/v1/conversations/dm:rae:sam/messages`, { headers: other });
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error.code, 'forbidden');
    const bad = await fetch(`${srv.httpUrl}/v1/conversations/dm:rae:sam/messages?limit=999`, {
      headers: auth,
    });
    assert.equal(bad.status, 400);
  });
});

describe('timeouts and origin (servers with short timers)', () => {
  let timed: ChildServer;
  let dir: ReturnType<typeof tempDir>;
  before(async () => {
    dir = tempDir();
    timed = await spawnServer({
      PARLEY_DATA_DIR: dir.dir,
      PARLEY_JWT_SECRET: TEST_SECRET,
      PARLEY_CONNECT_TIMEOUT_MS: '300',
      PARLEY_HEARTBEAT_MS: '200',
      PARLEY_ORIGINS: 'https://app.example',
      PARLEY_INBOX_RETENTION_MS: '300',
      PARLEY_INBOX_PRUNE_INTERVAL_MS: '100',
    });
  });
  after(async () => {
    timed.kill('SIGKILL');
    await timed.exited;
    dir.remove();
  });
  const openTimed = (origin = 'https://app.example') => TestClient.open(timed.url, { headers: { origin } });

  test('no connect within the timeout → 4408', async () => {
    const c = await openTimed();
    assert.equal(await c.closed(), 4408);
  });

  test('a wrong Origin is closed with 1008', async () => {
    const c = await openTimed('https://evil.example');
    assert.equal(await c.closed(), 1008);
  });

  test('a silent connection is dropped after twice the heartbeat; a pinging one stays', async () => {
    const silent = await openTimed();
    const alive = await openTimed();
    for (const c of [silent, alive])
      await c.request({ type: 'connect', token: await token('uma'), device: `${Math.random()}` });
    const pinger = setInterval(() => alive.sendRaw(JSON.stringify({ type: 'ping' })), 100);
    try {
      const code = await silent.closed(3000);
      assert.equal(code, 1006);
      assert.equal(alive.closeCode, null);
    } finally {
      clearInterval(pinger);
    }
  });

  test('an expiring token closes the connection with 4401', async () => {
    const c = await openTimed();
    const pinger = setInterval(() => c.sendRaw(JSON.stringify({ type: 'ping' })), 100);
    try {
      const r = await c.request({ type: 'connect', token: await token('vic', 1), device: 'd' });
      assert.equal(r.ok, true);
      assert.equal(await c.closed(4000), 4401);
    } finally {
      clearInterval(pinger);
    }
  });

  test('sync past the retention window → gone', async () => {
    const c = await openTimed();
    const pinger = setInterval(() => c.sendRaw(JSON.stringify({ type: 'ping' })), 100);
    try {
      await c.request({ type: 'connect', token: await token('wes'), device: 'd' });
      await c.request({ type: 'send', conv: 'dm:wes:wes', cmid: '1', kind: 'text', body: 'x' });
      await new Promise((r) => setTimeout(r, 800));
      const r = await c.request({ type: 'sync', after: 0 });
      assert.equal(r.error?.code, 'gone', JSON.stringify(r));
    } finally {
      clearInterval(pinger);
    }
  });
});
