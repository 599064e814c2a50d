// The before-send hook, in every mode: each client message is POSTed, signed, to the operator's
// endpoint before it is stored; a refusal reaches the sender with its reason and stores nothing;
// pipelined sends keep their order whatever order the hook answers in; a slow or failing hook
// stores the message under the `open` policy and refuses it (unavailable) under `closed`; and
// nobody makes the hook work past their send budget.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Code, ConnectError } from '@connectrpc/connect';
import { createServerClient } from '@parley/server-client';
import { eventually, type Frame, sleep, startServer, type TestServer, tempDir } from './helpers.js';

const SECRET = 'before-send-test-secret-0123456789';

interface HookCall {
  message: Frame;
  signature: string;
}

/** A moderation endpoint whose answer each test sets. */
class Receiver {
  readonly calls: HookCall[] = [];
  answer: (m: Frame, res: ServerResponse) => void | Promise<void> = (_m, res) => json(res, { allow: true });
  private readonly server: Server = createServer((req, res) => void this.handle(req, res));

  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/check`;
  }

  stop(): void {
    this.server.closeAllConnections();
    this.server.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    for await (const c of req) body += c;
    const message = JSON.parse(body) as Frame;
    this.calls.push({ message, signature: String(req.headers['parley-signature'] ?? '') });
    assert.ok(verify(String(req.headers['parley-signature'] ?? ''), body), 'a valid signature');
    await this.answer(message, res);
  }
}

function json(res: ServerResponse, value: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

/** Checks `t=…,v1=…` as a receiver should: the HMAC of "<t>.<body>", and a recent t. */
function verify(header: string, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  const expected = createHmac('sha256', SECRET).update(`${m[1]}.${body}`).digest('hex');
  return expected === m[2] && Math.abs(Date.now() / 1000 - Number(m[1])) < 300;
}

describe('before-send hook (policy closed)', () => {
  const receiver = new Receiver();
  let s: TestServer;
  before(async () => {
    s = await startServer({
      beforeSendUrl: await receiver.start(),
      beforeSendSecret: SECRET,
      beforeSendTimeoutMs: 300,
      beforeSendPolicy: 'closed',
      sendBurst: 30,
      sendRatePerSecond: 1,
    });
  });
  after(async () => {
    await s.stop();
    receiver.stop();
  });

  test('every message is checked, signed, before it is stored; a refusal reaches the sender with its reason', async () => {
    receiver.answer = (m, res) =>
      json(
        res,
        String(m.body).includes('spam') ? { allow: false, reason: 'no spam\nhere' } : { allow: true },
      );
    const alice = await s.client('bs-alice');
    const bob = await s.client('bs-bob');
    const conv = 'dm:bs-alice:bs-bob';
    const ok = await alice.request({ type: 'send', kind: 'text', conv, cmid: 'c1', body: 'hi' });
    assert.equal(ok.ok, true, JSON.stringify(ok));
    const refused = await alice.request({ type: 'send', kind: 'text', conv, cmid: 'c2', body: 'buy spam' });
    assert.equal(refused.ok, false);
    assert.equal(refused.error.code, 'forbidden');
    assert.equal(refused.error.message, 'message refused: no spam here');
    const history = await bob.request({ type: 'history', conv });
    assert.deepEqual(
      history.messages.map((m: Frame) => m.body),
      ['hi'],
    );
    const mine = receiver.calls.filter((c) => c.message.from === 'bs-alice').map((c) => c.message);
    assert.deepEqual(
      mine.map((m) => [m.conv, m.cmid, m.kind, m.body, m.from_device]),
      [
        [conv, 'c1', 'text', 'hi', 'd1'],
        [conv, 'c2', 'text', 'buy spam', 'd1'],
      ],
    );
  });

  test('pipelined sends keep their order when the hook answers out of order', async () => {
    let first = true;
    receiver.answer = async (_m, res) => {
      if (first) {
        first = false;
        await sleep(200);
      }
      json(res, { allow: true });
    };
    const c = await s.client('bs-pipe');
    const conv = 'dm:bs-pipe:bs-pipe';
    const replies = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        c.request({ type: 'send', kind: 'text', conv, cmid: `p${i}`, body: `m${i}` }),
      ),
    );
    assert.deepEqual(
      replies.map((r) => r.seq),
      [1, 2, 3, 4, 5],
    );
  });

  test('a slow, failing or nonsense hook refuses the message as unavailable, and nothing is stored', async () => {
    const c = await s.client('bs-closed');
    const conv = 'dm:bs-closed:bs-closed';
    const answers: Receiver['answer'][] = [
      async (_m, res) => {
        await sleep(1_000);
        json(res, { allow: true });
      },
      (_m, res) => json(res, { error: 'boom' }, 500),
      (_m, res) => res.end('not json'),
    ];
    for (const [i, answer] of answers.entries()) {
      receiver.answer = answer;
      const r = await c.request({ type: 'send', kind: 'text', conv, cmid: `f${i}`, body: 'x' });
      assert.equal(r.ok, false, `answer ${i}`);
      assert.equal(r.error.code, 'unavailable', `answer ${i}`);
    }
    receiver.answer = (_m, res) => json(res, { allow: true });
    assert.deepEqual((await c.request({ type: 'history', conv })).messages, []);
  });

  test('nobody makes the hook work past their send budget', async () => {
    receiver.answer = (_m, res) => json(res, { allow: true });
    const c = await s.client('bs-flood');
    const conv = 'dm:bs-flood:bs-flood';
    const started = Date.now();
    const replies = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        c.request({ type: 'send', kind: 'text', conv, cmid: `b${i}`, body: 'x' }),
      ),
    );
    assert.ok(replies.some((r) => r.error?.code === 'rate_limited'));
    const seen = receiver.calls.filter((x) => x.message.from === 'bs-flood').length;
    const budget = 30 + Math.ceil((Date.now() - started) / 1000); // a burst of 30, then 1 a second
    assert.ok(seen <= budget, `${seen} hook calls for a send budget of ${budget}`);
  });
});

describe('before-send hook (policy open)', () => {
  const receiver = new Receiver();
  let s: TestServer;
  before(async () => {
    s = await startServer({
      beforeSendUrl: await receiver.start(),
      beforeSendSecret: SECRET,
      beforeSendTimeoutMs: 300,
      beforeSendPolicy: 'open',
    });
  });
  after(async () => {
    await s.stop();
    receiver.stop();
  });

  test('a slow or failing hook lets the message through; a refusal still refuses', async () => {
    const c = await s.client('bs-open');
    const conv = 'dm:bs-open:bs-open';
    receiver.answer = async (_m, res) => {
      await sleep(1_000);
      json(res, { allow: true });
    };
    assert.equal((await c.request({ type: 'send', kind: 'text', conv, cmid: 'o1', body: 'slow' })).ok, true);
    receiver.answer = (_m, res) => json(res, {}, 503);
    assert.equal(
      (await c.request({ type: 'send', kind: 'text', conv, cmid: 'o2', body: 'failing' })).ok,
      true,
    );
    receiver.answer = (_m, res) => json(res, { allow: false, reason: 'nope' });
    const refused = await c.request({ type: 'send', kind: 'text', conv, cmid: 'o3', body: 'refused' });
    assert.equal(refused.error?.code, 'forbidden');
    receiver.answer = (_m, res) => json(res, { allow: true });
    assert.deepEqual(
      (await c.request({ type: 'history', conv })).messages.map((m: Frame) => m.body),
      ['slow', 'failing'],
    );
  });
});

/**
 * A hook that holds every answer until `release` (counting how many wait at once); checks arriving
 * after the release are answered at once.
 */
function holdingReceiver(): { receiver: Receiver; release: () => void; most: () => number } {
  const receiver = new Receiver();
  let released = false;
  let waiting: (() => void)[] = [];
  let now = 0;
  let most = 0;
  receiver.answer = async (_m, res) => {
    now++;
    most = Math.max(most, now);
    if (!released) await new Promise<void>((r) => waiting.push(r));
    now--;
    json(res, { allow: true });
  };
  return {
    receiver,
    release: () => {
      released = true;
      for (const r of waiting) r();
      waiting = [];
    },
    most: () => most,
  };
}

describe('before-send hook: its bounds (calls in flight, answer size)', () => {
  const { receiver, release, most } = holdingReceiver();
  let s: TestServer;
  before(async () => {
    s = await startServer({
      beforeSendUrl: await receiver.start(),
      beforeSendSecret: SECRET,
      beforeSendTimeoutMs: 5_000,
      beforeSendPolicy: 'closed',
      beforeSendMaxInFlight: 1,
    });
  });
  after(async () => {
    release();
    await s.stop();
    receiver.stop();
  });

  test('past beforeSendMaxInFlight a check fails at once (by the policy), and the hook never sees more', async () => {
    const users = ['bs-cap1', 'bs-cap2', 'bs-cap3', 'bs-cap4', 'bs-cap5'];
    const clients = await Promise.all(users.map((u) => s.client(u)));
    const replies = clients.map((c, i) =>
      c.request({ type: 'send', kind: 'text', conv: `dm:${users[i]}:${users[i]}`, cmid: 'k', body: 'x' }),
    );
    // Each process (one, or two in the cluster deployments) holds one check; the others are
    // refused at once, while the held ones still wait.
    await eventually(async () => {
      const settled = await Promise.all(
        replies.map((r) => Promise.race([r.then((x) => x.error?.code), sleep(10).then(() => 'waiting')])),
      );
      assert.ok(settled.filter((x) => x === 'unavailable').length >= users.length - 2, String(settled));
    });
    assert.ok(most() <= 2, `the hook saw ${most()} checks at once`);
    release();
    const all = await Promise.all(replies);
    assert.ok(
      all.some((r) => r.ok),
      'the held checks were answered',
    );
  });

  test('an answer over 4 KiB is a failed check', async () => {
    receiver.answer = (_m, res) => json(res, { allow: true, padding: 'x'.repeat(5_000) });
    const c = await s.client('bs-big');
    const r = await c.request({ type: 'send', kind: 'text', conv: 'dm:bs-big:bs-big', cmid: 'b', body: 'x' });
    assert.equal(r.error?.code, 'unavailable');
    receiver.answer = (_m, res) => json(res, { allow: true, padding: 'x'.repeat(3_000) });
    const ok = await c.request({
      type: 'send',
      kind: 'text',
      conv: 'dm:bs-big:bs-big',
      cmid: 'c',
      body: 'x',
    });
    assert.equal(ok.ok, true, JSON.stringify(ok));
  });
});

describe('server API: calls in flight are bounded', () => {
  const { receiver, release } = holdingReceiver();
  let s: TestServer;
  let tmp: { dir: string; remove: () => void };
  const KEY = 'cap-key-0123456789abcdef';
  before(async () => {
    tmp = tempDir('parley-api-cap-');
    const keysFile = join(tmp.dir, 'keys.json');
    writeFileSync(keysFile, JSON.stringify({ keys: [{ name: 'cap', key: KEY, scopes: ['*'] }] }));
    s = await startServer({
      serverApiKeysFile: keysFile,
      serverApiMaxInFlight: 2,
      beforeSendUrl: await receiver.start(),
      beforeSendSecret: SECRET,
      beforeSendTimeoutMs: 10_000,
    });
  });
  after(async () => {
    release();
    await s.stop();
    receiver.stop();
    tmp.remove();
  });

  test('past serverApiMaxInFlight a call is refused unavailable at once; held ones complete', async () => {
    const api = createServerClient({ baseUrl: s.serverApiUrl!, apiKey: KEY, protocol: 'connect' });
    const send = (u: string) => api.sendMessage({ asUser: u, conv: `dm:${u}:${u}`, cmid: 'k', body: 'x' });
    const held = [send('cap-a'), send('cap-b')];
    await eventually(async () => assert.equal(receiver.calls.length, 2));
    await assert.rejects(send('cap-c'), (err) => {
      const e = ConnectError.from(err);
      return e.code === Code.Unavailable && e.metadata.get('parley-error') === 'unavailable';
    });
    release();
    const done = await Promise.all(held);
    assert.deepEqual(
      done.map((d) => d.seq),
      [1n, 1n],
    );
    assert.equal((await send('cap-c')).seq, 1n, 'a slot is free again');
  });
});
