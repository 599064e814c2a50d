// The webhook publisher: one event per stored message (from the notice of the sender's own inbox
// entry, whatever other recipients' notices say), system messages as `group.changed`, bodies only
// for endpoints that take them (read from the store when a notice lacks one), each endpoint's
// filter, report order kept while bodies are read, a failing queue given up after its retries
// without rejecting, and presence and device events. The queue is a fake that records what it is
// given.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../ports/logger.js';
import type { StoredMessage } from '../ports/message-store.js';
import {
  WEBHOOK_EVENT_TYPES,
  type WebhookDelivery,
  type WebhookEventType,
  type WebhookQueue,
} from '../ports/webhooks.js';
import type { StoredMessageNotice } from './push-scheduler.js';
import { type WebhookEndpoint, WebhookPublisher, type WebhookPublishObserver } from './webhook-publisher.js';

/** A queue that records each `enqueue` call; it fails the next `failures` calls, and waits on `gate` when set. */
class FakeQueue implements WebhookQueue {
  readonly calls: WebhookDelivery[][] = [];
  attempts = 0;
  failures = 0;
  gate: Promise<void> | null = null;

  async enqueue(jobs: readonly WebhookDelivery[]): Promise<void> {
    this.attempts++;
    if (this.gate) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('the queue is down');
    }
    this.calls.push(structuredClone([...jobs]));
  }

  async consume(): Promise<never> {
    throw new Error('the publisher never consumes');
  }

  /** Every delivery queued, in order. */
  all(): WebhookDelivery[] {
    return this.calls.flat();
  }
}

/** What the observer heard. */
class Heard implements WebhookPublishObserver {
  readonly queuedCounts: number[] = [];
  readonly drops: [number, string][] = [];
  queued(deliveries: number): void {
    this.queuedCounts.push(deliveries);
  }
  dropped(count: number, reason: 'queue_failing' | 'overload'): void {
    this.drops.push([count, reason]);
  }
}

/** A message store's `getMany` over `messages`; it records each call and waits on `gate` when set. */
class FakeMessages {
  readonly calls: { conv: string; seq: number }[][] = [];
  gate: Promise<void> | null = null;
  failWith: Error | null = null;

  constructor(private readonly messages: readonly StoredMessage[] = []) {}

  getMany = async (
    refs: readonly { conv: string; seq: number }[],
  ): Promise<(StoredMessage | undefined)[]> => {
    this.calls.push(refs.map((r) => ({ ...r })));
    if (this.gate) await this.gate;
    if (this.failWith) throw this.failWith;
    return refs.map((r) => this.messages.find((m) => m.conv === r.conv && m.seq === r.seq));
  };
}

const ALL: readonly WebhookEventType[] = WEBHOOK_EVENT_TYPES;

const endpoint = (
  url: string,
  events: readonly WebhookEventType[] = ALL,
  includeBodies = false,
): WebhookEndpoint => ({
  url,
  events: new Set(events),
  includeBodies,
});

/** A notice of message `seq` of g:team from ann, for the recipients `users`. */
const notice = (
  seq: number,
  users: readonly string[],
  over: Partial<StoredMessageNotice> = {},
): StoredMessageNotice => ({
  conv: 'g:team',
  seq,
  from: 'ann',
  kind: 'text',
  ts: 1_000 + seq,
  users,
  inboxes: users.map((_, i) => 10 + i),
  ...over,
});

const stored = (seq: number, body: string, over: Partial<StoredMessage> = {}): StoredMessage => ({
  conv: 'g:team',
  seq,
  ts: 1_000 + seq,
  from: 'ann',
  from_device: 'phone',
  cmid: `c${seq}`,
  kind: 'text',
  body,
  ...over,
});

function publisher(
  endpoints: readonly WebhookEndpoint[],
  opts: { queue?: FakeQueue; messages?: FakeMessages; retryMs?: readonly number[] } = {},
) {
  const queue = opts.queue ?? new FakeQueue();
  const heard = new Heard();
  const messages = opts.messages ?? new FakeMessages();
  const p = new WebhookPublisher(queue, endpoints, silentLogger, heard, messages, opts.retryMs ?? [1, 1]);
  return { p, queue, heard, messages };
}

/** A promise and what resolves it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((r) => {
    open = r;
  });
  return { wait, open };
}

/** Lets pending callbacks of the event loop run (not a timed wait). */
async function turns(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

test("one event per message, from the notice of the sender's own entry, whatever the other notices", async () => {
  const { p, queue, heard } = publisher([endpoint('https://a.example/hook')]);
  // In cluster mode one notice per recipient; the sender's comes among them, in any place.
  await p.messagesStored([
    notice(1, ['bob']),
    notice(1, ['ann']),
    notice(1, ['cid']),
    notice(2, ['bob']),
    notice(2, ['cid']),
  ]);
  // Message 2's sender entry is stored by another process: nothing here, and nothing to queue.
  await p.messagesStored([notice(3, ['bob']), notice(3, ['dan'])]);
  // Embedded mode: one notice with every recipient.
  await p.messagesStored([notice(4, ['bob', 'ann', 'cid'], { body: 'hi' })]);
  await p.settled();
  assert.deepEqual(queue.all(), [
    {
      endpoint: 'https://a.example/hook',
      key: 'g:team',
      event: {
        id: 'message.stored:g:team:1',
        type: 'message.stored',
        ts: 1_001,
        data: { conv: 'g:team', seq: 1, from: 'ann', kind: 'text' },
      },
    },
    {
      endpoint: 'https://a.example/hook',
      key: 'g:team',
      event: {
        id: 'message.stored:g:team:4',
        type: 'message.stored',
        ts: 1_004,
        data: { conv: 'g:team', seq: 4, from: 'ann', kind: 'text' },
      },
    },
  ]);
  assert.deepEqual(heard.queuedCounts, [1, 1]);
  assert.deepEqual(heard.drops, []);
});

test('a system message becomes group.changed with its change parsed, its body read when the notice lacks it', async () => {
  const change = { event: 'members_added', users: ['dan'], by: 'ann' };
  const messages = new FakeMessages([stored(5, JSON.stringify(change), { kind: 'system' })]);
  // No endpoint takes bodies: the change is read all the same (it is not the user's content).
  const { p, queue } = publisher([endpoint('https://a.example/hook')], { messages });
  await p.messagesStored([notice(5, ['bob']), notice(5, ['ann'], { kind: 'system' })]);
  await p.messagesStored([notice(6, ['ann'], { kind: 'system', body: 'not json' })]);
  await p.settled();
  assert.deepEqual(messages.calls, [[{ conv: 'g:team', seq: 5 }]]);
  assert.deepEqual(
    queue.all().map((d) => d.event),
    [
      {
        id: 'group.changed:g:team:5',
        type: 'group.changed',
        ts: 1_005,
        data: { conv: 'g:team', seq: 5, actor: 'ann', change },
      },
      {
        id: 'group.changed:g:team:6',
        type: 'group.changed',
        ts: 1_006,
        data: { conv: 'g:team', seq: 6, actor: 'ann', change: null },
      },
    ],
  );
});

test('bodies go only to endpoints that take them, read through getMany when a notice lacks them', async () => {
  const messages = new FakeMessages([stored(1, 'read from the store'), stored(3, 'third')]);
  const { p, queue } = publisher(
    [endpoint('https://bodies.example/hook', ALL, true), endpoint('https://plain.example/hook')],
    { messages },
  );
  await p.messagesStored([
    notice(1, ['ann']),
    notice(2, ['ann'], { body: 'at hand' }),
    notice(3, ['ann']),
    notice(4, ['ann']), // not in the store (pruned): no body
  ]);
  await p.settled();
  // Only the notices without a body are read, in one call.
  assert.deepEqual(messages.calls, [
    [
      { conv: 'g:team', seq: 1 },
      { conv: 'g:team', seq: 3 },
      { conv: 'g:team', seq: 4 },
    ],
  ]);
  const bodies = (url: string) =>
    queue
      .all()
      .filter((d) => d.endpoint === url)
      .map((d) => [d.event.data.seq, 'body' in d.event.data ? d.event.data.body : '(none)']);
  assert.deepEqual(bodies('https://bodies.example/hook'), [
    [1, 'read from the store'],
    [2, 'at hand'],
    [3, 'third'],
    [4, '(none)'],
  ]);
  assert.deepEqual(bodies('https://plain.example/hook'), [
    [1, '(none)'],
    [2, '(none)'],
    [3, '(none)'],
    [4, '(none)'],
  ]);
});

test('without an endpoint taking bodies, a notice lacking one is not read and the event has none', async () => {
  const messages = new FakeMessages([stored(1, 'secret')]);
  const { p, queue } = publisher(
    [
      endpoint('https://plain.example/hook'),
      endpoint('https://groups.example/hook', ['group.changed'], true),
    ],
    { messages },
  );
  await p.messagesStored([notice(1, ['ann'])]);
  await p.settled();
  assert.deepEqual(messages.calls, []);
  assert.deepEqual(
    queue.all().map((d) => [d.endpoint, d.event.data]),
    [['https://plain.example/hook', { conv: 'g:team', seq: 1, from: 'ann', kind: 'text' }]],
  );
});

test("each endpoint gets the events it takes, and nothing is read or queued when none takes a message's", async () => {
  const messages = new FakeMessages([stored(2, '{"type":"renamed","name":"x"}', { kind: 'system' })]);
  const { p, queue, heard } = publisher(
    [
      endpoint('https://messages.example/hook', ['message.stored']),
      endpoint('https://groups.example/hook', ['group.changed', 'user.online']),
      endpoint('https://devices.example/hook', ['device.registered', 'device.revoked', 'user.offline']),
    ],
    { messages },
  );
  await p.messagesStored([notice(1, ['ann'], { body: 'hi' }), notice(2, ['ann'], { kind: 'system' })]);
  p.presenceChanged('ann', 'online', 5_000);
  p.presenceChanged('ann', 'offline', 6_000);
  p.deviceChanged('ann', 'phone', 'registered', 7_000);
  p.deviceChanged('ann', 'phone', 'revoked', 8_000);
  await p.settled();
  const got = (url: string) =>
    queue
      .all()
      .filter((d) => d.endpoint === url)
      .map((d) => d.event.type);
  assert.deepEqual(got('https://messages.example/hook'), ['message.stored']);
  assert.deepEqual(got('https://groups.example/hook'), ['group.changed', 'user.online']);
  assert.deepEqual(got('https://devices.example/hook'), [
    'user.offline',
    'device.registered',
    'device.revoked',
  ]);
  assert.equal(
    heard.queuedCounts.reduce((a, b) => a + b, 0),
    queue.all().length,
  );

  // Only presence endpoints: a message (even one lacking its body) is neither read nor queued.
  const readBefore = messages.calls.length;
  const only = publisher([endpoint('https://presence.example/hook', ['user.online'])], { messages });
  await only.p.messagesStored([notice(3, ['ann'], { kind: 'system' }), notice(4, ['ann'])]);
  await only.p.settled();
  assert.equal(messages.calls.length, readBefore, 'read for no endpoint');
  assert.equal(only.queue.attempts, 0);
});

test('deliveries are queued in report order, even while an earlier report is still reading bodies', async () => {
  const messages = new FakeMessages([stored(1, 'slow body')]);
  const reading = gate();
  messages.gate = reading.wait;
  const { p, queue } = publisher([endpoint('https://bodies.example/hook', ALL, true)], { messages });
  const first = p.messagesStored([notice(1, ['ann'])]);
  const second = p.messagesStored([notice(2, ['ann'], { body: 'at hand' })]);
  p.presenceChanged('ann', 'online', 9_000);
  p.deviceChanged('ann', 'tablet', 'registered', 9_001);
  let firstDone = false;
  void first.then(() => (firstDone = true));
  await turns();
  assert.equal(messages.calls.length, 1, 'the first report is reading');
  assert.deepEqual(queue.calls, [], 'a later report was queued before the earlier one');
  assert.equal(firstDone, false);
  reading.open();
  await second;
  assert.equal(firstDone, true);
  await p.settled();
  assert.deepEqual(
    queue.all().map((d) => d.event.id),
    [
      'message.stored:g:team:1',
      'message.stored:g:team:2',
      'user.online:ann:9000',
      'device.registered:ann:tablet:9001',
    ],
  );
  assert.equal(queue.all()[0]!.event.data.body, 'slow body');
});

test('a queue that keeps failing: the events are dropped after the retries, reported, and nothing rejects', async () => {
  const queue = new FakeQueue();
  queue.failures = Number.POSITIVE_INFINITY;
  const { p, heard } = publisher([endpoint('https://a.example/hook'), endpoint('https://b.example/hook')], {
    queue,
    retryMs: [1, 2, 3],
  });
  await p.messagesStored([notice(1, ['ann'], { body: 'x' }), notice(2, ['ann'], { body: 'y' })]);
  assert.equal(queue.attempts, 4, 'one attempt and its three retries');
  assert.deepEqual(heard.drops, [[4, 'queue_failing']]);
  assert.deepEqual(heard.queuedCounts, []);
  p.presenceChanged('ann', 'online', 1);
  await p.settled();
  assert.equal(queue.attempts, 8);
  assert.deepEqual(heard.drops, [
    [4, 'queue_failing'],
    [2, 'queue_failing'],
  ]);
  // The queue comes back: what is reported next is queued.
  queue.failures = 0;
  await p.messagesStored([notice(3, ['ann'], { body: 'z' })]);
  assert.deepEqual(
    queue.all().map((d) => [d.endpoint, d.event.id]),
    [
      ['https://a.example/hook', 'message.stored:g:team:3'],
      ['https://b.example/hook', 'message.stored:g:team:3'],
    ],
  );
  assert.deepEqual(heard.queuedCounts, [2]);
});

test('a queue failing fewer times than the retries: the deliveries are queued once, in order', async () => {
  const queue = new FakeQueue();
  queue.failures = 2;
  const { p, heard } = publisher([endpoint('https://a.example/hook')], { queue, retryMs: [1, 1, 1] });
  await p.messagesStored([notice(1, ['ann'], { body: 'x' })]);
  p.presenceChanged('ann', 'offline', 2);
  await p.settled();
  assert.equal(queue.attempts, 4);
  assert.deepEqual(
    queue.all().map((d) => d.event.id),
    ['message.stored:g:team:1', 'user.offline:ann:2'],
  );
  assert.deepEqual(heard.drops, []);
  assert.deepEqual(heard.queuedCounts, [1, 1]);
});

test('messages whose bodies cannot be read are dropped and reported; later reports go on', async () => {
  const messages = new FakeMessages([stored(2, 'fine')]);
  messages.failWith = new Error('the store is down');
  const { p, queue, heard } = publisher([endpoint('https://bodies.example/hook', ALL, true)], { messages });
  await p.messagesStored([notice(1, ['ann'])]);
  assert.deepEqual(heard.drops, [[1, 'queue_failing']]);
  messages.failWith = null;
  await p.messagesStored([notice(2, ['ann'])]);
  assert.deepEqual(
    queue.all().map((d) => [d.event.id, d.event.data.body]),
    [['message.stored:g:team:2', 'fine']],
  );
});

test('a read failing while an earlier report is still reading is dropped without an unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  try {
    const reading = gate();
    let calls = 0;
    const messages = {
      getMany: async (refs: readonly { conv: string; seq: number }[]) => {
        calls++;
        if (calls === 1) {
          await reading.wait;
          return refs.map((r) => stored(r.seq, 'first'));
        }
        throw new Error('the store is down');
      },
    };
    const queue = new FakeQueue();
    const heard = new Heard();
    const p = new WebhookPublisher(
      queue,
      [endpoint('https://bodies.example/hook', ALL, true)],
      silentLogger,
      heard,
      messages,
      [1],
    );
    const first = p.messagesStored([notice(1, ['ann'])]);
    // Its read fails at once, while the first report's read still waits.
    const second = p.messagesStored([notice(2, ['ann'])]);
    await turns();
    reading.open();
    await Promise.all([first, second]);
    await turns();
    assert.deepEqual(
      queue.all().map((d) => d.event.id),
      ['message.stored:g:team:1'],
    );
    assert.deepEqual(heard.drops, [[1, 'queue_failing']]);
    assert.deepEqual(unhandled.map(String), [], 'a rejection went unhandled');
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('presence and device events: their ids, keys and data', async () => {
  const { p, queue } = publisher([endpoint('https://a.example/hook')]);
  p.presenceChanged('ann', 'online', 1_700_000_000_000);
  p.presenceChanged('ann', 'offline', 1_700_000_000_500);
  p.deviceChanged('bob', 'laptop', 'registered', 1_700_000_001_000);
  p.deviceChanged('bob', 'laptop', 'revoked', 1_700_000_002_000);
  await p.settled();
  assert.deepEqual(queue.all(), [
    {
      endpoint: 'https://a.example/hook',
      key: 'ann',
      event: {
        id: 'user.online:ann:1700000000000',
        type: 'user.online',
        ts: 1_700_000_000_000,
        data: { user: 'ann' },
      },
    },
    {
      endpoint: 'https://a.example/hook',
      key: 'ann',
      event: {
        id: 'user.offline:ann:1700000000500',
        type: 'user.offline',
        ts: 1_700_000_000_500,
        data: { user: 'ann' },
      },
    },
    {
      endpoint: 'https://a.example/hook',
      key: 'bob',
      event: {
        id: 'device.registered:bob:laptop:1700000001000',
        type: 'device.registered',
        ts: 1_700_000_001_000,
        data: { user: 'bob', device: 'laptop' },
      },
    },
    {
      endpoint: 'https://a.example/hook',
      key: 'bob',
      event: {
        id: 'device.revoked:bob:laptop:1700000002000',
        type: 'device.revoked',
        ts: 1_700_000_002_000,
        data: { user: 'bob', device: 'laptop' },
      },
    },
  ]);
  // Reported again (a crash and a replay): the same ids, so receivers deduplicate.
  p.presenceChanged('ann', 'online', 1_700_000_000_000);
  await p.settled();
  assert.equal(queue.all().at(-1)!.event.id, 'user.online:ann:1700000000000');
});

test('settled waits until everything reported so far is queued', async () => {
  const queue = new FakeQueue();
  const held = gate();
  queue.gate = held.wait;
  const { p } = publisher([endpoint('https://a.example/hook')], { queue });
  p.presenceChanged('ann', 'online', 1);
  const reported = p.messagesStored([notice(1, ['ann'], { body: 'x' })]);
  let settled = false;
  const waiting = p.settled().then(() => (settled = true));
  await turns();
  assert.equal(settled, false, 'settled before the queue took the deliveries');
  assert.equal(queue.attempts, 1, 'the second report went to the queue before the first was queued');
  held.open();
  await waiting;
  await reported;
  assert.deepEqual(
    queue.all().map((d) => d.event.id),
    ['user.online:ann:1', 'message.stored:g:team:1'],
  );
  // Nothing pending: settled resolves at once.
  await p.settled();
});
