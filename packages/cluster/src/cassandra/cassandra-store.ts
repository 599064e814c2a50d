import { ParleyError } from '@parley/server/domain/errors';
import type {
  ConversationMeta,
  ConversationStore,
  GroupEffect,
  MemberRecord,
  Watermark,
} from '@parley/server/ports/conversation-store';
import { DEVICE_QUEUE_RETENTION_MS, type DeviceQueue } from '@parley/server/ports/device-queue';
import {
  type DeviceRecord,
  type DeviceStore,
  MAX_DEVICES_PER_USER,
  REVOCATION_RETENTION_MS,
} from '@parley/server/ports/device-store';
import {
  type EpochInbox,
  type EpochMessages,
  headsOf,
  type PartitionEpochs,
  type WrittenHead,
  type WrittenLog,
} from '@parley/server/ports/epoch-fencing';
import {
  fanoutEntries,
  InboxConflictError,
  type InboxEntry,
  type InboxStore,
  type UserConversation,
} from '@parley/server/ports/inbox-store';
import type { Invite, InviteStore } from '@parley/server/ports/invite-store';
import type { DeadLetterStore } from '@parley/server/ports/job-queue';
import type { KeyDirectory } from '@parley/server/ports/key-directory';
import type { MediaIndex } from '@parley/server/ports/media-index';
import type {
  ConversationHead,
  MessageStore,
  PageQuery,
  StoredMessage,
} from '@parley/server/ports/message-store';
import { type PushRegistration, registrationJson } from '@parley/server/ports/push-provider';
import type { PushDeadLetters } from '@parley/server/ports/push-queue';
import {
  DEFAULT_SETTINGS,
  MUTED_FOREVER,
  type UserSettings,
  type UserStore,
} from '@parley/server/ports/user-store';
import type { WebhookDeadLetters } from '@parley/server/ports/webhooks';
import { groupBy } from '@parley/server/util/group-by';
import { type Client, type QueryOptions, types } from 'cassandra-driver';
import { CassandraDeviceQueue } from './cassandra-device-queue.js';
import { CassandraKeyDirectory } from './cassandra-keys.js';
import { CassandraMediaIndex } from './cassandra-media-index.js';
import { type Cql, chunk, long, mapLimit, num, type Query, settled } from './cql.js';
import {
  BUCKET_SIZE,
  bucketOf,
  DEAD_LETTER_BUCKET_MS,
  type DeadLetterKind,
  deadLetterBucketOf,
  keyspaceName,
} from './schema.js';

/** Options of the Cassandra store. */
export interface CassandraStoreOptions {
  /** Keyspace created by `parley migrate`. */
  keyspace: string;
  /** Consistency of reads and writes (default LOCAL_QUORUM; see docs/operations.md). */
  consistency?: number;
  /** Consistency of the Paxos phase of conditional writes (default LOCAL_SERIAL). */
  serialConsistency?: number;
  /** Inbox entries expire this long after they are written (the retention), in seconds. */
  inboxTtlSeconds?: number;
  /** Wall clock in microseconds, for the ordered write timestamps of group changes. */
  nowMicros?: () => number;
  /**
   * Device revocations are kept this long (TTL), in seconds: at least as long as a token may live
   * (default 7 days, like the embedded stores).
   */
  revocationTtlSeconds?: number;
  /** Dead letters (push jobs and webhook deliveries) are kept this long (TTL), in seconds (default 30 days). */
  deadLetterTtlSeconds?: number;
  /** `to_device` messages are kept this long (TTL), in seconds (default 30 days, the retention). */
  deviceQueueTtlSeconds?: number;
}

/** A device revocation's default TTL: 7 days, longer than any token's life (24 h by default). */
export const REVOCATION_TTL_SECONDS = REVOCATION_RETENTION_MS / 1000;

/** A dead letter's default TTL: 30 days for an operator to look at it. */
export const DEAD_LETTER_TTL_SECONDS = 30 * 24 * 3600;

/** A `to_device` message's default TTL: the retention of `DeviceQueue`. */
export const DEVICE_QUEUE_TTL_SECONDS = DEVICE_QUEUE_RETENTION_MS / 1000;

/** A write of a seq that another writer already used with different content: this writer is fenced. */
export class SeqConflictError extends Error {
  constructor(conv: string, seq: number) {
    super(`seq ${seq} of ${conv} is already taken by another message: this writer no longer owns ${conv}`);
    this.name = 'SeqConflictError';
  }
}

type Row = types.Row;

/** Inbox entries per conditional batch (small rows: far below the batch size limit). */
const INBOX_BATCH = 200;

/**
 * The write timestamp of rows written under an ownership epoch: above every real-time timestamp
 * (microseconds since 1970 stay below 2^62 for ~146,000 years), increasing with the epoch, so
 * a newer owner's row always replaces an older owner's.
 */
const EPOCH_TIMESTAMP_BASE = 1n << 62n;
const epochTimestamp = (epoch: number) =>
  types.Long.fromString((EPOCH_TIMESTAMP_BASE + BigInt(epoch)).toString());

/** Independent writes in flight at once per call (the driver pipelines them over its connections). */
const WRITE_CONCURRENCY = 64;

/** Independent reads in flight at once per call (one partition each). */
const READ_CONCURRENCY = 64;

/** Values per `IN (…)` of one query (mutes of a user's conversations, dead letters of an hour). */
const IN_CHUNK = 100;

/** The two tables of one kind of dead letter, qualified by the keyspace (see `schema.ts`). */
interface DeadLetterTables {
  letters: string;
  buckets: string;
}

type Letter = { id: string };

/** The longest TTL Cassandra accepts (20 years), in seconds; a longer mute is stored without one. */
const MAX_TTL_SECONDS = 20 * 365 * 24 * 3600;

/**
 * The store ports on Cassandra (cluster mode). The message log is the source of truth and is
 * written first, with a conditional batch per (conversation, bucket): a seq is taken once, and a
 * writer that lost ownership of a conversation (a zombie sequencer) gets `SeqConflictError`
 * instead of overwriting. The derived rows (dedup, head, group changes) follow in a logged batch;
 * if a writer dies between the two steps, the next `head()` of the conversation finds the
 * messages beyond the recorded head and finishes their derived rows (roll-forward), which is why
 * a sequencer always loads the head before writing.
 *
 * Devices, mutes and dead letters are described where they are implemented (`seen`, `setMute`,
 * `listDeadLetters`); their tables in `schema.ts`. The key directory, the `to_device` queues and
 * the media index are parts in files of their own (`CassandraKeyDirectory`,
 * `CassandraDeviceQueue`, `CassandraMediaIndex`), working through this store's query helpers.
 *
 * It offers neither optional capability. Not `FanoutRecovery`: fan-out marks are ignored, since in
 * cluster mode a message's fan-out is driven by the fan-out topic, whose consumed offsets are the
 * record of what was fanned out. Not `InboxPruning`: inbox rows carry a TTL of the retention and
 * expire by themselves (a full-table scan is not a Cassandra operation).
 */
/** A conditional statement (a lightweight transaction: one Paxos round). */
const CONDITIONAL = /\bIF\s+(NOT\s+EXISTS|EXISTS|\w+\s*(=|<|>|!=|IN\b))/i;

export class CassandraStore {
  readonly messages: MessageStore;
  readonly inbox: InboxStore;
  readonly conversations: ConversationStore;
  readonly users: UserStore;
  readonly invites: InviteStore;
  readonly devices: DeviceStore;
  readonly deadLetters: PushDeadLetters;
  readonly webhookDeadLetters: WebhookDeadLetters;
  readonly keys: KeyDirectory;
  readonly deviceQueue: DeviceQueue;
  readonly media: MediaIndex;
  /** Inbox entries written under ownership epochs, published by heads (the fan-out stage's fencing). */
  readonly epochInbox: EpochInbox;
  /** Messages written under ownership epochs, published by their derived rows (the sequencer's fencing). */
  readonly epochMessages: EpochMessages;
  /** Ownership epochs of stage partitions: one Paxos round per assignment. */
  readonly stageEpochs: PartitionEpochs;
  /** Statements sent so far by kind, requests (a batch is one) and Paxos rounds (see `count`). */
  readonly statements = { read: 0, write: 0, lwt: 0, paxos: 0, requests: 0 };
  private readonly ks: string;
  private readonly consistency: number;
  private readonly serialConsistency: number;
  private readonly inboxTtl: number;
  private readonly revocationTtl: number;
  private readonly deadLetterTtl: number;
  private readonly nowMicros: () => number;
  private lastMicros = 0;

  constructor(
    private readonly client: Client,
    options: CassandraStoreOptions,
  ) {
    this.ks = keyspaceName(options.keyspace);
    this.consistency = options.consistency ?? types.consistencies.localQuorum;
    this.serialConsistency = options.serialConsistency ?? types.consistencies.localSerial;
    this.inboxTtl = options.inboxTtlSeconds ?? 30 * 24 * 3600;
    this.revocationTtl = options.revocationTtlSeconds ?? REVOCATION_TTL_SECONDS;
    this.deadLetterTtl = options.deadLetterTtlSeconds ?? DEAD_LETTER_TTL_SECONDS;
    this.nowMicros = options.nowMicros ?? (() => Date.now() * 1000);
    const cql = this.cql();
    this.keys = new CassandraKeyDirectory(cql);
    this.deviceQueue = new CassandraDeviceQueue(
      cql,
      options.deviceQueueTtlSeconds ?? DEVICE_QUEUE_TTL_SECONDS,
    );
    this.media = new CassandraMediaIndex(cql);
    this.messages = {
      append: (rows, effects = []) => this.appendMessages(rows, effects),
      head: (conv) => this.publishedMessageHead(conv),
      findByCmid: async (conv, from, cmid) => {
        const r = await this.one(
          `SELECT seq, ts FROM ${this.ks}.message_cmids WHERE conv = ? AND sender = ? AND cmid = ?`,
          [conv, from, cmid],
        );
        return r ? { seq: num(r.seq), ts: num(r.ts) } : null;
      },
      page: (conv, query) => this.page(conv, query),
      getMany: (refs) =>
        Promise.all(
          refs.map(async (ref) => {
            const r = await this.one(
              `SELECT * FROM ${this.ks}.messages WHERE conv = ? AND bucket = ? AND seq = ?`,
              [ref.conv, bucketOf(ref.seq), long(ref.seq)],
            );
            return r ? toMessage(r) : undefined;
          }),
        ),
      senders: (conv, after, upto, max) => this.senders(conv, after, upto, max),
    };
    this.inbox = {
      append: (entries, _fanned, fanouts = []) => this.appendInbox([...entries, ...fanoutEntries(fanouts)]),
      head: (user) => this.publishedHead(user),
      read: async (user, after, limit) => this.readInbox(user, after, limit, await this.publishedHead(user)),
      floor: (user) => this.inboxFloor(user),
      lastSeqs: async (user, convs) => {
        if (convs.length === 0) return new Map();
        const rows = await this.all(
          `SELECT conv, last_seq FROM ${this.ks}.user_conversations WHERE user = ? AND conv IN ?`,
          [user, [...convs]],
        );
        const out = new Map<string, number>();
        for (const r of rows) if (r.last_seq !== null) out.set(r.conv as string, num(r.last_seq));
        return out;
      },
      conversations: async (user, limit, beforeTs): Promise<UserConversation[]> => {
        const rows = await this.all(
          `SELECT conv, last_ts FROM ${this.ks}.user_conversations WHERE user = ?`,
          [user],
        );
        return rows
          .map((r) => ({ conv: r.conv as string, lastTs: num(r.last_ts) }))
          .filter((c) => beforeTs === undefined || c.lastTs < beforeTs)
          .sort((a, b) => b.lastTs - a.lastTs || (a.conv < b.conv ? -1 : 1))
          .slice(0, limit);
      },
    };
    this.epochInbox = {
      write: (entries, epoch) => this.writeInboxRows(entries, epoch),
      publish: (entries, heads) => this.publishInbox(entries, heads),
      writtenHead: (user) => this.writtenHead(user),
      readWritten: async (user, after, limit) =>
        this.readInbox(user, after, limit, (await this.writtenHead(user)).written),
    };
    this.epochMessages = {
      write: (rows, effects, epoch) => this.writeMessageRows(rows, effects, epoch),
      publish: (rows, effects) => this.writeDerived(rows, new Set(rows), effectsAt(effects)),
      writtenHead: (conv) => this.writtenMessageHead(conv),
    };
    this.stageEpochs = {
      take: (stage, partitions, owner) => this.takeEpoch(stage, partitions, owner),
      held: (stage) => this.heldEpochs(stage),
    };
    this.conversations = {
      get: async (conv): Promise<ConversationMeta | null> => {
        const r = await this.one(`SELECT * FROM ${this.ks}.conversations WHERE conv = ?`, [conv]);
        if (!r || r.last_seq === null) return null;
        const meta: ConversationMeta = {
          conv,
          kind: r.kind === 'group' || !conv.startsWith('dm:') ? 'group' : 'direct',
          createdTs: num(r.created_ts),
          lastSeq: num(r.last_seq),
          lastTs: num(r.last_ts),
        };
        if (r.name !== null) meta.name = r.name as string;
        return meta;
      },
      members: async (conv) => (await this.memberRows(conv)).map(toMember).sort(byJoinThenUser),
      watermarks: async (conv, users) => {
        const rows = await this.all(
          `SELECT user, delivered, read FROM ${this.ks}.watermarks WHERE conv = ?`,
          [conv],
        );
        return rows
          .map((r) => ({ conv, user: r.user as string, delivered: num(r.delivered), read: num(r.read) }))
          .filter((w) => users === undefined || users.includes(w.user))
          .sort((a, b) => (a.user < b.user ? -1 : 1));
      },
      mergeWatermarks: (rows) => this.mergeWatermarks(rows),
    };
    this.users = {
      settings: async (user): Promise<UserSettings> => {
        const r = await this.one(
          `SELECT read_receipts, last_seen, group_add FROM ${this.ks}.user_settings WHERE user = ?`,
          [user],
        );
        if (!r) return { ...DEFAULT_SETTINGS };
        return {
          readReceipts: r.read_receipts !== false,
          lastSeen: r.last_seen === 'nobody' ? 'nobody' : 'everyone',
          groupAdd: r.group_add === 'nobody' ? 'nobody' : 'everyone',
        };
      },
      saveSettings: async (user, s) => {
        await this.run(
          `INSERT INTO ${this.ks}.user_settings (user, read_receipts, last_seen, group_add) VALUES (?, ?, ?, ?)`,
          [user, s.readReceipts, s.lastSeen, s.groupAdd],
        );
      },
      blocked: async (user) =>
        (await this.all(`SELECT other FROM ${this.ks}.blocks WHERE user = ?`, [user])).map(
          (r) => r.other as string,
        ),
      setBlocked: async (user, other, blocked) => {
        await this.run(
          blocked
            ? `INSERT INTO ${this.ks}.blocks (user, other) VALUES (?, ?)`
            : `DELETE FROM ${this.ks}.blocks WHERE user = ? AND other = ?`,
          [user, other],
        );
      },
      lastSeen: async (users) => {
        const out = new Map<string, number>();
        const rows = await Promise.all(
          users.map((u) => this.one(`SELECT ts FROM ${this.ks}.last_seen WHERE user = ?`, [u])),
        );
        rows.forEach((r, i) => {
          if (r && r.ts !== null) out.set(users[i]!, num(r.ts));
        });
        return out;
      },
      saveLastSeen: async (user, ts) => {
        await this.run(`INSERT INTO ${this.ks}.last_seen (user, ts) VALUES (?, ?)`, [user, long(ts)]);
      },
      setMute: (user, conv, until) => this.setMute(user, conv, until),
      mutes: async (user, convs) => {
        const out = new Map<string, number>();
        const chunks = chunk([...new Set(convs)], IN_CHUNK);
        const rows = await mapLimit(chunks, READ_CONCURRENCY, (list) =>
          this.all(`SELECT conv, until FROM ${this.ks}.mutes WHERE user = ? AND conv IN ?`, [user, list]),
        );
        for (const r of rows.flat()) if (r.until !== null) out.set(r.conv as string, num(r.until));
        return out;
      },
    };
    this.invites = {
      create: async (i) => {
        await this.run(
          `INSERT INTO ${this.ks}.invites (id, conv, creator, creator_joined_seq, created_ts, expires_ts,
             max_uses, uses) VALUES (?, ?, ?, ?, ?, ?, ?, 0) USING TTL ?`,
          [
            i.id,
            i.conv,
            i.creator,
            long(i.creatorJoinedSeq),
            long(i.createdTs),
            long(i.expiresTs),
            i.maxUses ?? null,
            inviteTtl(i.expiresTs, i.createdTs),
          ],
        );
      },
      get: (id) => this.invite(id),
      take: (id, now) => this.changeUses(id, +1, now),
      release: async (id) => {
        await this.changeUses(id, -1, Date.now());
      },
      revoke: async (id) => {
        await this.execute(`DELETE FROM ${this.ks}.invites WHERE id = ? IF EXISTS`, [id], this.lwtOptions());
      },
    };
    this.devices = {
      seen: (user, device, ts) => this.deviceSeen(user, device, ts),
      list: async (user) =>
        (await this.deviceRows(user))
          .sort((a, b) => b.lastSeen - a.lastSeen || (a.device < b.device ? -1 : a.device > b.device ? 1 : 0))
          .map(({ device, lastSeen, push }) => {
            const r: DeviceRecord = { device, lastSeen };
            if (push !== undefined) r.push = push;
            return r;
          }),
      setPush: (user, device, registration) => this.setPush(user, device, registration),
      dropPush: async (user, device, registration) => {
        // Compare and delete in one Paxos round: a registration written meanwhile (another token
        // of the same device) is not the one the provider reported dead, and stays.
        await this.execute(
          `UPDATE ${this.ks}.devices_by_user SET push_json = null WHERE user = ? AND device = ? IF push_json = ?`,
          [user, device, registrationJson(registration)],
          this.lwtOptions(),
        );
      },
      pushRegistrations: async (users) => {
        const unique = [...new Set(users)];
        const rows = await mapLimit(unique, READ_CONCURRENCY, (u) => this.deviceRows(u));
        const out = new Map<string, Map<string, PushRegistration>>();
        unique.forEach((user, i) => {
          const regs = new Map<string, PushRegistration>();
          for (const d of rows[i]!) if (d.push !== undefined) regs.set(d.device, d.push);
          if (regs.size > 0) out.set(user, regs);
        });
        return out;
      },
      revoke: (user, device, ts) => this.revokeDevice(user, device, ts),
      revokedAt: async (user, device) => {
        const r = await this.one(
          `SELECT revoked_ts FROM ${this.ks}.device_revocations WHERE user = ? AND device = ?`,
          [user, device],
        );
        return r && r.revoked_ts !== null ? num(r.revoked_ts) : undefined;
      },
    };
    this.deadLetters = this.deadLetterStore('push');
    this.webhookDeadLetters = this.deadLetterStore('webhook');
  }

  // ---- mutes ----------------------------------------------------------------------------------

  /**
   * One row per muted conversation. A timed mute's row expires (TTL) a minute after the mute ends,
   * so ended mutes disappear by themselves; `MUTED_FOREVER` (and a mute longer than Cassandra's
   * 20-year TTL limit) is stored without a TTL. Each write replaces the row, TTL included.
   */
  private async setMute(user: string, conv: string, until: number | null): Promise<void> {
    if (until === null) {
      await this.run(`DELETE FROM ${this.ks}.mutes WHERE user = ? AND conv = ?`, [user, conv]);
      return;
    }
    const left = Math.ceil((until - Date.now()) / 1000) + 60;
    const ttl = until >= MUTED_FOREVER || left > MAX_TTL_SECONDS ? 0 : Math.max(1, left);
    await this.run(`INSERT INTO ${this.ks}.mutes (user, conv, until) VALUES (?, ?, ?) USING TTL ?`, [
      user,
      conv,
      long(until),
      ttl,
    ]);
  }

  // ---- devices --------------------------------------------------------------------------------

  /** A user's devices (one partition of at most ~MAX_DEVICES_PER_USER rows), unsorted. */
  private async deviceRows(
    user: string,
  ): Promise<{ device: string; lastSeen: number; push?: PushRegistration }[]> {
    const rows = await this.all(
      `SELECT device, last_seen, push_json FROM ${this.ks}.devices_by_user WHERE user = ?`,
      [user],
    );
    // A row without last_seen is no device (only a registration outlived a delete): not listed.
    return rows
      .filter((r) => r.last_seen !== null)
      .map((r) => {
        const d: { device: string; lastSeen: number; push?: PushRegistration } = {
          device: r.device as string,
          lastSeen: num(r.last_seen),
        };
        if (r.push_json !== null) d.push = JSON.parse(r.push_json as string) as PushRegistration;
        return d;
      });
  }

  /**
   * Records a sighting: reads the user's partition (small), upserts last_seen when it moves
   * forward (a revocation stays: it keeps refusing the tokens issued before it), and past
   * `MAX_DEVICES_PER_USER` deletes the least recently seen other devices, each only if it was not
   * seen since the read (conditional delete). Two new devices seen at once at the limit may both
   * evict the same device and leave one too many for a while: the next sighting of any of the
   * user's devices evicts it.
   *
   * Every change to a device row other than last_seen (registration, revocation, eviction) is a
   * conditional write, so they are ordered by Paxos among themselves whatever the clocks.
   */
  private async deviceSeen(user: string, device: string, ts: number): Promise<void> {
    const rows = await this.all(`SELECT device, last_seen FROM ${this.ks}.devices_by_user WHERE user = ?`, [
      user,
    ]);
    const others: { device: string; lastSeen: number }[] = [];
    let known: number | undefined;
    for (const r of rows) {
      if (r.last_seen === null) continue;
      if (r.device === device) known = num(r.last_seen);
      else others.push({ device: r.device as string, lastSeen: num(r.last_seen) });
    }
    // Connect and disconnect times may arrive out of order: last seen only moves forward.
    if (known === undefined || known < ts)
      await this.run(`INSERT INTO ${this.ks}.devices_by_user (user, device, last_seen) VALUES (?, ?, ?)`, [
        user,
        device,
        long(ts),
      ]);
    const excess = others.length + 1 - MAX_DEVICES_PER_USER;
    if (excess <= 0) return;
    others.sort(
      (a, b) => a.lastSeen - b.lastSeen || (a.device < b.device ? -1 : a.device > b.device ? 1 : 0),
    );
    await settled(
      others
        .slice(0, excess)
        .map((d) =>
          this.execute(
            `DELETE FROM ${this.ks}.devices_by_user WHERE user = ? AND device = ? IF last_seen = ?`,
            [user, d.device, long(d.lastSeen)],
            this.lwtOptions(),
          ),
        ),
    );
  }

  /**
   * Sets or removes a registration with a conditional update: only a device that exists gets one
   * (a device revoked or evicted meanwhile gets none), and it is ordered with `dropPush`.
   */
  private async setPush(user: string, device: string, registration: PushRegistration | null): Promise<void> {
    await this.execute(
      `UPDATE ${this.ks}.devices_by_user SET push_json = ? WHERE user = ? AND device = ? IF EXISTS`,
      [registration === null ? null : registrationJson(registration), user, device],
      this.lwtOptions(),
    );
  }

  /**
   * Writes the revocation first (a crash in between leaves the tokens refused, the device listed),
   * with its TTL, then deletes the device row and its registration; the conditional delete reports
   * whether the device existed.
   */
  private async revokeDevice(user: string, device: string, ts: number): Promise<boolean> {
    await this.run(
      `INSERT INTO ${this.ks}.device_revocations (user, device, revoked_ts) VALUES (?, ?, ?) USING TTL ?`,
      [user, device, long(ts), this.revocationTtl],
    );
    const rs = await this.execute(
      `DELETE FROM ${this.ks}.devices_by_user WHERE user = ? AND device = ? IF EXISTS`,
      [user, device],
      this.lwtOptions(),
    );
    return rs.wasApplied();
  }

  // ---- dead letters ---------------------------------------------------------------------------

  /** The dead letters of one kind: every kind is stored alike, in tables of its own. */
  private deadLetterStore<L extends Letter>(kind: DeadLetterKind): DeadLetterStore<L> {
    const tables = {
      letters: `${this.ks}.${kind}_dead_letters`,
      buckets: `${this.ks}.${kind}_dead_letter_buckets`,
    };
    return {
      add: (letters) => this.addDeadLetters(tables, letters),
      list: (limit, after) => this.listDeadLetters<L>(tables, limit, after),
      get: (id) => this.getDeadLetter<L>(tables, id),
      remove: (ids) => this.removeDeadLetters(tables, ids),
    };
  }

  /**
   * Stores letters (JSON) in the partition of their id's hour, each with the dead-letter TTL.
   * The hour's index row is written first (with a TTL an hour longer), so a stored letter is always
   * reachable by `list`. Adding a letter again overwrites it (same id: one letter).
   */
  private async addDeadLetters(tables: DeadLetterTables, letters: readonly Letter[]): Promise<void> {
    const placed = letters.map((l) => {
      const bucket = deadLetterBucketOf(l.id);
      if (bucket === undefined) throw new Error(`dead letter id is not a ULID: ${l.id}`);
      return { bucket, l };
    });
    await this.concurrently(
      [...new Set(placed.map((p) => p.bucket))].map((bucket) => ({
        query: `INSERT INTO ${tables.buckets} (k, bucket) VALUES (0, ?) USING TTL ?`,
        params: [bucket, this.deadLetterTtl + DEAD_LETTER_BUCKET_MS / 1000],
      })),
    );
    await this.concurrently(
      placed.map(({ bucket, l }) => ({
        query: `INSERT INTO ${tables.letters} (bucket, id, letter) VALUES (?, ?, ?) USING TTL ?`,
        params: [bucket, l.id, JSON.stringify(l), this.deadLetterTtl],
      })),
    );
  }

  /**
   * Oldest first: ids are ULIDs, whose order is their time's and whose hour is their partition, so
   * the order of (hour, id) is the order of ids. Walks the hours listed in the index from the hour
   * of `after` (or the oldest), reading each partition past `after` until `limit` letters are
   * found. An `after` that is no ULID (a prefix is fine) starts at the oldest hour; the result is
   * right all the same, only slower.
   */
  private async listDeadLetters<L extends Letter>(
    tables: DeadLetterTables,
    limit: number,
    after?: string,
  ): Promise<L[]> {
    if (limit <= 0) return [];
    const from = after === undefined ? undefined : deadLetterBucketOf(after.slice(0, 10).padEnd(10, '0'));
    const buckets = (
      await this.all(
        `SELECT bucket FROM ${tables.buckets} WHERE k = 0${from === undefined ? '' : ' AND bucket >= ?'}`,
        from === undefined ? [] : [from],
      )
    ).map((r) => num(r.bucket));
    const out: L[] = [];
    for (const bucket of buckets) {
      if (out.length >= limit) break;
      const rows =
        after === undefined
          ? await this.all(`SELECT letter FROM ${tables.letters} WHERE bucket = ? LIMIT ?`, [
              bucket,
              limit - out.length,
            ])
          : await this.all(`SELECT letter FROM ${tables.letters} WHERE bucket = ? AND id > ? LIMIT ?`, [
              bucket,
              after,
              limit - out.length,
            ]);
      for (const r of rows) if (r.letter !== null) out.push(JSON.parse(r.letter as string) as L);
    }
    return out;
  }

  /** One letter, from the partition of its id's hour; an id that is no ULID names none. */
  private async getDeadLetter<L extends Letter>(tables: DeadLetterTables, id: string): Promise<L | null> {
    const bucket = deadLetterBucketOf(id);
    if (bucket === undefined) return null;
    const r = await this.one(`SELECT letter FROM ${tables.letters} WHERE bucket = ? AND id = ?`, [
      bucket,
      id,
    ]);
    return r && r.letter !== null ? (JSON.parse(r.letter as string) as L) : null;
  }

  /**
   * Reads which of the ids are stored (per hour, a few IN queries), then deletes those: the count
   * is of letters that were there. Two operators purging the same letter at once may both count it.
   */
  private async removeDeadLetters(tables: DeadLetterTables, ids: readonly string[]): Promise<number> {
    const byBucket = new Map<number, string[]>();
    for (const id of new Set(ids)) {
      const bucket = deadLetterBucketOf(id);
      if (bucket === undefined) continue;
      const list = byBucket.get(bucket) ?? [];
      list.push(id);
      byBucket.set(bucket, list);
    }
    const lookups = [...byBucket].flatMap(([bucket, list]) =>
      chunk(list, IN_CHUNK).map((c) => ({ bucket, c })),
    );
    const found = (
      await mapLimit(lookups, READ_CONCURRENCY, async ({ bucket, c }) =>
        (
          await this.all(`SELECT id FROM ${tables.letters} WHERE bucket = ? AND id IN ?`, [bucket, c])
        ).map((r) => ({ bucket, id: r.id as string })),
      )
    ).flat();
    await this.concurrently(
      found.map(({ bucket, id }) => ({
        query: `DELETE FROM ${tables.letters} WHERE bucket = ? AND id = ?`,
        params: [bucket, id],
      })),
    );
    return found.length;
  }

  // ---- invites --------------------------------------------------------------------------------

  private async invite(id: string): Promise<Invite | null> {
    const r = await this.one(`SELECT * FROM ${this.ks}.invites WHERE id = ?`, [id]);
    if (!r || r.conv === null) return null;
    const i: Invite = {
      id,
      conv: r.conv as string,
      creator: r.creator as string,
      creatorJoinedSeq: num(r.creator_joined_seq),
      createdTs: num(r.created_ts),
      expiresTs: num(r.expires_ts),
      uses: num(r.uses),
    };
    if (r.max_uses !== null) i.maxUses = num(r.max_uses);
    return i;
  }

  /**
   * Adds `delta` (+1 to take a use, -1 to give one back) to an invite's uses with a conditional
   * update (compare and set, retried while others change it), so concurrent joins through any
   * process never pass `max_uses`. Taking needs the invite alive at `now` with uses left; the
   * update keeps the row's TTL. Resolves with the invite after the change, or null when unchanged.
   */
  private async changeUses(id: string, delta: 1 | -1, now: number): Promise<Invite | null> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const i = await this.invite(id);
      if (!i) return null;
      if (delta > 0 && (i.expiresTs <= now || (i.maxUses !== undefined && i.uses >= i.maxUses))) return null;
      if (delta < 0 && i.uses <= 0) return null;
      const rs = await this.execute(
        `UPDATE ${this.ks}.invites USING TTL ? SET uses = ? WHERE id = ? IF uses = ?`,
        [inviteTtl(i.expiresTs, Date.now()), i.uses + delta, id, i.uses],
        this.lwtOptions(),
      );
      if (rs.wasApplied()) return { ...i, uses: i.uses + delta };
    }
    throw new ParleyError('unavailable', 'invite busy; retry');
  }

  /** The keyspace and query helpers, for the parts of the store in files of their own. */
  private cql(): Cql {
    return {
      ks: this.ks,
      one: (query, params) => this.one(query, params),
      all: (query, params) => this.all(query, params),
      run: (query, params) => this.run(query, params),
      lwt: (query, params) => this.execute(query, params, this.lwtOptions()),
      lwtBatch: (queries) => this.batch(queries, this.lwtOptions()),
      batch: async (queries) => {
        await this.batch(queries, { prepare: true, logged: false, consistency: this.consistency });
      },
    };
  }

  private lwtOptions(): QueryOptions {
    return { prepare: true, consistency: this.consistency, serialConsistency: this.serialConsistency };
  }

  /** Closes the driver's connections. */
  async close(): Promise<void> {
    await this.client.shutdown();
  }

  // ---- messages -------------------------------------------------------------------------------

  private async appendMessages(
    rows: readonly StoredMessage[],
    effects: readonly GroupEffect[],
  ): Promise<void> {
    const effectAt = effectsAt(effects);
    // Step 1: take the seqs, one conditional batch per (conv, bucket) partition.
    const partitions = groupBy(rows, (m) => `${m.conv}\u0000${bucketOf(m.seq)}`);
    const fresh = new Set<StoredMessage>();
    await settled(
      [...partitions.values()].flatMap(chunkBySize).map(async (part) => {
        for (const m of await this.insertLog(part, effectAt)) fresh.add(m);
      }),
    );
    // Step 2: the rows derived from the log (idempotent), group changes only for new messages.
    await this.writeDerived(rows, fresh, effectAt);
  }

  /**
   * Stores messages under `epoch` by plain upserts whose write timestamp is the epoch's (a newer
   * owner's row under the same seq wins, whatever the order of arrival), with their group changes
   * in the row (`effect`), as the conditional path does: one unlogged batch per (conv, bucket).
   */
  private async writeMessageRows(
    rows: readonly StoredMessage[],
    effects: readonly GroupEffect[],
    epoch: number,
  ): Promise<void> {
    const effectAt = effectsAt(effects);
    const timestamp = epochTimestamp(epoch);
    const partitions = groupBy(rows, (m) => `${m.conv}\u0000${bucketOf(m.seq)}`);
    await this.batches(
      [...partitions.values()].flatMap(chunkBySize).map((part) =>
        part.map((m) => ({
          query: `INSERT INTO ${this.ks}.messages (conv, bucket, seq, ts, sender, device, cmid, kind, body, reply_to, media, effect)
                  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
          params: [...this.messageRow(m, effectAt), timestamp],
        })),
      ),
    );
  }

  /** A message row's values, in the column order of the inserts. */
  private messageRow(m: StoredMessage, effectAt: Map<string, GroupEffect[]>): unknown[] {
    return [
      m.conv,
      bucketOf(m.seq),
      long(m.seq),
      long(m.ts),
      m.from,
      m.from_device,
      m.cmid,
      m.kind,
      m.body,
      m.reply_to === undefined ? null : long(m.reply_to),
      m.media ?? null,
      effectsJson(effectAt.get(`${m.conv}\u0000${m.seq}`)),
    ];
  }

  /** Inserts one partition's messages if their seqs are free; returns those newly stored. */
  private insertLog(part: StoredMessage[], effectAt: Map<string, GroupEffect[]>): Promise<StoredMessage[]> {
    const { conv } = part[0]!;
    return this.takeOnce(part, {
      number: (m) => m.seq,
      insert: (m) => ({
        query: `INSERT INTO ${this.ks}.messages (conv, bucket, seq, ts, sender, device, cmid, kind, body, reply_to, media, effect)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
        params: this.messageRow(m, effectAt),
      }),
      stored: async (numbers) =>
        (
          await this.all(`SELECT * FROM ${this.ks}.messages WHERE conv = ? AND bucket = ? AND seq IN ?`, [
            conv,
            bucketOf(numbers[0]!),
            numbers.map(long),
          ])
        ).map(toMessage),
      same: sameMessage,
      conflict: (m) => new SeqConflictError(conv, m.seq),
    });
  }

  /**
   * Inserts rows of one partition (messages by seq, inbox entries by number), each only if its
   * number is free: one conditional batch (one Paxos round), and when some number is taken, a read
   * of what is stored there — the same row (a retry) is not new, another row means this writer no
   * longer owns the partition (`conflict`). Returns the rows it inserted.
   */
  private async takeOnce<T>(
    rows: readonly T[],
    spec: {
      number: (row: T) => number;
      insert: (row: T) => Query;
      stored: (numbers: number[]) => Promise<T[]>;
      same: (stored: T, row: T) => boolean;
      conflict: (row: T) => Error;
    },
  ): Promise<T[]> {
    let todo = rows;
    const options = {
      prepare: true,
      consistency: this.consistency,
      serialConsistency: this.serialConsistency,
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      if (todo.length === 0) return [];
      const queries = todo.map(spec.insert);
      const rs =
        queries.length === 1
          ? await this.execute(queries[0]!.query, queries[0]!.params, options)
          : await this.batch(queries, options);
      if (rs.wasApplied()) return [...todo];
      const stored = new Map((await spec.stored(todo.map(spec.number))).map((r) => [spec.number(r), r]));
      const missing: T[] = [];
      for (const row of todo) {
        const there = stored.get(spec.number(row));
        if (there === undefined) missing.push(row);
        else if (!spec.same(there, row)) throw spec.conflict(row);
      }
      todo = missing;
    }
    throw new Error(`could not take ${todo.length} numbers of one partition: contention`);
  }

  /**
   * The rows derived from appended messages: dedup rows, group changes (one logged batch per
   * conversation, so a change is applied whole), and last the heads, so a recorded head never
   * runs ahead of finished derived rows (the roll-forward in `head()` relies on it).
   */
  private async writeDerived(
    rows: readonly StoredMessage[],
    fresh: ReadonlySet<StoredMessage>,
    effectAt: Map<string, GroupEffect[]>,
  ): Promise<void> {
    await this.concurrently(
      rows.map((m) => ({
        query: `INSERT INTO ${this.ks}.message_cmids (conv, sender, cmid, seq, ts) VALUES (?, ?, ?, ?, ?)`,
        params: [m.conv, m.from, m.cmid, long(m.seq), long(m.ts)],
      })),
    );
    const changed = rows.filter((m) => fresh.has(m) && effectAt.has(`${m.conv}\u0000${m.seq}`));
    for (const conv of new Set(changed.map((m) => m.conv))) {
      const list = changed
        .filter((m) => m.conv === conv)
        .flatMap((m) => effectAt.get(`${m.conv}\u0000${m.seq}`)!);
      const queries = await this.effectQueries(conv, list);
      if (queries.length > 0)
        await this.batch(queries, { prepare: true, logged: true, consistency: this.consistency });
    }
    const heads = new Map<string, { seq: number; ts: number; firstTs?: number }>();
    for (const m of rows) {
      const h = heads.get(m.conv) ?? { seq: 0, ts: 0 };
      h.seq = Math.max(h.seq, m.seq);
      h.ts = Math.max(h.ts, m.ts);
      if (m.seq === 1) h.firstTs = m.ts;
      heads.set(m.conv, h);
    }
    // A conversation's head registers share its partition: one unlogged batch each.
    const headBatches: Query[][] = [];
    for (const [conv, h] of heads) {
      const queries: Query[] = [
        {
          query: `UPDATE ${this.ks}.conversations USING TIMESTAMP ? SET last_seq = ? WHERE conv = ?`,
          params: [long(h.seq), long(h.seq), conv],
        },
        {
          query: `UPDATE ${this.ks}.conversations USING TIMESTAMP ? SET last_ts = ? WHERE conv = ?`,
          params: [long(h.ts), long(h.ts), conv],
        },
      ];
      // Written with the lowest timestamp: a group's create (written later, ordered) always wins.
      if (h.firstTs !== undefined)
        queries.push({
          query: `UPDATE ${this.ks}.conversations USING TIMESTAMP ? SET created_ts = ? WHERE conv = ?`,
          params: [long(1), long(h.firstTs), conv],
        });
      headBatches.push(queries);
    }
    await this.batches(headBatches);
  }

  /**
   * The writes of a conversation's group changes, in order: each gets a later write timestamp than
   * the one before, so two changes to the same cell in one batch resolve as they happened.
   */
  private async effectQueries(conv: string, list: readonly GroupEffect[]): Promise<Query[]> {
    const known = new Set((await this.memberRows(conv)).map((r) => r.user as string));
    const out: Query[] = [];
    const at = () => long(this.nextMicros());
    const join = (user: string, role: string, seq: number) => {
      known.add(user);
      out.push({
        query: `INSERT INTO ${this.ks}.members (conv, user, role, joined_seq, removed_seq, name_at_removal, members_at_removal)
                VALUES (?, ?, ?, ?, null, null, null) USING TIMESTAMP ?`,
        params: [conv, user, role, long(seq), at()],
      });
    };
    for (const e of list) {
      switch (e.type) {
        case 'create':
          out.push({
            query: `UPDATE ${this.ks}.conversations USING TIMESTAMP ? SET kind = 'group', name = ?, created_ts = ? WHERE conv = ?`,
            params: [at(), e.name, long(e.createdTs), conv],
          });
          for (const m of e.members) join(m.user, m.role, e.seq);
          break;
        case 'join':
          for (const u of e.users) join(u, 'member', e.seq);
          break;
        case 'remove':
          for (const u of e.users) {
            if (!known.has(u)) continue;
            out.push({
              query: `UPDATE ${this.ks}.members USING TIMESTAMP ? SET removed_seq = ?, name_at_removal = ?, members_at_removal = ?
                      WHERE conv = ? AND user = ?`,
              params: [at(), long(e.seq), e.name ?? null, e.members ?? null, conv, u],
            });
          }
          break;
        case 'role':
          if (known.has(e.user))
            out.push({
              query: `UPDATE ${this.ks}.members USING TIMESTAMP ? SET role = ? WHERE conv = ? AND user = ?`,
              params: [at(), e.role, conv, e.user],
            });
          break;
        case 'rename':
          out.push({
            query: `UPDATE ${this.ks}.conversations USING TIMESTAMP ? SET name = ? WHERE conv = ?`,
            params: [at(), e.name, conv],
          });
          break;
      }
    }
    return out;
  }

  /** The head readers see: the recorded one (written with a batch's derived rows). */
  private async publishedMessageHead(conv: string): Promise<ConversationHead | null> {
    const r = await this.one(`SELECT last_seq, last_ts FROM ${this.ks}.conversations WHERE conv = ?`, [conv]);
    const recorded = num(r?.last_seq);
    return recorded > 0 ? { lastSeq: recorded, lastTs: num(r?.last_ts) } : null;
  }

  /**
   * The published head, and the messages written past it (a writer died, or was fenced, between
   * its rows and their derived rows), with their group changes.
   */
  private async writtenMessageHead(conv: string): Promise<WrittenLog> {
    const head = await this.publishedMessageHead(conv);
    const recorded = head?.lastSeq ?? 0;
    const beyond: StoredMessage[] = [];
    const effects: GroupEffect[] = [];
    for (let b = bucketOf(recorded + 1); ; b++) {
      const rows = await this.all(
        `SELECT * FROM ${this.ks}.messages WHERE conv = ? AND bucket = ? AND seq > ?`,
        [conv, b, long(recorded)],
      );
      if (rows.length === 0) break;
      beyond.push(...rows.map(toMessage));
      for (const r of rows) if (r.effect) effects.push(...(JSON.parse(r.effect as string) as GroupEffect[]));
    }
    return { head, beyond, effects };
  }

  private async page(conv: string, q: PageQuery): Promise<StoredMessage[]> {
    const floor = Math.max(1, q.floor ?? 1);
    if (q.limit <= 0) return [];
    // Readers see published messages only: a row past the recorded head may be a fenced writer's.
    const published = (await this.publishedMessageHead(conv))?.lastSeq ?? 0;
    if (q.after !== undefined) {
      const from = Math.max(q.after + 1, floor);
      const before = Math.min(q.before ?? Number.MAX_SAFE_INTEGER, published + 1);
      const out: StoredMessage[] = [];
      for (let b = bucketOf(from); out.length < q.limit; b++) {
        const rows = await this.all(
          `SELECT * FROM ${this.ks}.messages WHERE conv = ? AND bucket = ? AND seq >= ? AND seq < ? LIMIT ?`,
          [conv, b, long(from), long(before), q.limit - out.length],
        );
        if (rows.length === 0) break;
        out.push(...rows.map(toMessage));
      }
      return out;
    }
    let top = Math.min(q.before !== undefined ? q.before - 1 : published, published);
    const out: StoredMessage[] = [];
    for (let b = bucketOf(top); b >= 0 && top >= floor && out.length < q.limit; b--) {
      const rows = await this.all(
        `SELECT * FROM ${this.ks}.messages WHERE conv = ? AND bucket = ? AND seq >= ? AND seq <= ? ORDER BY seq DESC LIMIT ?`,
        [conv, b, long(floor), long(top), q.limit - out.length],
      );
      out.push(...rows.map(toMessage));
      top = b * BUCKET_SIZE - 1;
    }
    return out.reverse();
  }

  private async senders(conv: string, after: number, upto: number, max: number): Promise<string[]> {
    const out = new Set<string>();
    for (let b = bucketOf(after + 1); b <= bucketOf(upto) && out.size < max; b++) {
      const rows = await this.all(
        `SELECT sender, kind FROM ${this.ks}.messages WHERE conv = ? AND bucket = ? AND seq > ? AND seq <= ?`,
        [conv, b, long(after), long(upto)],
      );
      for (const r of rows) {
        if (out.size >= max) break;
        if (r.kind !== 'system') out.add(r.sender as string);
      }
    }
    return [...out];
  }

  private memberRows(conv: string): Promise<Row[]> {
    return this.all(`SELECT * FROM ${this.ks}.members WHERE conv = ?`, [conv]);
  }

  private async mergeWatermarks(rows: readonly Watermark[]): Promise<void> {
    // One row's two registers go in one single-partition batch, which Cassandra applies atomically
    // and in isolation: a reader never sees `read` ahead of `delivered` ("read implies delivered").
    const rowBatches: Query[][] = [];
    for (const w of rows) {
      // Nothing to raise: the row still exists afterwards (at 0, 0), as in the other stores.
      if (w.delivered <= 0 && w.read <= 0) {
        rowBatches.push([
          { query: `INSERT INTO ${this.ks}.watermarks (conv, user) VALUES (?, ?)`, params: [w.conv, w.user] },
        ]);
        continue;
      }
      const queries: Query[] = [];
      for (const field of ['delivered', 'read'] as const) {
        if (w[field] <= 0) continue;
        queries.push({
          query: `UPDATE ${this.ks}.watermarks USING TIMESTAMP ? SET ${field} = ? WHERE conv = ? AND user = ?`,
          params: [long(w[field]), long(w[field]), w.conv, w.user],
        });
      }
      rowBatches.push(queries);
    }
    await this.batches(rowBatches);
  }

  // ---- inbox ----------------------------------------------------------------------------------

  /**
   * Stores inbox entries, each number taken once: a conditional batch per (user, bucket), so a
   * writer that lost the inbox (a paused fan-out member whose partition moved) cannot overwrite
   * the owner's entries — it gets `InboxConflictError` — and re-appending the same entries is a
   * no-op. The chat list and the heads follow, so a head never covers an entry that is not written.
   */
  private async appendInbox(entries: readonly InboxEntry[]): Promise<void> {
    const partitions = groupBy(entries, (e) => `${e.user}\u0000${bucketOf(e.inbox)}`);
    await settled(
      [...partitions.values()].flatMap((p) => chunk(p, INBOX_BATCH)).map((p) => this.insertInbox(p)),
    );
    await this.publishInbox(entries, headsOf(entries));
  }

  /**
   * Stores entries under `epoch` by plain upserts whose write timestamp is the epoch's: a row a
   * newer owner writes under the same number wins, whatever the order of arrival. One unlogged
   * batch per (user, bucket).
   */
  private async writeInboxRows(entries: readonly InboxEntry[], epoch: number): Promise<void> {
    const timestamp = epochTimestamp(epoch);
    const partitions = groupBy(entries, (e) => `${e.user}\u0000${bucketOf(e.inbox)}`);
    await this.batches(
      [...partitions.values()].flatMap((p) =>
        chunk(p, INBOX_BATCH).map((part) =>
          part.map((e) => ({
            query: `INSERT INTO ${this.ks}.inbox (user, bucket, inbox, ts, type, conv, seq, actor, receipt_kind)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?`,
            params: [...this.inboxRow(e), timestamp],
          })),
        ),
      ),
    );
  }

  /**
   * Per user, the chat list of `entries` and the head (both tables are keyed by the user alone, so
   * one unlogged batch is one mutation on one replica set). Written after the entries, so a head
   * never covers an entry that is not written.
   */
  private async publishInbox(
    entries: readonly InboxEntry[],
    heads: ReadonlyMap<string, number>,
  ): Promise<void> {
    const perUser = new Map<string, Query[]>();
    const queriesOf = (user: string) => {
      const q = perUser.get(user) ?? [];
      perUser.set(user, q);
      return q;
    };
    for (const e of entries) {
      if (e.type !== 'message') continue;
      // Two max-registers, each written with its own value as the timestamp.
      queriesOf(e.user).push(
        {
          query: `UPDATE ${this.ks}.user_conversations USING TIMESTAMP ? SET last_ts = ? WHERE user = ? AND conv = ?`,
          params: [long(e.ts), long(e.ts), e.user, e.conv],
        },
        {
          query: `UPDATE ${this.ks}.user_conversations USING TIMESTAMP ? SET last_seq = ? WHERE user = ? AND conv = ?`,
          params: [long(e.seq), long(e.seq), e.user, e.conv],
        },
      );
    }
    for (const [user, head] of heads)
      queriesOf(user).push({
        query: `UPDATE ${this.ks}.inbox_heads USING TIMESTAMP ? SET head = ? WHERE user = ?`,
        params: [long(head), long(head), user],
      });
    await this.batches([...perUser.values()].flatMap((q) => chunk(q, INBOX_BATCH)));
  }

  /** An inbox row's values, in the column order of the inserts, with its TTL. */
  private inboxRow(e: InboxEntry): unknown[] {
    const receipt = e.type === 'receipt' ? e : undefined;
    return [
      e.user,
      bucketOf(e.inbox),
      long(e.inbox),
      long(e.ts),
      e.type,
      e.conv,
      long(e.seq),
      receipt?.actor ?? null,
      receipt?.kind ?? null,
      this.inboxTtl,
    ];
  }

  /** Inserts one (user, bucket)'s entries if their numbers are free; the same entries again are fine. */
  private async insertInbox(part: InboxEntry[]): Promise<void> {
    const { user } = part[0]!;
    await this.takeOnce(part, {
      number: (e) => e.inbox,
      insert: (e) => ({
        query: `INSERT INTO ${this.ks}.inbox (user, bucket, inbox, ts, type, conv, seq, actor, receipt_kind)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS USING TTL ?`,
        params: this.inboxRow(e),
      }),
      stored: async (numbers) =>
        (
          await this.all(`SELECT * FROM ${this.ks}.inbox WHERE user = ? AND bucket = ? AND inbox IN ?`, [
            user,
            bucketOf(numbers[0]!),
            numbers.map(long),
          ])
        ).map((r) => toEntry(user, r)),
      same: sameEntry,
      conflict: (e) => InboxConflictError.taken(user, e.inbox),
    });
  }

  /** The head readers see: the recorded (published) one. */
  private async publishedHead(user: string): Promise<number> {
    return num((await this.one(`SELECT head FROM ${this.ks}.inbox_heads WHERE user = ?`, [user]))?.head);
  }

  /**
   * The published head and, past it, the last entry actually written (by a writer that died, or
   * was fenced, between its entries and its head), so the next writer never reuses a number.
   */
  private async writtenHead(user: string): Promise<WrittenHead> {
    const published = await this.publishedHead(user);
    let written = published;
    for (let b = bucketOf(written + 1); ; b++) {
      const last = await this.one(
        `SELECT inbox FROM ${this.ks}.inbox WHERE user = ? AND bucket = ? AND inbox > ? ORDER BY inbox DESC LIMIT 1`,
        [user, b, long(written)],
      );
      if (!last) return { published, written };
      written = num(last.inbox);
    }
  }

  /** Entries with after < inbox <= upTo, ascending, at most `limit`. */
  private async readInbox(user: string, after: number, limit: number, upTo: number): Promise<InboxEntry[]> {
    const out: InboxEntry[] = [];
    // Expired buckets may precede live ones, so walk every bucket up to the head's.
    for (let b = bucketOf(after + 1); b <= bucketOf(upTo) && out.length < limit; b++) {
      const rows = await this.all(
        `SELECT * FROM ${this.ks}.inbox WHERE user = ? AND bucket = ? AND inbox > ? AND inbox <= ? LIMIT ?`,
        [user, b, long(after), long(upTo), limit - out.length],
      );
      out.push(...rows.map((r) => toEntry(user, r)));
    }
    return out;
  }

  // ---- stage epochs -----------------------------------------------------------------------------

  /**
   * Takes the stage's next epoch (a conditional update of its `last`, retried on contention) and
   * records it as the holder of each of `partitions`, with the epoch as the write timestamp.
   */
  private async takeEpoch(stage: string, partitions: readonly number[], owner: string): Promise<number> {
    let expected: number | null = null;
    for (let attempt = 0; ; attempt++) {
      const next: number = (expected ?? 0) + 1;
      const rs = await this.execute(
        `UPDATE ${this.ks}.stage_epochs SET last = ? WHERE stage = ? IF last = ?`,
        [long(next), stage, expected === null ? null : long(expected)],
        this.lwtOptions(),
      );
      if (rs.wasApplied()) {
        const timestamp = epochTimestamp(next);
        await this.batches([
          partitions.map((p) => ({
            query: `UPDATE ${this.ks}.stage_epochs USING TIMESTAMP ? SET epoch = ?, owner = ? WHERE stage = ? AND partition = ?`,
            params: [timestamp, long(next), owner, stage, p],
          })),
        ]);
        return next;
      }
      if (attempt >= 100) throw new Error(`could not take an epoch of ${stage}: contention`);
      const last: unknown = rs.first()?.get('last');
      expected = last === null || last === undefined ? null : num(last);
    }
  }

  private async heldEpochs(stage: string): Promise<ReadonlyMap<number, number>> {
    const rows = await this.all(`SELECT partition, epoch FROM ${this.ks}.stage_epochs WHERE stage = ?`, [
      stage,
    ]);
    const out = new Map<number, number>();
    for (const r of rows)
      if (r.partition !== null && r.epoch !== null) out.set(r.partition as number, num(r.epoch));
    return out;
  }

  private async inboxFloor(user: string): Promise<number> {
    const r = await this.one(`SELECT head, floor_bucket FROM ${this.ks}.inbox_heads WHERE user = ?`, [user]);
    const head = num(r?.head);
    const hint = num(r?.floor_bucket);
    for (let b = hint; b <= bucketOf(head); b++) {
      const first = await this.one(
        `SELECT inbox FROM ${this.ks}.inbox WHERE user = ? AND bucket = ? LIMIT 1`,
        [user, b],
      );
      if (first) {
        if (b > hint)
          await this.run(
            `UPDATE ${this.ks}.inbox_heads USING TIMESTAMP ? SET floor_bucket = ? WHERE user = ?`,
            [long(b), b, user],
          );
        return num(first.inbox);
      }
    }
    return head + 1;
  }

  // ---- driver helpers -------------------------------------------------------------------------

  /**
   * Counts what one request sends: its statements by kind, and one Paxos round when any of them
   * is conditional (a conditional batch is one round, whatever its size).
   */
  private count(queries: readonly string[]): void {
    let conditional = false;
    for (const q of queries) {
      const kind = /^\s*SELECT/i.test(q) ? 'read' : CONDITIONAL.test(q) ? 'lwt' : 'write';
      if (kind === 'lwt') conditional = true;
      this.statements[kind]++;
    }
    this.statements.requests++;
    if (conditional) this.statements.paxos++;
  }

  private nextMicros(): number {
    this.lastMicros = Math.max(this.lastMicros + 1, this.nowMicros());
    return this.lastMicros;
  }

  private async run(query: string, params: unknown[]): Promise<void> {
    await this.execute(query, params, { prepare: true, consistency: this.consistency });
  }

  private async one(query: string, params: unknown[]): Promise<Row | undefined> {
    return (
      (await this.execute(query, params, { prepare: true, consistency: this.consistency })).first() ??
      undefined
    );
  }

  private async all(query: string, params: unknown[]): Promise<Row[]> {
    // Bounded queries (one bucket, one small partition), read with automatic paging all the same.
    const rows: Row[] = [];
    let pageState: string | undefined;
    do {
      const rs = await this.execute(query, params, {
        prepare: true,
        consistency: this.consistency,
        fetchSize: 1000,
        ...(pageState === undefined ? {} : { pageState }),
      });
      rows.push(...rs.rows);
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return rows;
  }

  /** Every query goes through here or `batch`: a failure of the engine reaches callers as `unavailable`. */
  private async execute(query: string, params: unknown[], options: QueryOptions): Promise<types.ResultSet> {
    this.count([query]);
    try {
      return await this.client.execute(query, params, options);
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  private async batch(queries: readonly Query[], options: QueryOptions): Promise<types.ResultSet> {
    this.count(queries.map((q) => q.query));
    try {
      return await this.client.batch([...queries], options);
    } catch (err) {
      throw storeUnavailable(err);
    }
  }

  /** Runs independent single-statement writes (see `inLanes`). */
  private async concurrently(queries: readonly Query[]): Promise<void> {
    await this.inLanes(queries.map((q) => () => this.run(q.query, q.params)));
  }

  /** Runs independent unlogged batches, each of one partition (see `inLanes`). */
  private async batches(groups: readonly (readonly Query[])[]): Promise<void> {
    await this.inLanes(
      groups.map(
        (q) => () =>
          q.length === 1
            ? this.run(q[0]!.query, q[0]!.params)
            : this.batch(q, { prepare: true, logged: false, consistency: this.consistency }),
      ),
    );
  }

  /**
   * Runs independent writes, at most `WRITE_CONCURRENCY` in flight; after a failure no new write
   * starts, and it rejects once the ones in flight have settled.
   */
  private async inLanes(writes: readonly (() => Promise<unknown>)[]): Promise<void> {
    let next = 0;
    let failed = false;
    const lane = async () => {
      while (next < writes.length && !failed) {
        const write = writes[next++]!;
        try {
          await write();
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await settled(Array.from({ length: Math.min(WRITE_CONCURRENCY, writes.length) }, lane));
  }
}

/**
 * What a client sees when Cassandra cannot answer (no replica reachable, too few replicas for the
 * consistency level, a timeout): `unavailable`, retryable, named after the driver's error class but
 * without its details (addresses). A write that timed out may still have been applied: callers
 * never acknowledge it, and a retry is idempotent (the conditional inserts recognise it).
 */
function storeUnavailable(err: unknown): ParleyError {
  const kind = err instanceof Error ? err.name : 'error';
  return Object.assign(new ParleyError('unavailable', `store unavailable (${kind}); retry`), { cause: err });
}

/** An invite row's TTL in seconds: until a minute after it expires (at least one second). */
function inviteTtl(expiresTs: number, now: number): number {
  return Math.max(1, Math.ceil((expiresTs - now) / 1000) + 60);
}

/** Bytes of message text per conditional batch (Cassandra refuses batches over 50 KiB by default). */
const BATCH_BYTES = 32 * 1024;

/** Splits one partition's messages into batches of at most `BATCH_BYTES` (a larger message goes alone). */
function chunkBySize(part: StoredMessage[]): StoredMessage[][] {
  const out: StoredMessage[][] = [];
  let chunk: StoredMessage[] = [];
  let bytes = 0;
  for (const m of part) {
    const size = 200 + m.body.length * 3 + m.cmid.length + m.from.length;
    if (chunk.length > 0 && bytes + size > BATCH_BYTES) {
      out.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(m);
    bytes += size;
  }
  if (chunk.length > 0) out.push(chunk);
  return out;
}

function toMessage(r: Row): StoredMessage {
  const m: StoredMessage = {
    conv: r.conv as string,
    seq: num(r.seq),
    ts: num(r.ts),
    from: r.sender as string,
    from_device: r.device as string,
    cmid: r.cmid as string,
    kind: r.kind as string,
    body: r.body as string,
  };
  if (r.reply_to !== null && r.reply_to !== undefined) m.reply_to = num(r.reply_to);
  if (Array.isArray(r.media) && r.media.length > 0) m.media = [...(r.media as string[])];
  return m;
}

function sameEntry(a: InboxEntry, b: InboxEntry): boolean {
  if (a.type !== b.type || a.conv !== b.conv || a.seq !== b.seq) return false;
  return a.type !== 'receipt' || b.type !== 'receipt' || (a.actor === b.actor && a.kind === b.kind);
}

function sameMessage(a: StoredMessage, b: StoredMessage): boolean {
  return a.from === b.from && a.cmid === b.cmid && a.kind === b.kind && a.body === b.body && a.ts === b.ts;
}

function effectsJson(list: GroupEffect[] | undefined): string | null {
  return list && list.length > 0 ? JSON.stringify(list) : null;
}

function toEntry(user: string, r: Row): InboxEntry {
  const base = { user, inbox: num(r.inbox), ts: num(r.ts), conv: r.conv as string, seq: num(r.seq) };
  if (r.type === 'receipt')
    return {
      ...base,
      type: 'receipt',
      actor: r.actor as string,
      kind: r.receipt_kind as 'delivered' | 'read',
    };
  return { ...base, type: 'message' };
}

function toMember(r: Row): MemberRecord {
  const m: MemberRecord = {
    conv: r.conv as string,
    user: r.user as string,
    role: r.role === 'admin' ? 'admin' : 'member',
    joinedSeq: num(r.joined_seq),
  };
  if (r.removed_seq !== null) m.removedSeq = num(r.removed_seq);
  if (r.name_at_removal !== null) m.nameAtRemoval = r.name_at_removal as string;
  if (r.members_at_removal !== null) m.membersAtRemoval = num(r.members_at_removal);
  return m;
}

function byJoinThenUser(a: MemberRecord, b: MemberRecord): number {
  return a.joinedSeq - b.joinedSeq || (a.user < b.user ? -1 : a.user > b.user ? 1 : 0);
}

/** Group changes by `conv\u0000seq`, the message that made them. */
function effectsAt(effects: readonly GroupEffect[]): Map<string, GroupEffect[]> {
  return groupBy(effects, (e) => `${e.conv}\u0000${e.seq}`);
}
