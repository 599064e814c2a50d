import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CursorStore, MemoryCursorStore } from '../src/index.js';
import { messageEvent, sleep, waitUntil } from './fake-server.js';
import { range, withFakeServer } from './helpers.js';

const fx = withFakeServer();
const client = (opts: Parameters<typeof fx.client>[0] = {}) => fx.client(opts);

/** A cursor store that records every save. */
class RecordingStore implements CursorStore {
  saves: number[] = [];
  constructor(private value = 0) {}
  load(): number {
    return this.value;
  }
  save(inbox: number): void {
    this.value = inbox;
    this.saves.push(inbox);
  }
  get current(): number {
    return this.value;
  }
}

test('resume pages through sync (3 pages) from the cursor until more is false, then saves the cursor', async () => {
  fx.server.append(25);
  fx.server.syncPageCap = 10;
  const store = new RecordingStore();
  const { client: c, log } = client({ cursorStore: store, syncPageSize: 10 });
  await c.connect();
  await c.whenSynced();
  const syncs = fx.server.framesOf('sync').map((r) => [r.frame.after, r.frame.limit]);
  assert.deepEqual(syncs, [
    [0, 10],
    [10, 10],
    [20, 10],
  ]);
  assert.deepEqual(
    log.messages.map((m) => m.inbox),
    range(1, 25),
  );
  assert.equal(log.messages[0]?.body, 'message 1');
  assert.equal(c.inboxCursor, 25);
  assert.equal(store.current, 25);
  assert.deepEqual(store.saves, [10, 20, 25], 'saved after each page');
  assert.deepEqual(log.synced, [25]);
  assert.ok(log.states.includes('connecting>syncing') && log.states.includes('syncing>connected'));
});

test('resume from a saved cursor, across a reconnect, fetches only what was missed', async () => {
  fx.server.append(12);
  const { client: c, log } = client({ cursorStore: new MemoryCursorStore(7) });
  await c.connect();
  await c.whenSynced();
  assert.deepEqual(
    log.messages.map((m) => m.inbox),
    range(8, 12),
  );
  fx.server.dropAll();
  await waitUntil(() => fx.server.openConns.length === 0 && c.state === 'connecting');
  fx.server.append(3); // arrives while the device is offline
  await waitUntil(() => log.connected === 2 && c.state === 'connected', 2000, 'resync');
  assert.deepEqual(
    fx.server.framesOf('sync').map((r) => r.frame.after),
    [7, 12],
  );
  assert.deepEqual(
    log.messages.map((m) => m.inbox),
    range(8, 15),
  );
  assert.deepEqual(log.synced, [12, 15]);
});

test('live events during sync: no repeats, no losses, in order', async () => {
  fx.server.append(30);
  fx.server.syncPageCap = 10;
  fx.server.syncDelayMs = 15;
  fx.server.onSyncRequest = (_frame, _conn, nth) => {
    if (nth === 0) {
      fx.server.push(fx.server.inbox[0] as Record<string, unknown>); // 1 arrives live before its page
      fx.server.push(fx.server.inbox[4] as Record<string, unknown>); // 5: above the gap, held
      fx.server.append(2, { live: true }); // 31, 32: new, live
    }
    if (nth === 1) {
      fx.server.push(fx.server.inbox[14] as Record<string, unknown>); // 15 again
      fx.server.push(fx.server.inbox[31] as Record<string, unknown>); // 32 again
      fx.server.push(fx.server.inbox[10] as Record<string, unknown>); // 11 (already emitted by page 1? no: page 2 pending)
    }
  };
  const { client: c, log } = client({ syncPageSize: 10 });
  await c.connect();
  await c.whenSynced();
  fx.server.append(1, { live: true }); // 33, live after catching up
  await waitUntil(() => c.inboxCursor === 33);
  assert.deepEqual(log.inbox, range(1, 33));
  assert.deepEqual(
    log.messages.map((m) => m.inbox),
    range(1, 33),
  );
  assert.equal(c.state, 'connected');
});

test('a live event that jumps past cursor + 1 triggers a sync that fills the gap', async () => {
  const { client: c, log } = client();
  await c.connect();
  await c.whenSynced();
  assert.equal(fx.server.framesOf('sync').length, 0, 'nothing to sync on an empty inbox');
  fx.server.append(1, { live: true }); // 1
  await waitUntil(() => log.inbox.length === 1);
  fx.server.append(2); // 2, 3: stored but lost on the live path
  fx.server.append(1, { live: true }); // 4: the jump
  await waitUntil(() => c.inboxCursor === 4, 2000, 'gap filled');
  assert.deepEqual(log.inbox, [1, 2, 3, 4]);
  assert.deepEqual(
    fx.server.framesOf('sync').map((r) => r.frame.after),
    [1],
  );
  assert.deepEqual(log.synced, [0, 4]);
});

test('a sync that ends with a gap still open (server read lagging) retries until the gap is filled', async () => {
  const { client: c, log } = client();
  await c.connect();
  await c.whenSynced();
  // Inbox 3 is delivered live while the store only has 1 so far (its read path lags).
  fx.server.append(1);
  fx.server.push(messageEvent(3));
  await waitUntil(() => fx.server.framesOf('sync').length >= 1);
  await sleep(30);
  assert.equal(c.inboxCursor, 1, '1 came from sync; 3 is held above the gap');
  assert.notEqual(c.state, 'closed');
  fx.server.inbox.push(messageEvent(2), messageEvent(3)); // the store catches up
  await waitUntil(() => c.inboxCursor === 3, 2000, 'retry sync');
  assert.deepEqual(log.inbox, [1, 2, 3]);
  assert.ok(fx.server.framesOf('sync').length >= 2);
});

test('sync errors are retried with backoff; gone emits resync_required and moves the cursor to inbox_head', async () => {
  fx.server.append(10);
  fx.server.syncErrors.push({ code: 'unavailable' });
  fx.server.goneBelow = 5;
  const store = new RecordingStore(2);
  const { client: c, log } = client({ cursorStore: store });
  await c.connect();
  await c.whenSynced();
  assert.deepEqual(log.resync, [{ reason: 'gone', from: 2, to: 10 }]);
  assert.equal(c.inboxCursor, 10);
  assert.equal(store.current, 10);
  assert.deepEqual(log.inbox, [], 'nothing below the retention is emitted');
  assert.ok(log.errors.some((e) => (e as { code?: string }).code === 'unavailable'));
  fx.server.append(1, { live: true });
  await waitUntil(() => c.inboxCursor === 11);
  assert.deepEqual(log.inbox, [11]);
});

test('a saved cursor ahead of the server inbox_head is moved back, with resync_required', async () => {
  fx.server.append(4);
  const { client: c, log } = client({ cursorStore: new MemoryCursorStore(50) });
  await c.connect();
  await c.whenSynced();
  assert.deepEqual(log.resync, [{ reason: 'cursor_ahead', from: 50, to: 4 }]);
  fx.server.append(1, { live: true });
  await waitUntil(() => c.inboxCursor === 5);
  assert.deepEqual(log.inbox, [5], 'new events are not mistaken for repeats');
});

test('an asynchronous cursor store is saved one call at a time and flushed by close()', async () => {
  fx.server.append(6);
  fx.server.syncPageCap = 2;
  let inFlight = 0;
  let maxInFlight = 0;
  let value = 0;
  const store: CursorStore = {
    load: async () => 0,
    save: async (n) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(25);
      value = n;
      inFlight -= 1;
    },
  };
  const { client: c } = client({ cursorStore: store, syncPageSize: 2 });
  await c.connect();
  await c.whenSynced();
  await c.close();
  assert.equal(value, 6, 'the last cursor was saved before close() resolved');
  assert.equal(maxInFlight, 1);
});

test('receipt inbox events are emitted as receipt, unknown inbox types only as inbox', async () => {
  fx.server.inbox.push(
    messageEvent(1),
    { type: 'receipt', inbox: 2, conv: 'dm:alice:bob', user: 'bob', kind: 'read', seq: 1, ts: 5 },
    { type: 'membership', inbox: 3, conv: 'g:x' },
  );
  const { client: c, log } = client();
  const receipts: number[] = [];
  c.on('receipt', (r) => receipts.push(r.seq));
  await c.connect();
  await c.whenSynced();
  assert.deepEqual(log.inbox, [1, 2, 3]);
  assert.deepEqual(
    log.messages.map((m) => m.inbox),
    [1],
  );
  assert.deepEqual(receipts, [1]);
  assert.equal(c.inboxCursor, 3);
});

test('a throwing listener is reported as error and does not stop delivery', async () => {
  fx.server.append(3);
  const { client: c, log } = client();
  c.on('message', (m) => {
    if (m.inbox === 2) throw new Error('app bug');
  });
  await c.connect();
  await c.whenSynced();
  assert.deepEqual(log.inbox, [1, 2, 3]);
  assert.ok(log.errors.some((e) => e.message === 'app bug'));
});

test('close() from inside a message listener stops delivery at once; a later connect resumes without loss', async () => {
  fx.server.append(10);
  const { client: c, log } = client();
  const off = c.on('message', (m) => {
    if (m.inbox === 4) void c.close();
  });
  await c.connect();
  await waitUntil(() => c.state === 'closed');
  await sleep(20);
  assert.deepEqual(log.inbox, [1, 2, 3, 4]);
  assert.equal(c.inboxCursor, 4);
  off();
  await c.connect();
  await c.whenSynced();
  assert.deepEqual(log.inbox, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});
