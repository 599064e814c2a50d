// Runs the store ports' conformance suites against real Cassandra (the keyspace `parley_test`,
// created by the same migration `parley migrate` runs), then what only this adapter does:
// fencing a writer that lost a conversation, rolling forward a half-finished append, and inbox
// entries that expire by TTL.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client } from 'cassandra-driver';
import { requireEngine } from '../../../test/engines.js';
import { InboxConflictError } from '../../ports/inbox-store.js';
import type { StoredMessage } from '../../ports/message-store.js';
import { conversationStoreSuite } from '../conformance/conversation-store.suite.js';
import { groupStoreSuite } from '../conformance/group-store.suite.js';
import { inboxStoreSuite } from '../conformance/inbox-store.suite.js';
import { inviteStoreSuite } from '../conformance/invite-store.suite.js';
import { messageStoreSuite } from '../conformance/message-store.suite.js';
import { userStoreSuite } from '../conformance/user-store.suite.js';
import { CassandraStore, type CassandraStoreOptions, SeqConflictError } from './cassandra-store.js';
import { migrateCassandra } from './schema.js';

const address = requireEngine('cassandra', 'CassandraStore against real Cassandra');
const KEYSPACE = 'parley_test';

// CassandraStore offers neither optional capability (`FanoutRecovery`: cluster mode records fan-out
// progress in the fan-out topic's consumed offsets; `InboxPruning`: inbox rows expire by TTL), so
// it runs neither capability suite, and every suite of the ports it claims runs whole.
if (address !== undefined) {
  const dc = process.env.PARLEY_TEST_CASSANDRA_DC ?? 'datacenter1';
  let migrated: Promise<void> | undefined;
  /** A store over its own client; the keyspace is migrated once per test process. */
  const open = async (options: Partial<CassandraStoreOptions> = {}) => {
    migrated ??= (async () => {
      const admin = new Client({ contactPoints: [address], localDataCenter: dc });
      await migrateCassandra(admin, KEYSPACE, { class: 'SimpleStrategy', replication_factor: 1 });
      await admin.shutdown();
    })();
    await migrated;
    const client = new Client({ contactPoints: [address], localDataCenter: dc });
    await client.connect();
    return new CassandraStore(client, { keyspace: KEYSPACE, ...options });
  };

  messageStoreSuite('CassandraStore', async () => {
    const s = await open();
    return { store: s.messages, close: () => s.close() };
  });
  inboxStoreSuite('CassandraStore', async () => {
    const s = await open();
    return { store: s.inbox, close: () => s.close() };
  });
  conversationStoreSuite('CassandraStore', async () => {
    const s = await open();
    return { store: s.conversations, messages: s.messages, close: () => s.close() };
  });
  groupStoreSuite('CassandraStore', async () => {
    const s = await open();
    return { messages: s.messages, conversations: s.conversations, close: () => s.close() };
  });
  userStoreSuite('CassandraStore', async () => {
    const s = await open();
    return { store: s.users, close: () => s.close() };
  });
  inviteStoreSuite('CassandraStore', async () => {
    const s = await open();
    return { store: s.invites, close: () => s.close() };
  });

  describe('CassandraStore: cluster-mode behaviour', () => {
    let store: CassandraStore;
    let zombie: CassandraStore;
    const run = randomBytes(4).toString('hex');
    let n = 0;
    const conv = () => `g:${run}-${++n}`;
    before(async () => {
      store = await open();
      zombie = await open();
    });
    after(async () => {
      await store.close();
      await zombie.close();
    });

    test('a writer that lost the conversation cannot store a different message at a taken seq', async () => {
      const c = conv();
      await store.messages.append([msg(c, 1, 'owner'), msg(c, 2, 'owner')]);
      await assert.rejects(zombie.messages.append([msg(c, 2, 'zombie')]), SeqConflictError);
      // Retrying the very same message is not a conflict (an idempotent retry).
      await zombie.messages.append([msg(c, 2, 'owner')]);
      const stored = await store.messages.getMany([{ conv: c, seq: 2 }]);
      assert.equal(stored[0]?.body, 'owner');
      assert.deepEqual(await store.messages.head(c), { lastSeq: 2, lastTs: msg(c, 2, 'owner').ts });
    });

    test('a writer that died between the log write and the derived rows is rolled forward by head()', async () => {
      const c = conv();
      await store.messages.append([msg(c, 1, 'first')]);
      // What a crash after step 1 leaves: the log row (with its group change), nothing derived.
      const effect = [
        {
          type: 'create',
          conv: c,
          seq: 2,
          name: 'Team',
          createdTs: 5,
          members: [{ user: 'bob', role: 'admin' }],
        },
      ];
      const raw = new Client({ contactPoints: [address], localDataCenter: dc, keyspace: KEYSPACE });
      try {
        await raw.execute(
          'INSERT INTO messages (conv, bucket, seq, ts, sender, device, cmid, kind, body, effect) VALUES (?, 0, 2, ?, ?, ?, ?, ?, ?, ?)',
          [c, 1_700_000_000_002, 'alice', 'phone', 'c2', 'system', '{}', JSON.stringify(effect)],
          { prepare: true },
        );
      } finally {
        await raw.shutdown();
      }
      assert.equal(await store.messages.findByCmid(c, 'alice', 'c2'), null);
      assert.deepEqual(await store.messages.head(c), { lastSeq: 2, lastTs: 1_700_000_000_002 });
      assert.deepEqual(await store.messages.findByCmid(c, 'alice', 'c2'), { seq: 2, ts: 1_700_000_000_002 });
      assert.deepEqual(await store.conversations.members(c), [
        { conv: c, user: 'bob', role: 'admin', joinedSeq: 2 },
      ]);
      assert.equal((await store.conversations.get(c))?.name, 'Team');
    });

    test('an inbox writer that lost the user cannot store a different entry at a taken number', async () => {
      const user = `u-${run}-fence`;
      const c = conv();
      const entry = (inbox: number, seq: number) => ({
        user,
        inbox,
        ts: 1_000 + seq,
        type: 'message' as const,
        conv: c,
        seq,
      });
      await store.inbox.append([entry(1, 1), entry(2, 2)], []);
      await assert.rejects(zombie.inbox.append([entry(2, 9)], []), InboxConflictError);
      await zombie.inbox.append([entry(2, 2)], []); // the same entry again: a retry, not a conflict
      assert.deepEqual(
        (await store.inbox.read(user, 0, 10)).map((e) => e.type === 'message' && e.seq),
        [1, 2],
      );
      assert.deepEqual(await store.inbox.conversations(user, 10), [{ conv: c, lastTs: 1_002 }]);
    });

    test('the inbox head includes entries stored past the recorded head (a writer died in between)', async () => {
      const user = `u-${run}-lost-head`;
      const c = conv();
      await store.inbox.append([{ user, inbox: 1, ts: 1, type: 'message', conv: c, seq: 1 }], []);
      const raw = new Client({ contactPoints: [address], localDataCenter: dc, keyspace: KEYSPACE });
      try {
        await raw.execute(
          "INSERT INTO inbox (user, bucket, inbox, ts, type, conv, seq) VALUES (?, 0, 2, 2, 'message', ?, 2)",
          [user, c],
          { prepare: true },
        );
      } finally {
        await raw.shutdown();
      }
      assert.equal(await store.inbox.head(user), 2);
    });

    test('messages spanning two buckets are stored and paged across the boundary', async () => {
      const c = conv();
      const rows = Array.from({ length: 1005 }, (_, i) => msg(c, i + 1, 'x'));
      // One large Paxos batch: on a loaded machine it may time out (`unavailable`), and the
      // contract's answer to that is to write the same rows again (an append is idempotent).
      for (let attempt = 1; ; attempt++) {
        try {
          await store.messages.append(rows);
          break;
        } catch (err) {
          if (attempt === 3 || (err as { code?: string }).code !== 'unavailable') throw err;
        }
      }
      const page = await store.messages.page(c, { after: 995, limit: 10 });
      assert.deepEqual(
        page.map((m) => m.seq),
        [996, 997, 998, 999, 1000, 1001, 1002, 1003, 1004, 1005],
      );
      const newest = await store.messages.page(c, { limit: 8, before: 1003 });
      assert.deepEqual(
        newest.map((m) => m.seq),
        [995, 996, 997, 998, 999, 1000, 1001, 1002],
      );
    });

    test('inbox entries expire after the TTL; the head stays and floor moves past them', async () => {
      // Cassandra counts TTLs in whole seconds from the second of the write, so a TTL of 1 may
      // expire a few milliseconds after it; 2 leaves at least a second to read the entries back.
      const short = await open({ inboxTtlSeconds: 2 });
      try {
        const user = `u-${run}-ttl`;
        const c = conv();
        await short.inbox.append(
          [1, 2].map((i) => ({ user, inbox: i, ts: 1_000 + i, type: 'message' as const, conv: c, seq: i })),
          [],
        );
        assert.equal(await short.inbox.floor(user), 1);
        // Past 3 s both entries have expired whatever the rounding.
        await new Promise((r) => setTimeout(r, 3_100));
        assert.deepEqual(await short.inbox.read(user, 0, 10), []);
        assert.equal(await short.inbox.head(user), 2);
        assert.equal(await short.inbox.floor(user), 3);
      } finally {
        await short.close();
      }
    });
  });
}

function msg(conv: string, seq: number, body: string): StoredMessage {
  return {
    conv,
    seq,
    ts: 1_700_000_000_000 + seq,
    from: 'alice',
    from_device: 'phone',
    cmid: `c${seq}`,
    kind: 'text',
    body,
  };
}
