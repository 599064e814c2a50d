// Runs the push ports' conformance suites (devices, push queue, dead letters, and webhook dead
// letters beside them) against the embedded SQLite adapter, then what only the embedded engine
// has: durability across reopen, revocations kept a bounded time, the queue's batching, waking
// and polling, and migration 4.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { ulid } from 'ulid';
import { DEVICE_QUEUE_RETENTION_MS } from '../../ports/device-queue.js';
import { REVOCATION_RETENTION_MS } from '../../ports/device-store.js';
import type { PushRegistration } from '../../ports/push-provider.js';
import type { DeadLetter, PushJob } from '../../ports/push-queue.js';
import { MUTED_FOREVER } from '../../ports/user-store.js';
import { deviceQueueSuite } from '../conformance/device-queue.suite.js';
import { deviceStoreSuite } from '../conformance/device-store.suite.js';
import { keyDirectorySuite } from '../conformance/key-directory.suite.js';
import { mediaIndexSuite } from '../conformance/media-index.suite.js';
import { pushDeadLettersSuite, webhookDeadLettersSuite } from '../conformance/push-dead-letters.suite.js';
import { pushQueueSuite } from '../conformance/push-queue.suite.js';
import { migrate } from './schema.js';
import {
  JOB_BATCH_SIZE as PUSH_BATCH_SIZE,
  JOB_BATCHES_IN_FLIGHT as PUSH_BATCHES_IN_FLIGHT,
} from './sqlite-job-queue.js';
import { SqliteStore } from './sqlite-store.js';
import { DEAD_LETTER_RETENTION_MS } from './writer-apply.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-push-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
/** A path for a new database file in the test directory. */
const newPath = () => join(dir, `store-${++files}.db`);

deviceStoreSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { store: s.devices, close: () => s.close() };
});

/**
 * A store and a second one on the same file (as the CLI opens it beside a running server), for
 * the suites whose concurrency tests spread calls over two processes' stores.
 */
const twoStores = async () => {
  const path = newPath();
  const [s, other] = [new SqliteStore(path), new SqliteStore(path)];
  return { s, other, close: async () => void (await Promise.all([s.close(), other.close()])) };
};

keyDirectorySuite('SqliteStore', async () => {
  const { s, other, close } = await twoStores();
  return { store: s.keys, other: () => other.keys, close };
});

deviceQueueSuite('SqliteStore', async () => {
  const { s, other, close } = await twoStores();
  return { store: s.deviceQueue, other: () => other.deviceQueue, close };
});

mediaIndexSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { store: s.media, close: () => s.close() };
});

pushQueueSuite('SqliteStore', async () => {
  const path = newPath();
  let s = new SqliteStore(path);
  const harness = {
    queue: s.pushQueue,
    // A crash as far as the queue can tell: the store closes without waiting for handlers, and a
    // new store opens the file.
    restart: async () => {
      await s.close();
      s = new SqliteStore(path);
      harness.queue = s.pushQueue;
    },
    close: () => s.close(),
  };
  return harness;
});

pushDeadLettersSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { store: s.deadLetters, close: () => s.close() };
});

webhookDeadLettersSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { store: s.webhookDeadLetters, close: () => s.close() };
});

let jobs = 0;
/** A job of `user`, for a conversation of its own unless given. */
const job = (user: string, conv = `g:c${jobs + 1}`): PushJob => {
  jobs++;
  return { user, device: 'phone', conv, seq: jobs, from: 'a', kind: 'text', inbox: jobs, ts: 1_000 + jobs };
};

async function until(what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Rows of `push_jobs`, read with a connection of its own. */
function queuedRows(path: string): { user: string; conv: string; seq: number }[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT user, conv, seq FROM push_jobs ORDER BY id').all() as {
      user: string;
      conv: string;
      seq: number;
    }[];
  } finally {
    db.close();
  }
}

describe('SqliteStore: devices, mutes and the push queue', () => {
  test('devices, revocations, mutes, dead letters and unfinished jobs survive close and reopen', async () => {
    const path = newPath();
    const now = Date.now();
    const fcm: PushRegistration = { platform: 'fcm', token: 't1' };
    const web: PushRegistration = {
      platform: 'webpush',
      endpoint: 'https://push.example.com/x',
      keys: { p256dh: 'p', auth: 'a' },
    };
    const letter: DeadLetter = {
      id: '01J0000000000000000000000A',
      job: job('zoe'),
      platform: 'fcm',
      reason: 'r',
      attempts: 5,
      ts: now,
    };
    const first = new SqliteStore(path);
    await first.devices.seen('ann', 'phone', now);
    await first.devices.seen('ann', 'laptop', now + 1);
    await first.devices.seen('ann', 'old', now - 1);
    await first.devices.setPush('ann', 'phone', fcm);
    await first.devices.setPush('ann', 'laptop', web);
    assert.equal(await first.devices.revoke('ann', 'old', now + 2), true);
    await first.users.setMute('ann', 'g:a', MUTED_FOREVER);
    await first.users.setMute('ann', 'g:b', now + 60_000);
    await first.users.setMute('ann', 'g:c', now + 60_000);
    await first.users.setMute('ann', 'g:c', null);
    await first.deadLetters.add([letter]);
    // Jobs: one handled (deleted), one handed out and held when the store closes, and two more of
    // the held job's user, never handed out (a user's next jobs wait for their batch in flight).
    const [done, held, queued1, queued2] = [job('bob'), job('cid'), job('cid'), job('cid')];
    const handed: PushJob[] = [];
    const sub = await first.pushQueue.consume(async (batch) => {
      handed.push(...batch);
      if (batch.some((j) => j.user === 'cid')) await new Promise(() => {});
    });
    await first.pushQueue.enqueue([done]);
    await until('the handled job deleted', () => handed.length === 1 && queuedRows(path).length === 0);
    await first.pushQueue.enqueue([held]);
    await until('the held job handed out', () => handed.length === 2);
    await first.pushQueue.enqueue([queued1, queued2]);
    // The held batch never ends: closing the store does not wait for it (nor does `sub` close).
    void sub;
    await first.close();

    const second = new SqliteStore(path);
    try {
      assert.deepEqual(await second.devices.list('ann'), [
        { device: 'laptop', lastSeen: now + 1, push: web },
        { device: 'phone', lastSeen: now, push: fcm },
      ]);
      assert.equal(await second.devices.revokedAt('ann', 'old'), now + 2);
      assert.deepEqual(
        await second.users.mutes('ann', ['g:a', 'g:b', 'g:c']),
        new Map([
          ['g:a', MUTED_FOREVER],
          ['g:b', now + 60_000],
        ]),
      );
      assert.deepEqual(await second.deadLetters.list(10), [letter]);
      const again: PushJob[] = [];
      const sub2 = await second.pushQueue.consume(async (batch) => {
        again.push(...batch);
      });
      await until('the jobs left', () => again.length === 3);
      await sub2.close();
      assert.deepEqual(again, [held, queued1, queued2]);
      assert.deepEqual(queuedRows(path), []);
    } finally {
      await second.close();
    }
  });

  test(`revocations are kept ${REVOCATION_RETENTION_MS / 86_400_000} days after the newest one`, async () => {
    const store = new SqliteStore(newPath());
    try {
      const t = Date.now();
      await store.devices.revoke('ann', 'old', t);
      await store.devices.revoke('ann', 'recent', t + 2 * 86_400_000);
      await store.devices.revoke('bob', 'edge', t + REVOCATION_RETENTION_MS);
      assert.equal(await store.devices.revokedAt('ann', 'old'), t, 'pruned before its time');
      await store.devices.revoke('bob', 'x', t + REVOCATION_RETENTION_MS + 1);
      assert.equal(await store.devices.revokedAt('ann', 'old'), undefined);
      assert.equal(await store.devices.revokedAt('ann', 'recent'), t + 2 * 86_400_000);
      assert.equal(await store.devices.revokedAt('bob', 'edge'), t + REVOCATION_RETENTION_MS);
    } finally {
      await store.close();
    }
  });

  test('a held batch of one user holds neither other users nor the queue; that user waits', async () => {
    const store = new SqliteStore(newPath());
    const got: PushJob[] = [];
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const sub = await store.pushQueue.consume(async (batch) => {
      got.push(...batch);
      if (batch.some((j) => j.user === 'slow')) await gate;
    });
    try {
      await store.pushQueue.enqueue([job('slow')]);
      await until('the slow batch', () => got.length === 1);
      const later = job('slow');
      await store.pushQueue.enqueue([job('fast'), later, job('other')]);
      await until('the other users', () => got.filter((j) => j.user !== 'slow').length === 2);
      assert.ok(!got.includes(later), "the slow user's next job was handed out while its batch was held");
      release();
      await until("the slow user's next job", () => got.some((j) => j.seq === later.seq));
    } finally {
      release();
      await sub.close();
      await store.close();
    }
  });

  test(`batches hold at most ${PUSH_BATCH_SIZE} jobs, and at most ${PUSH_BATCHES_IN_FLIGHT} are in flight`, async () => {
    const path = newPath();
    const store = new SqliteStore(path);
    const sizes: number[] = [];
    let inFlight = 0;
    let most = 0;
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const sub = await store.pushQueue.consume(async (batch) => {
      sizes.push(batch.length);
      most = Math.max(most, ++inFlight);
      await gate;
      inFlight--;
    });
    try {
      // 10 users with 200 jobs each, one user after the other: batches of different users.
      const all = Array.from({ length: 2_000 }, (_, i) => job(`u${Math.floor(i / 200)}`));
      await store.pushQueue.enqueue(all);
      await until('4 batches in flight', () => inFlight === PUSH_BATCHES_IN_FLIGHT);
      release();
      await until('every job', () => sizes.reduce((a, b) => a + b, 0) === all.length);
      assert.equal(most, PUSH_BATCHES_IN_FLIGHT);
      assert.ok(Math.max(...sizes) <= PUSH_BATCH_SIZE, `a batch of ${Math.max(...sizes)}`);
      await until('every row deleted', () => queuedRows(path).length === 0);
    } finally {
      release();
      await sub.close();
      await store.close();
    }
  });

  test('a job merged into a queued one replaces it in place of the later job; a handed-out one is not touched', async () => {
    const path = newPath();
    const store = new SqliteStore(path, { pushPollMs: 60_000 });
    try {
      const a1 = job('ann', 'g:a');
      const b = job('ann', 'g:b');
      const a2 = job('ann', 'g:a');
      await store.pushQueue.enqueue([a1, b]);
      await store.pushQueue.enqueue([a2]);
      // a2 replaced a1 and stands after b; an older job of the key is dropped.
      await store.pushQueue.enqueue([{ ...a1 }]);
      assert.deepEqual(
        queuedRows(path).map((r) => r.seq),
        [b.seq, a2.seq],
      );
      const got: PushJob[] = [];
      const sub = await store.pushQueue.consume(async (batch) => {
        got.push(...batch);
      });
      await until('both', () => got.length === 2);
      await sub.close();
      assert.deepEqual(got, [b, a2]);
    } finally {
      await store.close();
    }
  });

  test('enqueue wakes an idle consumer at once, without waiting for the poll', async () => {
    const store = new SqliteStore(newPath(), { pushPollMs: 60_000 });
    const got: PushJob[] = [];
    const sub = await store.pushQueue.consume(async (batch) => {
      got.push(...batch);
    });
    try {
      for (let i = 0; i < 3; i++) {
        const j = job('ann');
        await store.pushQueue.enqueue([j]);
        await until('the job', () => got.some((g) => g.seq === j.seq), 2_000);
      }
    } finally {
      await sub.close();
      await store.close();
    }
  });

  test('jobs another process queued are found by the poll', async () => {
    const path = newPath();
    const store = new SqliteStore(path, { pushPollMs: 50 });
    const other = new SqliteStore(path);
    const got: PushJob[] = [];
    const sub = await store.pushQueue.consume(async (batch) => {
      got.push(...batch);
    });
    try {
      const j = job('ann');
      await other.pushQueue.enqueue([j]);
      await until('the job queued by the other store', () => got.some((g) => g.seq === j.seq));
    } finally {
      await sub.close();
      await other.close();
      await store.close();
    }
  });

  test('migration 4 adds the push tables to a database of version 3, keeping its data', async () => {
    const path = newPath();
    const db = new Database(path);
    migrate(db, 0, 3);
    db.prepare('INSERT INTO blocks (user, blocked) VALUES (?, ?)').run('ann', 'bob');
    db.close();
    const store = new SqliteStore(path);
    try {
      assert.deepEqual(await store.users.blocked('ann'), ['bob']);
      await store.devices.seen('ann', 'phone', 5);
      await store.users.setMute('ann', 'g:a', MUTED_FOREVER);
      assert.deepEqual(await store.devices.list('ann'), [{ device: 'phone', lastSeen: 5 }]);
      assert.deepEqual(await store.users.mutes('ann', ['g:a']), new Map([['g:a', MUTED_FOREVER]]));
    } finally {
      await store.close();
    }
  });
});

test('dead letters older than the retention are deleted as new ones come', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-dlq-retention-'));
  const store = new SqliteStore(join(dir, 'p.db'));
  try {
    const job = { user: 'u', device: 'd', conv: 'dm:u:v', seq: 1, from: 'v', kind: 'text', inbox: 1, ts: 1 };
    const at = (t: number) => ({ id: ulid(t), job, platform: 'fcm', reason: 'x', attempts: 1, ts: t });
    const t0 = Date.now() - DEAD_LETTER_RETENTION_MS - 60_000;
    await store.deadLetters.add([at(t0)]);
    assert.equal((await store.deadLetters.list(10)).length, 1);
    await store.deadLetters.add([at(Date.now())]);
    const left = await store.deadLetters.list(10);
    assert.deepEqual(
      left.map((l) => l.ts > t0),
      [true],
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('to_device messages older than the retention are deleted as new ones come', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-device-queue-retention-'));
  const store = new SqliteStore(join(dir, 'q.db'));
  try {
    const message = (body: string, ts: number) => ({ from: 'bob', fromDevice: 'phone', body, ts });
    const t0 = Date.now() - DEVICE_QUEUE_RETENTION_MS - 60_000;
    assert.equal(await store.deviceQueue.enqueue('ann', 'old', message('stale', t0), 10), 1);
    assert.equal(await store.deviceQueue.enqueue('ann', 'phone', message('stale too', t0), 1), 1);
    // A message for any device prunes every device's old ones; the pruned ones make room.
    assert.equal(await store.deviceQueue.enqueue('ann', 'phone', message('fresh', Date.now()), 1), 2);
    assert.deepEqual(await store.deviceQueue.list('ann', 'old', 0, 10), []);
    assert.deepEqual(
      (await store.deviceQueue.list('ann', 'phone', 0, 10)).map((m) => m.body),
      ['fresh'],
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('migration 5 adds the key, to_device and media tables to a database of version 4, keeping its data', async () => {
  const path = newPath();
  const db = new Database(path);
  migrate(db, 0, 4);
  db.prepare('INSERT INTO devices (user, device, last_seen) VALUES (?, ?, ?)').run('ann', 'phone', 5);
  db.close();
  const store = new SqliteStore(path);
  try {
    assert.deepEqual(await store.devices.list('ann'), [{ device: 'phone', lastSeen: 5 }]);
    assert.equal(
      await store.keys.upload('ann', 'phone', {
        identityKey: 'id',
        oneTimePrekeys: [{ keyId: 1, key: 'k' }],
      }),
      1,
    );
    assert.equal(
      await store.deviceQueue.enqueue(
        'ann',
        'phone',
        { from: 'bob', fromDevice: 'x', body: 'b', ts: Date.now() },
        5,
      ),
      1,
    );
    await store.media.create({ id: 'm_1', owner: 'ann', size: 1, contentType: 'text/plain', createdAt: 1 });
    assert.equal((await store.media.get('m_1'))?.owner, 'ann');
  } finally {
    await store.close();
  }
});
