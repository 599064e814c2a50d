// The webhook dispatcher, fed batches through `handle` directly: one key's deliveries posted one
// after another in queue order while other keys go on, retries then a dead letter (and the key
// goes on), `Retry-After` honoured up to `retryMaxMs`, deliveries done settled early (together, at
// each tick) only while a batch goes on, a stop during a retry (or a post) leaving the batch queued
// at once, and the delivered delay measured from the event's time. The sender, the dead letters,
// the clock and (where a test says) the settling tick are fakes.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { mock, test } from 'node:test';
import type { Clock } from '../ports/clock.js';
import { silentLogger } from '../ports/logger.js';
import type {
  WebhookDeadLetter,
  WebhookDeadLetters,
  WebhookDelivery,
  WebhookEvent,
  WebhookQueue,
  WebhookResult,
  WebhookSender,
} from '../ports/webhooks.js';
import {
  WebhookDispatcher,
  type WebhookDispatcherOptions,
  type WebhookObserver,
} from './webhook-dispatcher.js';

/** One POST as the sender saw it. */
interface Post {
  endpoint: string;
  id: string;
  /** performance.now() when it started. */
  at: number;
}

/**
 * A sender whose answer to each POST is `answer`'s (default: delivered). It records every POST
 * and, per ordering key (endpoint and the event's conversation), how many were in flight at once.
 */
class FakeSender implements WebhookSender {
  readonly posts: Post[] = [];
  readonly inFlight = new Map<string, number>();
  /** The most POSTs of one key in flight at once, and over all keys. */
  mostPerKey = 0;
  mostOverall = 0;
  private running = 0;
  answer: (endpoint: string, event: WebhookEvent) => Promise<WebhookResult> | WebhookResult = () => ({
    status: 'delivered',
  });

  async post(endpoint: string, event: WebhookEvent): Promise<WebhookResult> {
    const key = `${endpoint} ${String(event.data.conv)}`;
    this.posts.push({ endpoint, id: event.id, at: performance.now() });
    const n = (this.inFlight.get(key) ?? 0) + 1;
    this.inFlight.set(key, n);
    this.mostPerKey = Math.max(this.mostPerKey, n);
    this.mostOverall = Math.max(this.mostOverall, ++this.running);
    try {
      return await this.answer(endpoint, event);
    } finally {
      this.inFlight.set(key, this.inFlight.get(key)! - 1);
      this.running--;
    }
  }

  /** The ids posted, in order, to `endpoint` for conversation `conv` (all when absent). */
  ids(conv?: string): string[] {
    return this.posts.filter((p) => conv === undefined || p.id.startsWith(`${conv}#`)).map((p) => p.id);
  }
}

class FakeDeadLetters implements WebhookDeadLetters {
  readonly letters: WebhookDeadLetter[] = [];
  async add(letters: readonly WebhookDeadLetter[]): Promise<void> {
    this.letters.push(...letters);
  }
  async list(): Promise<WebhookDeadLetter[]> {
    return [...this.letters];
  }
  async get(id: string): Promise<WebhookDeadLetter | null> {
    return this.letters.find((l) => l.id === id) ?? null;
  }
  async remove(): Promise<number> {
    return 0;
  }
}

class Heard implements WebhookObserver {
  readonly delays: number[] = [];
  retries = 0;
  deadLetters = 0;
  delivered(delaySeconds: number): void {
    this.delays.push(delaySeconds);
  }
  retried(): void {
    this.retries++;
  }
  deadLettered(): void {
    this.deadLetters++;
  }
}

class FakeClock implements Clock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
}

const unusedQueue: WebhookQueue = {
  enqueue: async () => {
    throw new Error('the dispatcher never queues');
  },
  consume: async () => {
    throw new Error('not started in these tests');
  },
};

function dispatcher(options: WebhookDispatcherOptions = {}, clock = new FakeClock(1_000_000)) {
  const sender = new FakeSender();
  const deadLetters = new FakeDeadLetters();
  const heard = new Heard();
  const d = new WebhookDispatcher(
    { queue: unusedQueue, deadLetters, sender, clock, log: silentLogger, observer: heard },
    { retryBaseMs: 1, retryMaxMs: 5, ...options },
  );
  /** Each call of `settled`, its deliveries as `label`s; and all of them, in order. */
  const settleCalls: string[][] = [];
  const settled: string[] = [];
  const handle = (batch: readonly WebhookDelivery[]) =>
    d.handle(batch, (done) => {
      settleCalls.push(done.map(label));
      settled.push(...done.map(label));
    });
  return { d, sender, deadLetters, heard, clock, settled, settleCalls, handle };
}

const DEFAULT_ENDPOINT = 'https://hooks.example.com/a';

/** How often a long batch reports its finished deliveries (`SETTLE_EARLY_AFTER_MS` in the dispatcher). */
const SETTLE_TICK_MS = 250;

/** A delivery's label in `settled`: its event id, after its endpoint unless that is the default one. */
const label = (d: WebhookDelivery) =>
  d.endpoint === DEFAULT_ENDPOINT ? d.event.id : `${d.endpoint} ${d.event.id}`;

let n = 0;
/** A delivery of message `seq` of `conv` to `endpoint`; its event id is `<conv>#<seq>`. */
const delivery = (conv: string, seq = ++n, endpoint = DEFAULT_ENDPOINT, ts = 900_000): WebhookDelivery => ({
  endpoint,
  key: conv,
  event: { id: `${conv}#${seq}`, type: 'message.stored', ts, data: { conv, seq, from: 'ann', kind: 'text' } },
});

/** A promise and what resolves it. */
function gate<T = void>(): { wait: Promise<T>; open: (value: T) => void } {
  let open: (value: T) => void = () => {};
  const wait = new Promise<T>((r) => {
    open = r;
  });
  return { wait, open };
}

/** Lets pending callbacks of the event loop run (not a timed wait). */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

async function until(what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test("one key's deliveries are posted one at a time, in order, while a slow one holds no other key", async () => {
  const { sender, handle } = dispatcher();
  const slow = gate<WebhookResult>();
  const [a1, b1, a2, b2, a3, b3] = [
    delivery('g:a', 1),
    delivery('g:b', 1),
    delivery('g:a', 2),
    delivery('g:b', 2),
    delivery('g:a', 3),
    delivery('g:b', 3),
  ];
  // The same conversation at another endpoint is another key.
  const other = delivery('g:a', 1, 'https://other.example.com/hook');
  sender.answer = (endpoint, event) =>
    endpoint === a1.endpoint && event.id === a1.event.id ? slow.wait : { status: 'delivered' };
  let finished = false;
  const handling = handle([a1, b1, a2, b2, a3, other, b3]).then(() => (finished = true));
  const posted = (x: WebhookDelivery) =>
    sender.posts.some((p) => p.endpoint === x.endpoint && p.id === x.event.id);
  await until("key b's deliveries and the other endpoint's", () => [b1, b2, b3, other].every(posted));
  const postedOfA = () => sender.posts.filter((p) => p.endpoint === a1.endpoint && p.id.startsWith('g:a#'));
  assert.deepEqual(
    postedOfA().map((p) => p.id),
    ['g:a#1'],
    "key a's next delivery was posted while its first was in flight",
  );
  assert.equal(finished, false);
  slow.open({ status: 'delivered' });
  await handling;
  assert.deepEqual(
    postedOfA().map((p) => p.id),
    ['g:a#1', 'g:a#2', 'g:a#3'],
  );
  assert.deepEqual(sender.ids('g:b'), ['g:b#1', 'g:b#2', 'g:b#3']);
  assert.equal(sender.posts.length, 7, 'a delivery was posted twice');
  assert.equal(sender.mostPerKey, 1, 'two deliveries of one key were posted at once');
});

test('deliveries done are settled early, together, at each tick while the batch goes on; never one not done', async () => {
  // The dispatcher's tick is an interval: mocked, so the test says when it comes.
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const { sender, deadLetters, settleCalls, handle } = dispatcher({ retries: 1 });
    const slow = gate<WebhookResult>();
    const [a1, a2, b1, b2, c1] = [
      delivery('g:a', 1),
      delivery('g:a', 2),
      delivery('g:b', 1),
      delivery('g:b', 2),
      delivery('g:c', 1),
    ];
    // c1 fails both attempts: dead-lettered, which settles it too.
    sender.answer = (_e, event) =>
      event.id === 'g:a#1'
        ? slow.wait
        : event.id === 'g:c#1'
          ? { status: 'retry', reason: 'HTTP 500' }
          : { status: 'delivered' };
    let finished = false;
    const handling = handle([a1, b1, a2, b2, c1]).then(() => (finished = true));
    await until(
      'keys b and c done',
      () => sender.ids('g:b').length === 2 && deadLetters.letters.length === 1,
    );
    await turns();
    assert.deepEqual(settleCalls, [], 'settled before the tick');
    mock.timers.tick(SETTLE_TICK_MS);
    assert.deepEqual(settleCalls.length, 1);
    assert.deepEqual([...settleCalls[0]!].sort(), ['g:b#1', 'g:b#2', 'g:c#1']);
    // Nothing new done: the next tick reports nothing.
    mock.timers.tick(SETTLE_TICK_MS);
    assert.equal(settleCalls.length, 1);
    slow.open({ status: 'delivered' });
    await handling;
    assert.equal(finished, true);
    // The batch ended before the next tick: the rest leaves the queue with it, not early; and no
    // tick comes after it.
    mock.timers.tick(SETTLE_TICK_MS * 4);
    assert.deepEqual(settleCalls.length, 1);
    assert.deepEqual(sender.ids('g:a'), ['g:a#1', 'g:a#2']);
  } finally {
    mock.timers.reset();
  }
});

test('a batch done before the first tick settles nothing early', async () => {
  mock.timers.enable({ apis: ['setInterval'] });
  try {
    const { settleCalls, handle, sender } = dispatcher();
    await handle([delivery('g:a', 1), delivery('g:b', 1), delivery('g:a', 2)]);
    assert.equal(sender.posts.length, 3);
    mock.timers.tick(SETTLE_TICK_MS * 4);
    assert.deepEqual(settleCalls, []);
  } finally {
    mock.timers.reset();
  }
});

test('at most `concurrency` keys are posted to at once', async () => {
  const { sender, handle } = dispatcher({ concurrency: 2 });
  const gates = new Map<string, (r: WebhookResult) => void>();
  sender.answer = (_e, event) => new Promise((r) => gates.set(event.id, r));
  const batch = [delivery('g:a', 1), delivery('g:b', 1), delivery('g:c', 1), delivery('g:a', 2)];
  const handling = handle(batch);
  await until('two posts', () => gates.size === 2);
  assert.deepEqual([...gates.keys()], ['g:a#1', 'g:b#1']);
  gates.get('g:b#1')!({ status: 'delivered' });
  // The freed worker takes the next key.
  await until('the third key', () => gates.has('g:c#1'));
  for (const id of ['g:a#1', 'g:c#1']) gates.get(id)!({ status: 'delivered' });
  await until("key a's second", () => gates.has('g:a#2'));
  gates.get('g:a#2')!({ status: 'delivered' });
  await handling;
  assert.equal(sender.mostOverall, 2);
  assert.deepEqual(sender.ids(), ['g:a#1', 'g:b#1', 'g:c#1', 'g:a#2']);
});

test('a delivery failing every retry is dead-lettered with its attempts and last reason; its key goes on', async () => {
  const { sender, deadLetters, heard, clock, handle } = dispatcher({ retries: 3 });
  clock.t = 2_000_000;
  let attempt = 0;
  sender.answer = (_e, event) =>
    event.id === 'g:a#1' ? { status: 'retry', reason: `HTTP 50${++attempt}` } : { status: 'delivered' };
  const [a1, a2, b1] = [delivery('g:a', 1), delivery('g:a', 2), delivery('g:b', 1)];
  await handle([a1, a2, b1]);
  assert.deepEqual(sender.ids('g:a'), ['g:a#1', 'g:a#1', 'g:a#1', 'g:a#1', 'g:a#2']);
  assert.equal(heard.retries, 3);
  assert.equal(heard.deadLetters, 1);
  assert.equal(deadLetters.letters.length, 1);
  const [letter] = deadLetters.letters;
  assert.match(letter!.id, /^[0-9A-HJKMNP-TV-Z]{26}$/, 'the id is a ULID');
  assert.deepEqual(
    { ...letter, id: '' },
    { id: '', delivery: a1, reason: 'HTTP 504', attempts: 4, ts: 2_000_000 },
  );
  assert.deepEqual(sender.ids('g:b'), ['g:b#1']);
  assert.equal(heard.delays.length, 2, 'delivered: a2 and b1');

  // No retries at all: one attempt, then the letter.
  const once = dispatcher({ retries: 0 });
  once.sender.answer = () => ({ status: 'retry', reason: 'connection refused' });
  await once.handle([delivery('g:c', 1)]);
  assert.equal(once.sender.posts.length, 1);
  assert.deepEqual(
    once.deadLetters.letters.map((l) => [l.reason, l.attempts]),
    [['connection refused', 1]],
  );
  assert.equal(once.heard.retries, 0);
});

test('Retry-After is waited for, beyond the backoff', async () => {
  const { sender, handle } = dispatcher({ retries: 2, retryBaseMs: 1, retryMaxMs: 10_000 });
  let calls = 0;
  sender.answer = () =>
    ++calls === 1 ? { status: 'retry', reason: 'HTTP 429', retryAfterMs: 150 } : { status: 'delivered' };
  await handle([delivery('g:a', 1)]);
  assert.equal(sender.posts.length, 2);
  const waited = sender.posts[1]!.at - sender.posts[0]!.at;
  // Timers may fire a millisecond early on some platforms.
  assert.ok(waited >= 148, `retried after ${waited.toFixed(1)} ms, before Retry-After's 150`);
});

test('Retry-After is capped at retryMaxMs', async () => {
  const { sender, deadLetters, handle } = dispatcher({ retries: 2, retryBaseMs: 1, retryMaxMs: 40 });
  let calls = 0;
  sender.answer = () =>
    ++calls <= 2 ? { status: 'retry', reason: 'HTTP 503', retryAfterMs: 3_600_000 } : { status: 'delivered' };
  const started = performance.now();
  await handle([delivery('g:a', 1)]);
  const took = performance.now() - started;
  assert.equal(sender.posts.length, 3);
  for (const i of [1, 2]) {
    const waited = sender.posts[i]!.at - sender.posts[i - 1]!.at;
    assert.ok(waited >= 38, `retry ${i} after ${waited.toFixed(1)} ms, before retryMaxMs`);
  }
  assert.ok(took < 5_000, `took ${took.toFixed(0)} ms: Retry-After was not capped`);
  assert.deepEqual(deadLetters.letters, []);
});

test('stop() during a retry wait: handle rejects at once, the batch stays queued, nothing is dead-lettered', async () => {
  const { d, sender, deadLetters, heard, settled, handle } = dispatcher({
    retries: 5,
    retryBaseMs: 60_000,
    retryMaxMs: 60_000,
  });
  sender.answer = (_e, event) =>
    event.id === 'g:a#1'
      ? { status: 'retry', reason: 'HTTP 503', retryAfterMs: 60_000 }
      : { status: 'delivered' };
  const [a1, a2, b1] = [delivery('g:a', 1), delivery('g:a', 2), delivery('g:b', 1)];
  const started = performance.now();
  const handling = handle([a1, b1, a2]);
  // `retried` is reported as the wait begins.
  await until('the retry wait', () => heard.retries === 1 && sender.ids('g:b').length === 1);
  await d.stop();
  await assert.rejects(handling, /stopped/);
  assert.ok(performance.now() - started < 10_000, 'waited out the retry');
  assert.deepEqual(sender.ids(), ['g:a#1', 'g:b#1']);
  assert.deepEqual(
    settled.filter((l) => l !== 'g:b#1'),
    [],
    'a delivery not done was settled',
  );
  assert.deepEqual(deadLetters.letters, []);
  assert.equal(heard.deadLetters, 0);
  // Stopped: a batch handed in later is not posted.
  await assert.rejects(handle([delivery('g:c', 1)]), /stopped/);
  assert.equal(sender.posts.length, 2);
});

test('stop() while a post is in flight: when it fails, handle rejects without waiting out a retry', async () => {
  const { d, sender, deadLetters, handle } = dispatcher({
    retries: 5,
    retryBaseMs: 5_000,
    retryMaxMs: 5_000,
  });
  const inFlight = gate<WebhookResult>();
  sender.answer = () => inFlight.wait;
  const handling = handle([delivery('g:a', 1)]);
  handling.catch(() => {});
  await until('the post', () => sender.posts.length === 1);
  const stopping = d.stop();
  inFlight.open({ status: 'retry', reason: 'HTTP 503', retryAfterMs: 5_000 });
  await stopping;
  const started = performance.now();
  // A bound on a wait that must not happen (the retry's 5 s): the only timed wait here.
  const outcome = await Promise.race([
    handling.then(
      () => 'resolved',
      (err: Error) => err.message,
    ),
    new Promise<string>((r) => setTimeout(() => r('still waiting'), 1_000).unref()),
  ]);
  assert.match(outcome, /stopped/, `after ${(performance.now() - started).toFixed(0)} ms: ${outcome}`);
  assert.deepEqual(deadLetters.letters, []);
});

test("the delivered delay is measured from the event's time, on the dispatcher's clock", async () => {
  const clock = new FakeClock(0);
  // One key at a time, so each post's time is the clock's when it is read.
  const { sender, heard, deadLetters, handle } = dispatcher({ retries: 1, concurrency: 1 }, clock);
  sender.answer = (_e, event) => {
    // The endpoint takes it at a time of the test's choosing.
    clock.t = event.ts + (event.id === 'g:a#1' ? 2_500 : 40);
    return event.id === 'g:c#1' ? { status: 'retry', reason: 'HTTP 500' } : { status: 'delivered' };
  };
  await handle([
    delivery('g:a', 1, undefined, 1_000_000),
    delivery('g:b', 1, undefined, 5_000_000),
    delivery('g:c', 1, undefined, 7_000_000),
  ]);
  assert.deepEqual(heard.delays, [2.5, 0.04]);
  // A dead letter's time is the clock's too.
  assert.deepEqual(
    deadLetters.letters.map((l) => l.ts),
    [7_000_040],
  );
});
