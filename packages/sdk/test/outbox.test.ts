// The send queue on its own: no socket, a fake channel that records frames, replies handed to
// the correlator by the test, and node:test's fake clock for retry delays and timeouts.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { Correlator } from '../src/correlator.js';
import { ParleyError } from '../src/errors.js';
import { Outbox, type SendChannel } from '../src/outbox.js';
import type { Frame } from '../src/util.js';

class FakeChannel implements SendChannel {
  readonly frames: Frame[] = [];
  timeouts = 0;
  constructor(readonly correlator: Correlator) {}
  write(frame: Frame): boolean {
    this.frames.push(frame);
    this.correlator.wrote(frame);
    return true;
  }
  timedOut(): void {
    this.timeouts += 1;
  }
  /** `[cmid, request id]` of every frame written so far. */
  get writes(): [unknown, unknown][] {
    return this.frames.map((f) => [f.cmid, f.id]);
  }
}

/** An outbox with 100 ms first retry window (50 ms with random 0.5), 1000 ms max, 5 s timeout. */
function make(opts: { maxAttempts?: number } = {}) {
  const correlator = new Correlator();
  let channel: FakeChannel | null = null;
  const outbox = new Outbox({
    correlator,
    channel: () => channel,
    requestTimeoutMs: 5000,
    maxAttempts: opts.maxAttempts ?? Number.POSITIVE_INFINITY,
    minDelayMs: 100,
    maxDelayMs: 1000,
    random: () => 0.5,
  });
  const connect = (): FakeChannel => {
    channel = new FakeChannel(correlator);
    outbox.pump();
    return channel;
  };
  const disconnect = (): void => {
    channel = null;
    correlator.failAll(new ParleyError('disconnected', 'connection lost'));
  };
  const reply = (frame: Frame, body: Frame): void => {
    correlator.take(frame.id as string)?.onReply({ type: 'reply', id: frame.id, ...body });
  };
  const ok = (frame: Frame, seq: number, extra: Frame = {}): void =>
    reply(frame, { ok: true, conv: frame.conv, seq, ts: 1000 + seq, ...extra });
  const fail = (frame: Frame, code: string, extra: Frame = {}): void =>
    reply(frame, { ok: false, error: { code, message: code, ...extra } });
  return { outbox, correlator, connect, disconnect, ok, fail };
}

/** Settles a promise for inspection without awaiting it forever. */
function track<T>(p: Promise<T>): { value?: T; error?: ParleyError; settled: boolean } {
  const out: { value?: T; error?: ParleyError; settled: boolean } = { settled: false };
  p.then(
    (value) => Object.assign(out, { value, settled: true }),
    (error: ParleyError) => Object.assign(out, { error, settled: true }),
  );
  return out;
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
});
afterEach(() => {
  mock.timers.reset();
});

test('sends made offline wait, then go out in call order with their cmids; acks resolve them', async () => {
  const { outbox, connect, ok } = make();
  const a = track(outbox.add('dm:a:b', 'one', { cmid: 'c1' }));
  const b = track(outbox.add('dm:a:b', 'two', { cmid: 'c2', kind: 'note', reply_to: 4, media: ['m1'] }));
  assert.equal(outbox.size, 2);
  const ch = connect();
  assert.deepEqual(
    ch.frames.map(({ id: _id, ...f }) => f),
    [
      { type: 'send', conv: 'dm:a:b', cmid: 'c1', kind: 'text', body: 'one' },
      { type: 'send', conv: 'dm:a:b', cmid: 'c2', kind: 'note', body: 'two', reply_to: 4, media: ['m1'] },
    ],
  );
  assert.notEqual(ch.frames[0]?.id, ch.frames[1]?.id, 'each attempt has its own request id');
  ok(ch.frames[1]!, 8, { dup: true });
  ok(ch.frames[0]!, 7, { dup: false, extra: 'x' });
  await flush();
  assert.deepEqual(
    a.value,
    { conv: 'dm:a:b', seq: 7, ts: 1007 },
    'only the result fields; dup only when true',
  );
  assert.deepEqual(b.value, { conv: 'dm:a:b', seq: 8, ts: 1008, dup: true });
  assert.equal(outbox.size, 0);
});

test('a cmid is assigned when none is given, and kept by every retry', () => {
  const { outbox, connect, disconnect } = make();
  void outbox.add('c', 'x', {}).catch(() => {});
  const first = connect();
  const cmid = first.frames[0]?.cmid;
  assert.match(String(cmid), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  disconnect();
  const second = connect();
  assert.equal(second.frames[0]?.cmid, cmid);
  assert.notEqual(second.frames[0]?.id, first.frames[0]?.id);
});

test('lost with the connection: every unacknowledged send is written again, in the original order', () => {
  const { outbox, connect, disconnect, ok } = make();
  for (const cmid of ['c1', 'c2', 'c3']) void outbox.add('c', cmid, { cmid });
  const first = connect();
  ok(first.frames[1]!, 2); // c2 acknowledged before the loss
  disconnect();
  assert.equal(outbox.size, 2);
  const second = connect();
  assert.deepEqual(
    second.frames.map((f) => f.cmid),
    ['c1', 'c3'],
  );
});

test('a retry delay holds back the sends after it (head of line), then they follow in order', async () => {
  const { outbox, connect, ok, fail } = make();
  const ch = connect();
  const a = track(outbox.add('c', 'a', { cmid: 'a' }));
  fail(ch.frames[0]!, 'rate_limited', { retry_after_ms: 300 });
  void outbox.add('c', 'b', { cmid: 'b' });
  void outbox.add('c', 'c', { cmid: 'c' });
  assert.deepEqual(
    ch.frames.map((f) => f.cmid),
    ['a'],
    'b and c wait behind a',
  );
  mock.timers.tick(299);
  assert.equal(ch.frames.length, 1);
  mock.timers.tick(1);
  assert.deepEqual(
    ch.frames.map((f) => f.cmid),
    ['a', 'a', 'b', 'c'],
  );
  ok(ch.frames[1]!, 1);
  await flush();
  assert.equal(a.value?.seq, 1);
});

test('unavailable and internal back off with full jitter on the same connection', () => {
  const { outbox, connect, fail } = make();
  const ch = connect();
  void outbox.add('c', 'a', { cmid: 'a' });
  fail(ch.frames[0]!, 'unavailable');
  mock.timers.tick(49);
  assert.equal(ch.frames.length, 1, 'first retry after 0.5 × 100 ms');
  mock.timers.tick(1);
  assert.equal(ch.frames.length, 2);
  fail(ch.frames[1]!, 'internal');
  mock.timers.tick(99);
  assert.equal(ch.frames.length, 2, 'second retry after 0.5 × 200 ms');
  mock.timers.tick(1);
  assert.equal(ch.frames.length, 3);
  assert.equal(ch.frames[2]?.cmid, 'a');
});

test('non-retryable errors reject at once with the cmid; maxAttempts bounds retryable ones', async () => {
  const { outbox, connect, fail } = make({ maxAttempts: 2 });
  const ch = connect();
  const forbidden = track(outbox.add('c', 'x', { cmid: 'f' }));
  fail(ch.frames[0]!, 'forbidden');
  const limited = track(outbox.add('c', 'y', { cmid: 'r' }));
  fail(ch.frames[1]!, 'unavailable');
  mock.timers.tick(50);
  fail(ch.frames[2]!, 'rate_limited', { retry_after_ms: 10 });
  await flush();
  assert.equal(forbidden.error?.code, 'forbidden');
  assert.equal(forbidden.error?.cmid, 'f');
  assert.equal(limited.error?.code, 'rate_limited');
  assert.equal(limited.error?.cmid, 'r');
  assert.equal(limited.error?.retryAfterMs, 10);
  assert.equal(outbox.size, 0);
  mock.timers.tick(1000);
  assert.equal(ch.frames.length, 3, 'nothing resent');
});

test('no reply within the timeout: the channel is told; a lost attempt no longer times out', () => {
  const { outbox, connect, disconnect } = make();
  void outbox.add('c', 'a', { cmid: 'a' });
  const first = connect();
  mock.timers.tick(2000);
  disconnect();
  const second = connect();
  mock.timers.tick(3000);
  assert.equal(first.timeouts, 0, 'the first attempt was lost, not timed out');
  assert.equal(second.timeouts, 0);
  mock.timers.tick(2000);
  assert.equal(second.timeouts, 1);
});

test('rejectAll fails every send with closed and its cmid, and cancels a pending retry', async () => {
  const { outbox, connect, fail } = make();
  const ch = connect();
  const a = track(outbox.add('c', 'a', { cmid: 'a' }));
  fail(ch.frames[0]!, 'rate_limited', { retry_after_ms: 100 });
  const b = track(outbox.add('c', 'b', { cmid: 'b' }));
  outbox.rejectAll('client closed (client_closed)');
  await flush();
  assert.deepEqual(
    [a.error?.code, a.error?.cmid, b.error?.code, b.error?.cmid],
    ['closed', 'a', 'closed', 'b'],
  );
  mock.timers.tick(1000);
  assert.equal(ch.frames.length, 1);
  assert.equal(outbox.size, 0);
});
