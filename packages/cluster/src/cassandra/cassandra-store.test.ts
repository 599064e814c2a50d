// Runs the store ports' conformance suites against real Cassandra (the keyspace `parley_test`,
// created by the same migration `parley migrate` runs), then what only this adapter does:
// fencing a writer that lost a conversation, rolling forward a half-finished append, and inbox
// entries that expire by TTL.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { conversationStoreSuite } from '@parley/server/adapters/conformance/conversation-store.suite';
import { deviceQueueSuite } from '@parley/server/adapters/conformance/device-queue.suite';
import { deviceStoreSuite } from '@parley/server/adapters/conformance/device-store.suite';
import { epochFencingSuite } from '@parley/server/adapters/conformance/epoch-fencing.suite';
import { groupStoreSuite } from '@parley/server/adapters/conformance/group-store.suite';
import { inboxStoreSuite } from '@parley/server/adapters/conformance/inbox-store.suite';
import { inviteStoreSuite } from '@parley/server/adapters/conformance/invite-store.suite';
import { keyDirectorySuite } from '@parley/server/adapters/conformance/key-directory.suite';
import { mediaIndexSuite } from '@parley/server/adapters/conformance/media-index.suite';
import { messageStoreSuite } from '@parley/server/adapters/conformance/message-store.suite';
import {
  pushDeadLettersSuite,
  webhookDeadLettersSuite,
} from '@parley/server/adapters/conformance/push-dead-letters.suite';
import { userStoreSuite } from '@parley/server/adapters/conformance/user-store.suite';
import { InboxConflictError } from '@parley/server/ports/inbox-store';
import type { StoredMessage } from '@parley/server/ports/message-store';
import type { DeadLetter } from '@parley/server/ports/push-queue';
import { MUTED_FOREVER } from '@parley/server/ports/user-store';
import type { WebhookDeadLetter } from '@parley/server/ports/webhooks';
import { requireEngine } from '@parley/server/test/engines';
import { Client } from 'cassandra-driver';
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
  epochFencingSuite('CassandraStore', async () => {
    const s = await open();
    return { store: s, close: () => s.close() };
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
  deviceStoreSuite('CassandraStore', async () => {
    const s = await open();
    return { store: s.devices, close: () => s.close() };
  });
  pushDeadLettersSuite('CassandraStore', async () => {
    const s = await open();
    return { store: s.deadLetters, close: () => s.close() };
  });
  webhookDeadLettersSuite('CassandraStore', async () => {
    const s = await open();
    return { store: s.webhookDeadLetters, close: () => s.close() };
  });
  /** A store and a second one over its own client on the same keyspace (another process, as it were). */
  const openTwo = async () => {
    const [s, other] = await Promise.all([open(), open()]);
    return { s, other, close: async () => void (await Promise.all([s.close(), other.close()])) };
  };
  keyDirectorySuite('CassandraStore', async () => {
    const { s, other, close } = await openTwo();
    return { store: s.keys, other: () => other.keys, close };
  });
  deviceQueueSuite('CassandraStore', async () => {
    const { s, other, close } = await openTwo();
    return { store: s.deviceQueue, other: () => other.deviceQueue, close };
  });
  mediaIndexSuite('CassandraStore', async () => {
    const s = await open();
    return { store: s.media, close: () => s.close() };
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

    test('a writer that died between the log write and the derived rows: readers do not see it; the written head does, and publishing it finishes it', async () => {
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
      assert.deepEqual(await store.messages.head(c), { lastSeq: 1, lastTs: 1_700_000_000_001 });
      assert.deepEqual(
        (await store.messages.page(c, { limit: 10 })).map((m) => m.seq),
        [1],
      );
      const written = await store.epochMessages.writtenHead(c);
      assert.deepEqual(
        written.beyond.map((m) => [m.seq, m.cmid]),
        [[2, 'c2']],
      );
      assert.deepEqual(written.effects, effect);
      await store.epochMessages.publish(written.beyond, written.effects);
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

    test('readers see entries up to the recorded head; the written head includes those past it (a writer died in between)', async () => {
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
      assert.equal(await store.inbox.head(user), 1);
      assert.deepEqual(
        (await store.inbox.read(user, 0, 10)).map((e) => e.inbox),
        [1],
      );
      assert.deepEqual(await store.epochInbox.writtenHead(user), { published: 1, written: 2 });
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

    test('dead letters of different hours list oldest first across partitions, paged with after', async () => {
      // Five days ago, so no letter of the conformance suite (made now) falls among these.
      const base = Date.now() - 5 * 24 * HOUR;
      const ids = [
        ulidAt(base - 3 * HOUR),
        ulidAt(base - 3 * HOUR + 1),
        ulidAt(base - HOUR),
        ulidAt(base),
        ulidAt(base + 1),
      ];
      const letters = ids.map((id, i) => deadLetter(id, `u-${run}-dl${i}`));
      // Added newest first, in two calls: the order of adding does not matter.
      await store.deadLetters.add(letters.slice(2).reverse());
      await store.deadLetters.add(letters.slice(0, 2).reverse());
      const mine = new Set(ids);
      const start = ulidAt(base - 3 * HOUR - 1, '0'.repeat(16));
      const seen: string[] = [];
      for (let cursor = start; seen.length < ids.length; ) {
        const page = await store.deadLetters.list(1, cursor);
        assert.equal(page.length, 1, `the listing ended after ${seen.length} of the letters`);
        cursor = page[0]!.id;
        if (mine.has(cursor)) seen.push(cursor);
      }
      assert.deepEqual(seen, ids);
      // Several hours in one page, from a prefix of an id (not a whole ULID).
      const page = (await store.deadLetters.list(100, start.slice(0, 7))).filter((l) => mine.has(l.id));
      assert.deepEqual(page, letters);
      assert.deepEqual(
        (await store.deadLetters.list(100, ids[1])).filter((l) => mine.has(l.id)),
        letters.slice(2),
      );
      assert.deepEqual(await store.deadLetters.get(ids[2]!), letters[2]);
      assert.equal(await store.deadLetters.remove([ids[0]!, ids[3]!, ids[3]!]), 2);
      assert.deepEqual(
        (await store.deadLetters.list(100, start)).filter((l) => mine.has(l.id)),
        [letters[1], letters[2], letters[4]],
      );
      // Ids that are no ULIDs: never stored, never found, and a listing after one is still right.
      await assert.rejects(store.deadLetters.add([deadLetter('dl-1', 'u')]), /not a ULID/);
      assert.equal(await store.deadLetters.get('dl-1'), null);
      assert.equal(await store.deadLetters.remove(['dl-1', '']), 0);
      assert.deepEqual(await store.deadLetters.list(10, 'zzz'), []);

      // Letters keep 30 days.
      const bucket = Math.floor((base - HOUR) / HOUR);
      const ttl = await rawTtl(
        'SELECT TTL(letter) AS ttl FROM push_dead_letters WHERE bucket = ? AND id = ?',
        [bucket, ids[2]],
      );
      assert.ok(ttl !== null && ttl > 30 * DAY_S - 120 && ttl <= 30 * DAY_S, `letter TTL ${ttl}`);
    });

    test('webhook dead letters live in tables of their own, apart from push ones, and keep 30 days', async () => {
      const at = Date.now() - 6 * 24 * HOUR;
      const [pushId, webhookId] = [ulidAt(at), ulidAt(at + 1)];
      await store.deadLetters.add([deadLetter(pushId, `u-${run}-apart`)]);
      const letter = webhookDeadLetter(webhookId, `g:${run}-apart`);
      await store.webhookDeadLetters.add([letter]);
      assert.equal(await store.deadLetters.get(webhookId), null);
      assert.equal(await store.webhookDeadLetters.get(pushId), null);
      const before = ulidAt(at - 1, '0'.repeat(16));
      const webhookIds = (await store.webhookDeadLetters.list(100, before)).map((l) => l.id);
      assert.ok(webhookIds.includes(webhookId), 'the webhook letter is not listed');
      assert.ok(!webhookIds.includes(pushId), 'a push letter is listed among the webhook letters');
      assert.equal(await store.deadLetters.remove([webhookId]), 0);
      assert.deepEqual(await store.webhookDeadLetters.get(webhookId), letter);
      const ttl = await rawTtl(
        'SELECT TTL(letter) AS ttl FROM webhook_dead_letters WHERE bucket = ? AND id = ?',
        [Math.floor(at / HOUR), webhookId],
      );
      assert.ok(ttl !== null && ttl > 30 * DAY_S - 120 && ttl <= 30 * DAY_S, `letter TTL ${ttl}`);
    });

    test('to_device messages keep 30 days (TTL); the queue head never expires', async () => {
      const user = `u-${run}-tdq`;
      assert.equal(
        await store.deviceQueue.enqueue(
          user,
          'phone',
          { from: 'bob', fromDevice: 'x', body: 'b', ts: Date.now() },
          10,
        ),
        1,
      );
      const ttl = await rawTtl(
        'SELECT TTL(body) AS ttl FROM device_messages WHERE user = ? AND device = ? AND qid = 1',
        [user, 'phone'],
      );
      assert.ok(ttl !== null && ttl > 30 * DAY_S - 120 && ttl <= 30 * DAY_S, `message TTL ${ttl}`);
      const headTtl = await rawTtl(
        'SELECT TTL(head) AS ttl FROM device_messages WHERE user = ? AND device = ? LIMIT 1',
        [user, 'phone'],
      );
      assert.equal(headTtl, null);
    });

    test('to_device messages that expired unacknowledged make room again under `max`', async () => {
      const short = await open({ deviceQueueTtlSeconds: 2 });
      try {
        const user = `u-${run}-tdq-expiry`;
        const m = { from: 'bob', fromDevice: 'x', body: 'b', ts: Date.now() };
        assert.equal(await short.deviceQueue.enqueue(user, 'phone', m, 2), 1);
        assert.equal(await short.deviceQueue.enqueue(user, 'phone', m, 2), 2);
        assert.equal(await short.deviceQueue.enqueue(user, 'phone', m, 2), null);
        // Past 3 s both have expired whatever the rounding (see the inbox TTL test).
        await new Promise((r) => setTimeout(r, 3_100));
        assert.deepEqual(await short.deviceQueue.list(user, 'phone', 0, 10), []);
        assert.equal(await short.deviceQueue.enqueue(user, 'phone', m, 2), 3);
        assert.equal(await short.deviceQueue.enqueue(user, 'phone', m, 2), 4);
        assert.equal(await short.deviceQueue.enqueue(user, 'phone', m, 2), null);
      } finally {
        await short.close();
      }
    });

    test('collectable deletes the due rows that no longer qualify, and keeps those that may', async () => {
      const base = Date.now() - 200 * 24 * HOUR;
      const listed = { id: `m_${run}-due-1`, owner: 'ann', size: 1, contentType: 'a/b', createdAt: base };
      const pending = { id: `m_${run}-due-2`, owner: 'ann', size: 1, contentType: 'a/b', createdAt: base };
      await store.media.create(listed);
      await store.media.create(pending);
      await store.media.reference(listed.id, 'g:x', base + 2 * HOUR);
      await store.media.reference(listed.id, 'g:x', base + 4 * HOUR);
      const dueRows = async (id: string) => {
        const raw = new Client({ contactPoints: [address], localDataCenter: dc, keyspace: KEYSPACE });
        try {
          const hour = (t: number) => Math.floor(t / HOUR);
          const at = async (kind: string, t: number) =>
            (
              await raw.execute(
                'SELECT id FROM media_due WHERE kind = ? AND bucket = ? AND id = ?',
                [kind, hour(t), id],
                {
                  prepare: true,
                },
              )
            ).rowLength;
          return [await at('c', base), await at('r', base + 2 * HOUR), await at('r', base + 4 * HOUR)];
        } finally {
          await raw.shutdown();
        }
      };
      assert.deepEqual(await dueRows(listed.id), [1, 1, 1]);
      try {
        // Cutoffs before the last listing: nothing of these is collectable yet.
        const mine = (list: { id: string }[]) =>
          list.filter((r) => r.id === listed.id || r.id === pending.id);
        assert.deepEqual(mine(await store.media.collectable(base, base + 3 * HOUR, 10_000)), []);
        // The creation's row (it was listed) and the first listing's row (listed again) went;
        // the last listing's stays, to qualify later, and so does the unlisted one's creation row.
        assert.deepEqual(await dueRows(listed.id), [0, 0, 1]);
        assert.deepEqual((await dueRows(pending.id))[0], 1);
        assert.deepEqual(
          mine(await store.media.collectable(base, base + 5 * HOUR, 10_000)).map((r) => r.id),
          [listed.id],
        );
      } finally {
        await store.media.delete(listed.id);
        await store.media.delete(pending.id);
      }
      assert.deepEqual(await dueRows(listed.id), [0, 0, 0]);
      assert.deepEqual((await dueRows(pending.id))[0], 0);
    });

    test('revocations keep 7 days (TTL); timed mutes expire after they end, MUTED_FOREVER never', async () => {
      const user = `u-${run}-ttls`;
      await store.devices.seen(user, 'phone', Date.now());
      assert.equal(await store.devices.revoke(user, 'phone', Date.now()), true);
      const revocationTtl = await rawTtl(
        'SELECT TTL(revoked_ts) AS ttl FROM device_revocations WHERE user = ? AND device = ?',
        [user, 'phone'],
      );
      assert.ok(
        revocationTtl !== null && revocationTtl > 7 * DAY_S - 120 && revocationTtl <= 7 * DAY_S,
        `revocation TTL ${revocationTtl}`,
      );

      await store.users.setMute(user, 'g:timed', Date.now() + HOUR);
      await store.users.setMute(user, 'g:forever', MUTED_FOREVER);
      const muteTtl = (conv: string) =>
        rawTtl('SELECT TTL(until) AS ttl FROM mutes WHERE user = ? AND conv = ?', [user, conv]);
      const timed = await muteTtl('g:timed');
      assert.ok(timed !== null && timed > 3_600 && timed <= 3_660, `timed mute TTL ${timed}`);
      assert.equal(await muteTtl('g:forever'), null);
      // A timed mute replaced by a mute forever loses its TTL.
      await store.users.setMute(user, 'g:timed', MUTED_FOREVER);
      assert.equal(await muteTtl('g:timed'), null);
      assert.deepEqual(
        await store.users.mutes(user, ['g:timed', 'g:forever']),
        new Map([
          ['g:timed', MUTED_FOREVER],
          ['g:forever', MUTED_FOREVER],
        ]),
      );
    });
  });

  /** The `ttl` column of one row, read through a client of its own (null: no TTL). */
  const rawTtl = async (query: string, params: unknown[]): Promise<number | null> => {
    const raw = new Client({ contactPoints: [address], localDataCenter: dc, keyspace: KEYSPACE });
    try {
      const r = (await raw.execute(query, params, { prepare: true })).first();
      assert.ok(r, `no row for ${query}`);
      return r.ttl === null ? null : Number(r.ttl);
    } finally {
      await raw.shutdown();
    }
  };
}

const HOUR = 3_600_000;
const DAY_S = 24 * 3600;
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID of time `ms`: ten characters of time, then `suffix` (random by default). */
function ulidAt(ms: number, suffix?: string): string {
  let time = '';
  for (let t = ms, i = 0; i < 10; i++, t = Math.floor(t / 32)) time = CROCKFORD[t % 32] + time;
  return time + (suffix ?? [...randomBytes(16)].map((b) => CROCKFORD[b % 32]).join(''));
}

function deadLetter(id: string, user: string): DeadLetter {
  return {
    id,
    job: { user, device: 'phone', conv: 'g:dl', seq: 1, from: 'alice', kind: 'text', inbox: 7, ts: 1_000 },
    platform: 'fcm',
    reason: 'UNREGISTERED',
    attempts: 1,
    ts: 2_000,
  };
}

function webhookDeadLetter(id: string, conv: string): WebhookDeadLetter {
  return {
    id,
    delivery: {
      endpoint: 'https://hooks.example.com/parley',
      key: conv,
      event: { id: `${conv}:1`, type: 'message.stored', ts: 1_000, data: { conv, seq: 1 } },
    },
    reason: 'the endpoint answered 503',
    attempts: 8,
    ts: 2_000,
  };
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
