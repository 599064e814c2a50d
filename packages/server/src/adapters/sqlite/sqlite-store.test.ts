// Runs the store ports' conformance suites against the embedded SQLite adapter, then the tests
// only an embedded engine has: durability across reopen, migrations, and group commit.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { InboxEntry } from '../../ports/inbox-store.js';
import type { StoredMessage } from '../../ports/message-store.js';
import { conversationStoreSuite } from '../conformance/conversation-store.suite.js';
import { fanoutRecoverySuite } from '../conformance/fanout-recovery.suite.js';
import { groupStoreSuite } from '../conformance/group-store.suite.js';
import { inboxPruningSuite } from '../conformance/inbox-pruning.suite.js';
import { inboxStoreSuite } from '../conformance/inbox-store.suite.js';
import { inviteStoreSuite } from '../conformance/invite-store.suite.js';
import { messageStoreSuite } from '../conformance/message-store.suite.js';
import { userStoreSuite } from '../conformance/user-store.suite.js';
import { migrate, SCHEMA_VERSION } from './schema.js';
import { openAndMigrate, SqliteStore } from './sqlite-store.js';
import type { CommitObserver } from './writer-client.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
/** A path for a new database file in the test directory. */
const newPath = () => join(dir, `store-${++files}.db`);

messageStoreSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { store: s.messages, close: () => s.close() };
});
inboxStoreSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { store: s.inbox, close: () => s.close() };
});
fanoutRecoverySuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { recovery: s.fanoutRecovery, messages: s.messages, inbox: s.inbox, close: () => s.close() };
});
inboxPruningSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { pruning: s.inboxPruning, store: s.inbox, close: () => s.close() };
});
conversationStoreSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { store: s.conversations, messages: s.messages, close: () => s.close() };
});
groupStoreSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { messages: s.messages, conversations: s.conversations, close: () => s.close() };
});
userStoreSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { store: s.users, close: () => s.close() };
});
inviteStoreSuite('SqliteStore', async () => {
  const s = new SqliteStore(newPath());
  return { store: s.invites, close: () => s.close() };
});

function msg(conv: string, seq: number, ts = 1_000 + seq): StoredMessage {
  return {
    conv,
    seq,
    ts,
    from: 'alice',
    from_device: 'phone',
    cmid: `c${seq}`,
    kind: 'text',
    body: `m${seq}`,
  };
}

function entry(user: string, inbox: number, conv: string, seq: number, ts: number): InboxEntry {
  return { user, inbox, ts, type: 'message', conv, seq };
}

/** Open file descriptors of this process that point at `path` (Linux), or null where unknown. */
function openDescriptors(path: string): number | null {
  if (!existsSync('/proc/self/fd')) return null;
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) count++;
    } catch {
      // The descriptor closed while listing.
    }
  }
  return count;
}

describe('SqliteStore: the embedded engine', () => {
  test('messages, inbox heads, chat lists, watermarks and fan-out marks survive close and reopen', async () => {
    const path = newPath();
    const conv = 'g:durable';
    const first = new SqliteStore(path);
    await first.messages.append([msg(conv, 1), msg(conv, 2), msg(conv, 3)]);
    await first.inbox.append(
      [entry('bob', 1, conv, 1, 100), entry('bob', 2, conv, 2, 110), entry('bob', 3, conv, 3, 120)],
      [{ conv, seq: 2 }],
    );
    await first.conversations.mergeWatermarks([
      { conv, user: 'bob', delivered: 3, read: 2 },
      { conv, user: 'alice', delivered: 3, read: 3 },
    ]);
    assert.equal(await first.inboxPruning.prune(105), 1);
    // Queued but not awaited: close must commit it before stopping the writer.
    const late = first.messages.append([msg(conv, 4)]);
    await first.close();
    await late;

    const second = new SqliteStore(path);
    try {
      assert.deepEqual(await second.messages.head(conv), { lastSeq: 4, lastTs: msg(conv, 4).ts });
      assert.deepEqual(
        await second.messages.page(conv, { limit: 10 }),
        [1, 2, 3, 4].map((s) => msg(conv, s)),
      );
      assert.deepEqual(await second.messages.findByCmid(conv, 'alice', 'c2'), {
        seq: 2,
        ts: msg(conv, 2).ts,
      });
      assert.deepEqual(await second.fanoutRecovery.unfanned(), [{ conv, fannedSeq: 2, lastSeq: 4 }]);
      assert.equal(await second.inbox.head('bob'), 3);
      assert.equal(await second.inbox.floor('bob'), 2);
      assert.deepEqual(await second.inbox.read('bob', 0, 10), [
        entry('bob', 2, conv, 2, 110),
        entry('bob', 3, conv, 3, 120),
      ]);
      assert.deepEqual(await second.inbox.conversations('bob', 10), [{ conv, lastTs: 120 }]);
      assert.deepEqual(await second.conversations.watermarks(conv), [
        { conv, user: 'alice', delivered: 3, read: 3 },
        { conv, user: 'bob', delivered: 3, read: 2 },
      ]);
      assert.deepEqual(await second.conversations.get(conv), {
        conv,
        kind: 'group',
        createdTs: msg(conv, 1).ts,
        lastSeq: 4,
        lastTs: msg(conv, 4).ts,
      });
    } finally {
      await second.close();
    }
  });

  test('settings, blocks and last seen survive close and reopen, beside the inbox head', async () => {
    const path = newPath();
    const first = new SqliteStore(path);
    await first.users.saveSettings('alice', { readReceipts: false, lastSeen: 'nobody', groupAdd: 'nobody' });
    await first.users.saveSettings('bob', { readReceipts: true, lastSeen: 'nobody', groupAdd: 'everyone' });
    await first.users.setBlocked('alice', 'mallory', true);
    await first.users.setBlocked('alice', 'eve', true);
    await first.users.setBlocked('alice', 'trent', true);
    await first.users.setBlocked('alice', 'trent', false);
    await first.users.setBlocked('bob', 'alice', true);
    // Last seen shares the per-user row with the inbox head: either write keeps the other.
    await first.inbox.append([entry('alice', 1, 'g:u', 1, 100), entry('alice', 2, 'g:u', 2, 110)], []);
    await first.users.saveLastSeen('alice', 5_000);
    await first.users.saveLastSeen('carol', 6_000);
    await first.inbox.append([entry('carol', 1, 'g:u', 1, 100), entry('dave', 1, 'g:u', 1, 100)], []);
    // Queued but not awaited: close must commit it before stopping the writer.
    const late = first.users.saveLastSeen('alice', 7_000);
    await first.close();
    await late;

    const second = new SqliteStore(path);
    try {
      assert.deepEqual(await second.users.settings('alice'), {
        readReceipts: false,
        lastSeen: 'nobody',
        groupAdd: 'nobody',
      });
      assert.deepEqual(await second.users.settings('bob'), {
        readReceipts: true,
        lastSeen: 'nobody',
        groupAdd: 'everyone',
      });
      assert.deepEqual(await second.users.settings('carol'), {
        readReceipts: true,
        lastSeen: 'everyone',
        groupAdd: 'everyone',
      });
      assert.deepEqual(await second.users.blocked('alice'), ['eve', 'mallory']);
      assert.deepEqual(await second.users.blocked('bob'), ['alice']);
      assert.deepEqual(
        // dave has an inbox, so a per-user row, but was never seen: absent all the same.
        await second.users.lastSeen(['alice', 'bob', 'carol', 'dave']),
        new Map([
          ['alice', 7_000],
          ['carol', 6_000],
        ]),
      );
      assert.equal(await second.inbox.head('alice'), 2);
      assert.equal(await second.inbox.head('carol'), 1);
      assert.deepEqual(await second.inbox.read('carol', 0, 10), [entry('carol', 1, 'g:u', 1, 100)]);
    } finally {
      await second.close();
    }
  });

  test('group names and member records survive close and reopen', async () => {
    const path = newPath();
    const conv = 'g:durable-group';
    const first = new SqliteStore(path);
    await first.messages.append(
      [msg(conv, 1), msg(conv, 2)],
      [
        {
          type: 'create',
          conv,
          seq: 1,
          name: 'Durable',
          createdTs: 900,
          members: [
            { user: 'alice', role: 'admin' },
            { user: 'bob', role: 'member' },
          ],
        },
        { type: 'join', conv, seq: 2, users: ['carol'] },
      ],
    );
    const late = first.messages.append(
      [msg(conv, 3)],
      [
        { type: 'remove', conv, seq: 3, users: ['alice'] },
        { type: 'role', conv, seq: 3, user: 'bob', role: 'admin' },
        { type: 'rename', conv, seq: 3, name: 'Renamed' },
      ],
    );
    await first.close();
    await late;

    const second = new SqliteStore(path);
    try {
      assert.deepEqual(await second.conversations.get(conv), {
        conv,
        kind: 'group',
        name: 'Renamed',
        createdTs: 900,
        lastSeq: 3,
        lastTs: msg(conv, 3).ts,
      });
      assert.deepEqual(await second.conversations.members(conv), [
        { conv, user: 'alice', role: 'admin', joinedSeq: 1, removedSeq: 3 },
        { conv, user: 'bob', role: 'admin', joinedSeq: 1 },
        { conv, user: 'carol', role: 'member', joinedSeq: 2 },
      ]);
    } finally {
      await second.close();
    }
  });

  test('migrations are idempotent: opening an up-to-date database applies nothing', () => {
    const path = newPath();
    const all = Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1);
    const first = openAndMigrate(path);
    first.db.close();
    assert.deepEqual(first.applied, all);
    const second = openAndMigrate(path);
    try {
      assert.deepEqual(second.applied, []);
      const versions = second.db.prepare('SELECT version FROM schema_migrations ORDER BY version').all();
      assert.deepEqual(
        versions,
        all.map((version) => ({ version })),
      );
    } finally {
      second.db.close();
    }
  });

  test('migration 2 fills the last seq of each chat-list row from the inbox it already holds', async () => {
    const path = newPath();
    const db = new Database(path);
    migrate(db, 0, 1);
    const insert = db.prepare(
      'INSERT INTO inbox (user, n, ts, type, conv, seq, actor, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    insert.run('ann', 1, 10, 'message', 'g:a', 3, null, null);
    insert.run('ann', 2, 20, 'message', 'g:a', 5, null, null);
    insert.run('ann', 3, 30, 'receipt', 'g:a', 9, 'bob', 'read');
    insert.run('ann', 4, 40, 'message', 'g:b', 2, null, null);
    insert.run('bob', 1, 20, 'message', 'g:a', 5, null, null);
    const touch = db.prepare('INSERT INTO user_conversations (user, conv, last_ts) VALUES (?, ?, ?)');
    touch.run('ann', 'g:a', 20);
    touch.run('ann', 'g:b', 40);
    touch.run('bob', 'g:a', 20);
    db.close();
    const store = new SqliteStore(path);
    try {
      assert.deepEqual(
        await store.inbox.lastSeqs('ann', ['g:a', 'g:b', 'g:c']),
        new Map([
          ['g:a', 5],
          ['g:b', 2],
        ]),
      );
      assert.deepEqual(await store.inbox.lastSeqs('bob', ['g:a']), new Map([['g:a', 5]]));
    } finally {
      await store.close();
    }
  });

  test('migration 3 keeps stored settings, with group_add "everyone", and adds invites', async () => {
    const path = newPath();
    const db = new Database(path);
    migrate(db, 0, 2);
    db.prepare('INSERT INTO settings (user, read_receipts, last_seen) VALUES (?, ?, ?)').run(
      'ann',
      0,
      'nobody',
    );
    db.close();
    const store = new SqliteStore(path);
    try {
      assert.deepEqual(await store.users.settings('ann'), {
        readReceipts: false,
        lastSeen: 'nobody',
        groupAdd: 'everyone',
      });
      const invite = {
        id: 'i1',
        conv: 'g:a',
        creator: 'ann',
        creatorJoinedSeq: 1,
        createdTs: 10,
        expiresTs: Date.now() + 60_000,
        uses: 0,
      };
      await store.invites.create(invite);
      assert.deepEqual(await store.invites.get('i1'), invite);
    } finally {
      await store.close();
    }
  });

  test('a database with a newer schema version is refused with a clear error, and left closed', () => {
    const path = newPath();
    openAndMigrate(path).db.close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, applied_ts) VALUES (?, ?)').run(
      SCHEMA_VERSION + 1,
      0,
    );
    db.close();
    const refusal = new RegExp(
      `database schema version ${SCHEMA_VERSION + 1} is newer than this build \\(${SCHEMA_VERSION}\\)`,
    );
    assert.throws(() => openAndMigrate(path), refusal);
    assert.throws(() => new SqliteStore(path), refusal);
    const fds = openDescriptors(path);
    if (fds !== null) assert.equal(fds, 0, 'the refused database file is still open');
    const check = new Database(path, { readonly: true });
    const row = check.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number };
    check.close();
    assert.equal(row.v, SCHEMA_VERSION + 1, 'the refused database is left as it was');
  });

  test('2,000 concurrent appends to different conversations are group-committed', async () => {
    const total = 2_000;
    const commits: Parameters<CommitObserver>[0][] = [];
    let committedOps = 0;
    const store = new SqliteStore(newPath(), {
      onCommit: (info) => {
        commits.push(info);
        committedOps += info.ops;
      },
    });
    try {
      let resolved = 0;
      const appends: Promise<void>[] = [];
      const issue = (i: number) =>
        appends.push(
          store.messages.append([msg(`g:c${i}`, 1)]).then(() => {
            resolved++;
            // Durability before the reply: no append resolves before the commit that holds it.
            assert.ok(resolved <= committedOps, 'an append resolved before its commit');
          }),
        );
      // Half in one burst, half in waves that arrive while earlier commits are in flight.
      for (let i = 0; i < total / 2; i++) issue(i);
      for (let wave = 0; wave < 10; wave++) {
        await new Promise((r) => setImmediate(r));
        for (let i = 0; i < total / 20; i++) issue(total / 2 + wave * (total / 20) + i);
      }
      await Promise.all(appends);
      assert.equal(resolved, total);
      assert.equal(committedOps, total);
      assert.equal(
        commits.reduce((n, c) => n + c.rows, 0),
        total,
      );
      assert.ok(commits.length <= total / 100, `${commits.length} commits for ${total} appends`);
      const refs = Array.from({ length: total }, (_, i) => ({ conv: `g:c${i}`, seq: 1 }));
      assert.deepEqual(
        await store.messages.getMany(refs),
        refs.map((r) => msg(r.conv, 1)),
      );
      assert.deepEqual(await store.messages.head(`g:c${total - 1}`), {
        lastSeq: 1,
        lastTs: msg('g:x', 1).ts,
      });
    } finally {
      await store.close();
    }
  });

  test('writes from the three ports issued together share one commit', async () => {
    const commits: number[] = [];
    const store = new SqliteStore(newPath(), { onCommit: (info) => commits.push(info.ops) });
    try {
      const conv = 'g:together';
      await Promise.all([
        store.messages.append([msg(conv, 1)]),
        store.inbox.append([entry('bob', 1, conv, 1, 100)], [{ conv, seq: 1 }]),
        store.conversations.mergeWatermarks([{ conv, user: 'bob', delivered: 1, read: 0 }]),
      ]);
      assert.deepEqual(commits, [3]);
      assert.deepEqual(await store.fanoutRecovery.unfanned(), []);
      assert.equal(await store.inbox.head('bob'), 1);
    } finally {
      await store.close();
    }
  });

  test('what is written in the check phase after an append (the inbox writer flushes there) joins its commit', async () => {
    const commits: number[] = [];
    const store = new SqliteStore(newPath(), { onCommit: (info) => commits.push(info.ops) });
    try {
      const conv = 'g:check-phase';
      const appended = store.messages.append([msg(conv, 1)]);
      const entries = new Promise<void>((resolve, reject) =>
        setImmediate(() =>
          store.inbox.append([entry('bob', 1, conv, 1, 100)], [{ conv, seq: 1 }]).then(resolve, reject),
        ),
      );
      await Promise.all([appended, entries]);
      assert.deepEqual(commits, [2]);
    } finally {
      await store.close();
    }
  });

  test('declares its writes ordered (OrderedWrites): once a write fails, every write issued after it fails', async () => {
    const store = new SqliteStore(newPath());
    assert.equal(store.writesInOrder, true);
    const conv = 'g:ordered';
    // An inbox entry without a user violates the table's NOT NULL key: its commit fails.
    const broken = store.inbox.append([entry(null as unknown as string, 1, conv, 1, 100)], []);
    const sameCommit = store.messages.append([msg(conv, 1)]);
    const results = await Promise.allSettled([broken, sameCommit]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    await assert.rejects(store.messages.append([msg(conv, 1)]), /store unavailable/);
    assert.equal(store.healthy, false);
    assert.equal(await store.messages.head(conv), null);
    await store.close();
  });

  test('prune deletes and counts more entries than one delete chunk holds', async () => {
    const store = new SqliteStore(newPath());
    try {
      const users = ['u1', 'u2', 'u3'];
      const perUser = 4_000;
      const rows: InboxEntry[] = [];
      for (const user of users) {
        for (let i = 1; i <= perUser; i++) rows.push(entry(user, i, 'g:big', i, i));
      }
      await store.inbox.append(rows, []);
      assert.equal(await store.inboxPruning.prune(perUser), users.length * (perUser - 1));
      for (const user of users) {
        assert.equal(await store.inbox.floor(user), perUser);
        assert.equal(await store.inbox.head(user), perUser);
      }
    } finally {
      await store.close();
    }
  });
});
