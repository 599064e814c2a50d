// Resume by inbox cursor on its own: no socket, a fake link whose `sync` replies the test
// scripts, a recording emit, and cursor stores in memory.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CursorStore, MemoryCursorStore } from '../src/cursor.js';
import { ParleyError } from '../src/errors.js';
import type { AnyInboxEvent, ParleyClientEvents } from '../src/events.js';
import { InboxResume, type SyncLink } from '../src/resume.js';
import type { Frame } from '../src/util.js';
import { range } from './helpers.js';

const ev = (n: number): AnyInboxEvent => ({ type: 'message', inbox: n });

/** A server inbox `1..head` answered page by page; `answer` may be replaced to script replies. */
class FakeLink implements SyncLink {
  readonly calls: Frame[] = [];
  readonly sleeps: number[] = [];
  result: { inbox_head: number };
  answer: (frame: Frame) => Promise<Frame>;
  constructor(public head: number) {
    this.result = { inbox_head: head };
    this.answer = async (frame) => this.page(frame);
  }
  page(frame: Frame): Frame {
    const after = frame.after as number;
    const last = Math.min(this.head, after + (frame.limit as number));
    return {
      type: 'reply',
      ok: true,
      events: range(after + 1, last).map(ev),
      inbox_head: this.head,
      more: last < this.head,
    };
  }
  call(frame: Frame): Promise<Frame> {
    this.calls.push(frame);
    return this.answer(frame);
  }
  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    return Promise.resolve();
  }
}

function make(opts: { store?: CursorStore; pageSize?: number } = {}) {
  const delivered: number[] = [];
  const emitted: { event: keyof ParleyClientEvents; payload: unknown }[] = [];
  let current: SyncLink | null = null;
  let caughtUp = 0;
  let open = true;
  let onSynced: () => void = () => {};
  const store = opts.store ?? new MemoryCursorStore();
  const resume = new InboxResume({
    store,
    pageSize: opts.pageSize ?? 3,
    minDelayMs: 10,
    maxDelayMs: 40,
    random: () => 0.5,
    emit: (event, payload) => {
      emitted.push({ event, payload });
      if (event === 'synced') onSynced();
    },
    deliver: (e) => delivered.push(e.inbox),
    open: () => open,
    current: () => current,
    caughtUp: () => {
      caughtUp += 1;
    },
  });
  return {
    resume,
    store,
    delivered,
    emitted,
    of: (event: keyof ParleyClientEvents) => emitted.filter((e) => e.event === event).map((e) => e.payload),
    get caughtUp() {
      return caughtUp;
    },
    setOpen: (v: boolean) => {
      open = v;
    },
    /** Loads the cursor, makes `link` current and reports its head, like a connect. */
    async connect(link: FakeLink): Promise<boolean> {
      await resume.prepare(() => false);
      current = link;
      return resume.onConnect(link, link.head);
    },
    disconnect: () => {
      current = null;
    },
    /** Resolves at the next `synced` event. */
    synced: () =>
      new Promise<void>((resolve) => {
        onSynced = resolve;
      }),
  };
}

test('resume pages sync from the saved cursor until more is false, saves the cursor, then is caught up', async () => {
  const r = make({ store: new MemoryCursorStore(2), pageSize: 3 });
  const link = new FakeLink(9);
  assert.equal(await r.connect(link), true, 'behind the head: a sync is needed');
  const done = r.synced();
  r.resume.startSync(link);
  await done;
  assert.deepEqual(
    link.calls.map((c) => [c.after, c.limit]),
    [
      [2, 3],
      [5, 3],
      [8, 3],
    ],
  );
  assert.deepEqual(r.delivered, range(3, 9));
  assert.equal(r.resume.cursor, 9);
  assert.equal(await r.store.load(), 9);
  assert.equal(r.caughtUp, 1);
  assert.deepEqual(r.of('synced'), [{ inbox: 9 }]);
  assert.equal(await r.connect(link), false, 'up to date: no sync needed');
});

test('live events that arrive while a page is in flight are delivered once, in order', async () => {
  const r = make({ pageSize: 10 });
  const link = new FakeLink(5);
  await r.connect(link);
  let release: () => void = () => {};
  link.answer = (frame) =>
    new Promise<Frame>((resolve) => {
      release = () => resolve(link.page(frame));
    });
  const done = r.synced();
  r.resume.startSync(link);
  r.resume.offer(link, ev(1));
  r.resume.offer(link, ev(2));
  r.resume.offer(link, ev(2));
  r.resume.offer(link, ev(6)); // beyond the head: held, and the one sync loop keeps running
  assert.deepEqual(r.delivered, [1, 2]);
  assert.equal(link.calls.length, 1, 'no second loop on the same link');
  release();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(r.delivered, range(1, 6), 'the page fills 3..5 and releases the held 6');
  r.resume.offer(link, ev(6));
  r.resume.offer(link, ev(7));
  await done;
  assert.deepEqual(r.delivered, range(1, 7));
});

test('a live event past a gap starts a sync that fills it', async () => {
  const r = make();
  const link = new FakeLink(0);
  assert.equal(await r.connect(link), false);
  const done = r.synced();
  link.head = 4;
  r.resume.offer(link, ev(4));
  await done;
  assert.deepEqual(r.delivered, [1, 2, 3, 4]);
  assert.deepEqual(link.calls[0], { type: 'sync', after: 0, limit: 3 });
});

test('gone skips to the connect head and asks for a resync; other errors back off and retry', async () => {
  const r = make({ store: new MemoryCursorStore(5) });
  const link = new FakeLink(100);
  await r.connect(link);
  let n = 0;
  link.answer = async (frame) => {
    n += 1;
    if (n === 1) throw new ParleyError('unavailable', 'busy');
    if (n === 2) throw new ParleyError('rate_limited', 'slow down', { retryAfterMs: 25 });
    if (n === 3) throw new ParleyError('gone', 'past retention');
    return link.page(frame);
  };
  const done = r.synced();
  r.resume.startSync(link);
  await done;
  assert.deepEqual(r.of('resync_required'), [{ reason: 'gone', from: 5, to: 100 }]);
  assert.deepEqual(link.sleeps, [5, 25], 'full-jitter backoff (0.5 × 10 ms), then retry_after_ms');
  assert.deepEqual(
    r.of('error').map((e) => (e as ParleyError).code),
    ['unavailable', 'rate_limited'],
  );
  assert.deepEqual(r.delivered, [], 'nothing below the jump is delivered');
  assert.equal(r.resume.cursor, 100);
  assert.equal(await r.store.load(), 100);
});

test('a saved cursor ahead of the server head is moved back with resync_required', async () => {
  const r = make({ store: new MemoryCursorStore(50) });
  assert.equal(await r.connect(new FakeLink(20)), false);
  assert.equal(r.resume.cursor, 20);
  assert.deepEqual(r.of('resync_required'), [{ reason: 'cursor_ahead', from: 50, to: 20 }]);
  assert.equal(await r.store.load(), 20);
});

test('the cursor is loaded once; a store value that is not a cursor counts as 0 and is reported', async () => {
  let loads = 0;
  const store: CursorStore = {
    load: () => {
      loads += 1;
      return -3;
    },
    save: () => {},
  };
  const r = make({ store });
  await r.connect(new FakeLink(0));
  assert.equal(
    r.resume.prepare(() => false),
    null,
    'loaded already',
  );
  assert.equal(loads, 1);
  assert.equal(r.resume.cursor, 0);
  assert.match(String((r.of('error')[0] as Error).message), /cursor store returned -3/);
});

test('a lost connection stops the loop; the sync of the next connection starts from the cursor', async () => {
  const r = make();
  const first = new FakeLink(6);
  await r.connect(first);
  first.answer = async (frame) => {
    r.disconnect();
    return first.page(frame);
  };
  r.resume.startSync(first);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(r.delivered, [], 'a page for a lost connection is dropped');
  assert.equal(r.caughtUp, 0);
  const second = new FakeLink(6);
  await r.connect(second);
  const done = r.synced();
  r.resume.startSync(second);
  await done;
  assert.deepEqual(r.delivered, range(1, 6));
  assert.equal(second.calls[0]?.after, 0);
});

test('saves to an asynchronous store run one at a time, the latest value wins, saved() waits for them', async () => {
  const saves: number[] = [];
  let inFlight = 0;
  const store: CursorStore = {
    load: () => 0,
    save: async (n) => {
      inFlight += 1;
      assert.equal(inFlight, 1, 'never concurrent');
      await new Promise((resolve) => setTimeout(resolve, 5));
      saves.push(n);
      inFlight -= 1;
    },
  };
  const r = make({ store });
  const link = new FakeLink(0);
  await r.connect(link);
  for (const n of range(1, 5)) r.resume.offer(link, ev(n));
  await r.resume.saved();
  assert.deepEqual(saves, [1, 5]);
  assert.deepEqual(r.of('error'), []);
});
