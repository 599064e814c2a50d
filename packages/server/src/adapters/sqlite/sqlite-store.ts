import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type {
  ConversationMeta,
  ConversationStore,
  GroupEffect,
  MemberRecord,
  Watermark,
} from '../../ports/conversation-store.js';
import { DEVICE_QUEUE_RETENTION_MS, type DeviceMessage, type DeviceQueue } from '../../ports/device-queue.js';
import {
  type DeviceRecord,
  type DeviceStore,
  MAX_DEVICES_PER_USER,
  REVOCATION_RETENTION_MS,
} from '../../ports/device-store.js';
import type { FanoutRecovery, UnfannedRange } from '../../ports/fanout-recovery.js';
import type { InboxPruning } from '../../ports/inbox-pruning.js';
import type {
  FannedMark,
  InboxEntry,
  InboxStore,
  MessageFanout,
  UserConversation,
} from '../../ports/inbox-store.js';
import type { Invite, InviteStore } from '../../ports/invite-store.js';
import { type ClaimedBundle, type KeyDirectory, MAX_ONE_TIME_PREKEYS } from '../../ports/key-directory.js';
import { MAX_MEDIA_REFERENCES, type MediaIndex, type MediaRecord } from '../../ports/media-index.js';
import type {
  ConversationHead,
  MessageStore,
  OrderedWrites,
  PageQuery,
  StoredMessage,
} from '../../ports/message-store.js';
import { type PushRegistration, registrationJson } from '../../ports/push-provider.js';
import type { DeadLetter, PushDeadLetters, PushJob, PushQueue } from '../../ports/push-queue.js';
import { DEFAULT_SETTINGS, type UserSettings, type UserStore } from '../../ports/user-store.js';
import type {
  WebhookDeadLetter,
  WebhookDeadLetters,
  WebhookDelivery,
  WebhookQueue,
} from '../../ports/webhooks.js';
import { configureConnection, migrate } from './schema.js';
import { SqliteJobQueue } from './sqlite-job-queue.js';
import { type CommitObserver, WriterClient } from './writer-client.js';

interface MessageRow {
  conv: string;
  seq: number;
  ts: number;
  sender: string;
  device: string;
  cmid: string;
  kind: string;
  body: string;
  reply_to: number | null;
  media: string | null;
}

interface InboxRow {
  user: string;
  n: number;
  ts: number;
  type: string;
  conv: string;
  seq: number;
  actor: string | null;
  kind: string | null;
}

function toMessage(r: MessageRow): StoredMessage {
  const m: StoredMessage = {
    conv: r.conv,
    seq: r.seq,
    ts: r.ts,
    from: r.sender,
    from_device: r.device,
    cmid: r.cmid,
    kind: r.kind,
    body: r.body,
  };
  if (r.reply_to !== null) m.reply_to = r.reply_to;
  if (r.media !== null) m.media = JSON.parse(r.media) as string[];
  return m;
}

function toInboxEntry(r: InboxRow): InboxEntry {
  if (r.type === 'receipt') {
    return {
      user: r.user,
      inbox: r.n,
      ts: r.ts,
      type: 'receipt',
      conv: r.conv,
      seq: r.seq,
      actor: r.actor ?? '',
      kind: r.kind === 'read' ? 'read' : 'delivered',
    };
  }
  return { user: r.user, inbox: r.n, ts: r.ts, type: 'message', conv: r.conv, seq: r.seq };
}

interface DeadLetterRow {
  id: string;
  job_json: string;
  platform: string;
  reason: string;
  attempts: number;
  ts: number;
}

/** A queued job as `push_jobs` holds it. */
interface PushJobRow {
  id: number;
  user: string;
  device: string;
  conv: string;
  seq: number;
  sender: string;
  kind: string;
  inbox: number;
  ts: number;
}

function toPushJob(r: PushJobRow): PushJob {
  const { user, device, conv, seq, kind, inbox, ts } = r;
  return { user, device, conv, seq, from: r.sender, kind, inbox, ts };
}

/** The webhook dead letters: rows of JSON, written through the writer. */
function webhookDeadLetters(q: Reads, writer: WriterClient): WebhookDeadLetters {
  const parse = (r: { letter_json: string }) => JSON.parse(r.letter_json) as WebhookDeadLetter;
  return {
    add: async (letters) => {
      if (letters.length > 0) await writer.write({ op: 'webhookLetterAdd', letters });
    },
    list: async (limit, after) =>
      (q.webhookLetters.all(after ?? '', limit) as { letter_json: string }[]).map(parse),
    get: async (id) => {
      const r = q.webhookLetter.get(id) as { letter_json: string } | undefined;
      return r ? parse(r) : null;
    },
    remove: async (ids) => (ids.length === 0 ? 0 : await writer.write({ op: 'webhookLetterRemove', ids })),
  };
}

function toDeadLetter(r: DeadLetterRow): DeadLetter {
  return {
    id: r.id,
    job: JSON.parse(r.job_json) as PushJob,
    platform: r.platform,
    reason: r.reason,
    attempts: r.attempts,
    ts: r.ts,
  };
}

/** Opens (creating if needed) and migrates the database file; used by `parley migrate` too. */
export function openAndMigrate(path: string): { db: Database.Database; applied: number[] } {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    configureConnection(db);
    return { db, applied: migrate(db) };
  } catch (err) {
    // A refused or failed migration must not leave the file open.
    db.close();
    throw err;
  }
}

/**
 * The embedded store: one SQLite file in WAL mode. Reads run on the main thread through a
 * read-only connection (WAL readers never wait for the writer); writes go through the group
 * committing writer thread. It implements the message, inbox and conversation ports over one file,
 * so one transaction (and one fsync) can carry writes from all of them, and the capabilities
 * `FanoutRecovery` (fan-out marks are kept in `conversations.fanned_seq`), `InboxPruning` and
 * `OrderedWrites` (one writer thread commits in issue order and fails closed).
 * It also holds the devices, the push and webhook queues (see `SqliteJobQueue`) and their dead letters, the
 * end-to-end encryption key directory, the `to_device` queues and the media index.
 */
export class SqliteStore implements OrderedWrites {
  readonly writesInOrder = true;
  readonly messages: MessageStore;
  readonly inbox: InboxStore;
  /** Lists the conversations whose fan-out marks lag their log (crash recovery). */
  readonly fanoutRecovery: FanoutRecovery;
  /** Deletes inbox entries past the retention, in bounded batches. */
  readonly inboxPruning: InboxPruning;
  readonly conversations: ConversationStore;
  readonly users: UserStore;
  readonly invites: InviteStore;
  readonly devices: DeviceStore;
  readonly pushQueue: PushQueue;
  readonly deadLetters: PushDeadLetters;
  readonly webhookQueue: WebhookQueue;
  readonly webhookDeadLetters: WebhookDeadLetters;
  readonly keys: KeyDirectory;
  readonly deviceQueue: DeviceQueue;
  readonly media: MediaIndex;
  private readonly db: Database.Database;
  private readonly writer: WriterClient;
  /** The push and webhook queues, whose consumers stop with the store. */
  private readonly queues: SqliteJobQueue<unknown>[];

  constructor(
    path: string,
    options: {
      onCommit?: CommitObserver;
      commitDelayMs?: number;
      onFailure?: (reason: string) => void;
      /** How often push consumers look for jobs queued by another process (ms, default 1,000). */
      pushPollMs?: number;
    } = {},
  ) {
    this.db = openAndMigrate(path).db;
    this.db.pragma('query_only = ON');
    this.writer = new WriterClient(path, options.onCommit, options.commitDelayMs ?? 0, options.onFailure);
    const q = prepareReads(this.db);
    const writer = this.writer;

    this.messages = {
      append: async (rows: readonly StoredMessage[], effects: readonly GroupEffect[] = []) => {
        await writer.write({ op: 'messages', rows, effects });
      },
      head: async (conv: string): Promise<ConversationHead | null> => {
        const r = q.head.get(conv) as { last_seq: number; last_ts: number } | undefined;
        return r && r.last_seq > 0 ? { lastSeq: r.last_seq, lastTs: r.last_ts } : null;
      },
      findByCmid: async (conv: string, from: string, cmid: string) =>
        (q.byCmid.get(conv, from, cmid) as { seq: number; ts: number } | undefined) ?? null,
      page: async (conv: string, query: PageQuery) => page(q, conv, query),
      getMany: async (refs) =>
        refs.map((r) => {
          const row = q.message.get(r.conv, r.seq) as MessageRow | undefined;
          return row ? toMessage(row) : undefined;
        }),
      senders: async (conv: string, after: number, upto: number, max: number) =>
        (q.senders.all(conv, after, upto, max) as { sender: string }[]).map((r) => r.sender),
    };

    this.fanoutRecovery = {
      unfanned: async (): Promise<UnfannedRange[]> =>
        (q.unfanned.all() as { conv: string; fanned_seq: number; last_seq: number }[]).map((r) => ({
          conv: r.conv,
          fannedSeq: r.fanned_seq,
          lastSeq: r.last_seq,
        })),
    };

    this.inbox = {
      append: async (
        rows: readonly InboxEntry[],
        fanned: readonly FannedMark[],
        fanouts: readonly MessageFanout[] = [],
      ) => {
        await writer.write({ op: 'inbox', rows, fanned, fanouts });
      },
      head: async (user: string) => inboxHead(q, user),
      read: async (user: string, after: number, limit: number) =>
        (q.inboxRead.all(user, after, limit) as InboxRow[]).map(toInboxEntry),
      floor: async (user: string) => {
        const min = (q.inboxMin.get(user) as { n: number | null }).n;
        if (min !== null) return min;
        return inboxHead(q, user) + 1;
      },
      conversations: async (user: string, limit: number, beforeTs?: number): Promise<UserConversation[]> =>
        (
          q.userConversations.all(user, beforeTs ?? Number.MAX_SAFE_INTEGER, limit) as {
            conv: string;
            last_ts: number;
          }[]
        ).map((r) => ({ conv: r.conv, lastTs: r.last_ts })),
      lastSeqs: async (user: string, convs: readonly string[]) => {
        const out = new Map<string, number>();
        for (const conv of convs) {
          const r = q.userConversationSeq.get(user, conv) as { last_seq: number } | undefined;
          if (r && r.last_seq > 0) out.set(conv, r.last_seq);
        }
        return out;
      },
    };

    this.inboxPruning = {
      prune: async (beforeTs: number) => {
        let total = 0;
        for (;;) {
          const n = await writer.write({ op: 'prune', beforeTs, max: 5000 });
          total += n;
          if (n < 5000) return total;
        }
      },
    };

    this.conversations = {
      get: async (conv: string): Promise<ConversationMeta | null> => {
        const r = q.conversation.get(conv) as
          | {
              conv: string;
              kind: string;
              name: string | null;
              created_ts: number;
              last_seq: number;
              last_ts: number;
            }
          | undefined;
        if (!r) return null;
        const meta: ConversationMeta = {
          conv: r.conv,
          kind: r.kind === 'group' ? 'group' : 'direct',
          createdTs: r.created_ts,
          lastSeq: r.last_seq,
          lastTs: r.last_ts,
        };
        if (r.name !== null) meta.name = r.name;
        return meta;
      },
      watermarks: async (conv: string, users?: readonly string[]): Promise<Watermark[]> => {
        const rows = q.watermarks.all(conv) as Watermark[];
        if (!users) return rows;
        const wanted = new Set(users);
        return rows.filter((r) => wanted.has(r.user));
      },
      members: async (conv: string): Promise<MemberRecord[]> =>
        (
          q.members.all(conv) as {
            conv: string;
            user: string;
            role: string;
            joined_seq: number;
            removed_seq: number | null;
            removed_name: string | null;
            removed_members: number | null;
          }[]
        ).map((r) => {
          const m: MemberRecord = {
            conv: r.conv,
            user: r.user,
            role: r.role === 'admin' ? 'admin' : 'member',
            joinedSeq: r.joined_seq,
          };
          if (r.removed_seq !== null) m.removedSeq = r.removed_seq;
          if (r.removed_name !== null) m.nameAtRemoval = r.removed_name;
          if (r.removed_members !== null) m.membersAtRemoval = r.removed_members;
          return m;
        }),
      mergeWatermarks: async (rows: readonly Watermark[]) => {
        await writer.write({ op: 'watermarks', rows });
      },
    };

    this.users = {
      settings: async (user: string): Promise<UserSettings> => {
        const r = q.settings.get(user) as
          | { read_receipts: number; last_seen: string; group_add: string }
          | undefined;
        if (!r) return { ...DEFAULT_SETTINGS };
        return {
          readReceipts: r.read_receipts === 1,
          lastSeen: r.last_seen === 'nobody' ? 'nobody' : 'everyone',
          groupAdd: r.group_add === 'nobody' ? 'nobody' : 'everyone',
        };
      },
      saveSettings: async (user: string, settings: UserSettings) => {
        await writer.write({
          op: 'settings',
          user,
          readReceipts: settings.readReceipts,
          lastSeen: settings.lastSeen,
          groupAdd: settings.groupAdd,
        });
      },
      blocked: async (user: string) => (q.blocked.all(user) as { blocked: string }[]).map((r) => r.blocked),
      setBlocked: async (user: string, other: string, blocked: boolean) => {
        await writer.write({ op: 'block', user, other, blocked });
      },
      lastSeen: async (users: readonly string[]) => {
        const out = new Map<string, number>();
        for (const u of users) {
          const r = q.lastSeen.get(u) as { last_seen: number | null } | undefined;
          if (r?.last_seen != null) out.set(u, r.last_seen);
        }
        return out;
      },
      saveLastSeen: async (user: string, ts: number) => {
        await writer.write({ op: 'lastSeen', user, ts });
      },
      setMute: async (user: string, conv: string, until: number | null) => {
        await writer.write({ op: 'mute', user, conv, until });
      },
      mutes: async (user: string, convs: readonly string[]) => {
        const out = new Map<string, number>();
        for (const conv of convs) {
          const r = q.mute.get(user, conv) as { until: number } | undefined;
          if (r) out.set(conv, r.until);
        }
        return out;
      },
    };

    this.devices = {
      seen: async (user: string, device: string, ts: number) => {
        await writer.write({ op: 'deviceSeen', user, device, ts, max: MAX_DEVICES_PER_USER });
      },
      list: async (user: string): Promise<DeviceRecord[]> =>
        (q.devices.all(user) as { device: string; last_seen: number; push_json: string | null }[]).map(
          (r) => {
            const d: DeviceRecord = { device: r.device, lastSeen: r.last_seen };
            if (r.push_json !== null) d.push = JSON.parse(r.push_json) as PushRegistration;
            return d;
          },
        ),
      setPush: async (user: string, device: string, registration: PushRegistration | null) => {
        const push = registration === null ? null : registrationJson(registration);
        await writer.write({ op: 'devicePush', user, device, push });
      },
      dropPush: async (user: string, device: string, registration: PushRegistration) => {
        await writer.write({ op: 'deviceDropPush', user, device, push: registrationJson(registration) });
      },
      pushRegistrations: async (users: readonly string[]) => {
        const out = new Map<string, Map<string, PushRegistration>>();
        for (const user of new Set(users)) {
          const rows = q.pushRegistrations.all(user) as { device: string; push_json: string }[];
          if (rows.length === 0) continue;
          out.set(user, new Map(rows.map((r) => [r.device, JSON.parse(r.push_json) as PushRegistration])));
        }
        return out;
      },
      revoke: async (user: string, device: string, ts: number) => {
        const pruneBefore = ts - REVOCATION_RETENTION_MS;
        return (await writer.write({ op: 'deviceRevoke', user, device, ts, pruneBefore })) > 0;
      },
      revokedAt: async (user: string, device: string) =>
        (q.revokedAt.get(user, device) as { revoked_ts: number } | undefined)?.revoked_ts,
    };

    const pollMs = options.pushPollMs ?? 1_000;
    const pushQueue = new SqliteJobQueue<PushJob>(
      {
        take: (busy, limit) =>
          (q.pushTake.all(busy, limit) as PushJobRow[]).map((r) => ({
            id: r.id,
            key: r.user,
            job: toPushJob(r),
          })),
        enqueue: (jobs) => ({ op: 'pushEnqueue', jobs }),
        done: (ids) => ({ op: 'pushDone', ids }),
      },
      writer,
      pollMs,
    );
    const webhookQueue = new SqliteJobQueue<WebhookDelivery>(
      {
        take: (busy, limit) =>
          (q.webhookTake.all(busy, limit) as { id: number; key: string; delivery_json: string }[]).map(
            (r) => ({
              id: r.id,
              key: r.key,
              job: JSON.parse(r.delivery_json) as WebhookDelivery,
            }),
          ),
        enqueue: (deliveries) => ({ op: 'webhookEnqueue', deliveries }),
        done: (ids) => ({ op: 'webhookDone', ids }),
      },
      writer,
      pollMs,
    );
    this.pushQueue = pushQueue;
    this.webhookQueue = webhookQueue;
    this.queues = [pushQueue as SqliteJobQueue<unknown>, webhookQueue as SqliteJobQueue<unknown>];
    this.webhookDeadLetters = webhookDeadLetters(q, writer);

    this.deadLetters = {
      add: async (letters: readonly DeadLetter[]) => {
        if (letters.length > 0) await writer.write({ op: 'deadLetterAdd', letters });
      },
      list: async (limit: number, after?: string) =>
        (q.deadLetters.all(after ?? '', limit) as DeadLetterRow[]).map(toDeadLetter),
      get: async (id: string) => {
        const r = q.deadLetter.get(id) as DeadLetterRow | undefined;
        return r ? toDeadLetter(r) : null;
      },
      remove: async (ids: readonly string[]) =>
        ids.length === 0 ? 0 : await writer.write({ op: 'deadLetterRemove', ids }),
    };

    this.keys = keyDirectory(q, writer);
    this.deviceQueue = deviceQueue(q, writer);
    this.media = mediaIndex(q, writer);

    const invite = (id: string): Invite | null => {
      const r = q.invite.get(id) as InviteRow | undefined;
      return r ? toInvite(r) : null;
    };
    this.invites = {
      create: async (i: Invite) => {
        await writer.write({ op: 'inviteCreate', invite: i });
      },
      get: async (id: string) => invite(id),
      take: async (id: string, now: number) => {
        // The writer answers the uses after this take (0: not taken); the row may have moved on since.
        const uses = await writer.write({ op: 'inviteTake', id, now });
        const i = uses > 0 ? invite(id) : null;
        return i ? { ...i, uses } : null;
      },
      release: async (id: string) => {
        await writer.write({ op: 'inviteRelease', id });
      },
      revoke: async (id: string) => {
        await writer.write({ op: 'inviteRevoke', id });
      },
    };
  }

  /** False once a commit failed (the writer fails closed). */
  get healthy(): boolean {
    return this.writer.healthy;
  }

  /** Writes queued or in flight. */
  get pendingWrites(): number {
    return this.writer.pending;
  }

  /**
   * Stops the push consumers (without waiting for their handlers: the jobs of batches in flight
   * stay queued, for the next store on the file), commits what is queued, then closes the writer
   * thread and the read connection.
   */
  async close(): Promise<void> {
    for (const queue of this.queues) queue.abandon();
    await this.writer.close();
    this.db.close();
  }
}

function prepareReads(db: Database.Database) {
  const cols = 'conv, seq, ts, sender, device, cmid, kind, body, reply_to, media';
  return {
    head: db.prepare('SELECT last_seq, last_ts FROM conversations WHERE conv = ?'),
    conversation: db.prepare(
      'SELECT conv, kind, name, created_ts, last_seq, last_ts FROM conversations WHERE conv = ?',
    ),
    byCmid: db.prepare('SELECT seq, ts FROM messages WHERE conv = ? AND sender = ? AND cmid = ?'),
    message: db.prepare(`SELECT ${cols} FROM messages WHERE conv = ? AND seq = ?`),
    pageAfter: db.prepare(
      `SELECT ${cols} FROM messages WHERE conv = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?`,
    ),
    pageBefore: db.prepare(
      `SELECT ${cols} FROM messages WHERE conv = ? AND seq < ? AND seq >= ? ORDER BY seq DESC LIMIT ?`,
    ),
    senders: db.prepare(
      "SELECT DISTINCT sender FROM messages WHERE conv = ? AND seq > ? AND seq <= ? AND kind <> 'system' LIMIT ?",
    ),
    unfanned: db.prepare('SELECT conv, fanned_seq, last_seq FROM conversations WHERE fanned_seq < last_seq'),
    inboxMax: db.prepare('SELECT max(n) AS n FROM inbox WHERE user = ?'),
    prunedUpto: db.prepare('SELECT pruned_upto FROM users WHERE user = ?'),
    inboxRead: db.prepare(
      'SELECT user, n, ts, type, conv, seq, actor, kind FROM inbox WHERE user = ? AND n > ? ORDER BY n LIMIT ?',
    ),
    inboxMin: db.prepare('SELECT min(n) AS n FROM inbox WHERE user = ?'),
    userConversations: db.prepare(
      'SELECT conv, last_ts FROM user_conversations WHERE user = ? AND last_ts < ? ORDER BY last_ts DESC LIMIT ?',
    ),
    userConversationSeq: db.prepare('SELECT last_seq FROM user_conversations WHERE user = ? AND conv = ?'),
    watermarks: db.prepare('SELECT conv, user, delivered, read FROM receipts WHERE conv = ? ORDER BY user'),
    members: db.prepare(
      `SELECT conv, user, role, joined_seq, removed_seq, removed_name, removed_members FROM members
       WHERE conv = ? ORDER BY joined_seq, user`,
    ),
    settings: db.prepare('SELECT read_receipts, last_seen, group_add FROM settings WHERE user = ?'),
    invite: db.prepare(
      `SELECT id, conv, creator, creator_joined_seq, created_ts, expires_ts, max_uses, uses
       FROM invites WHERE id = ?`,
    ),
    blocked: db.prepare('SELECT blocked FROM blocks WHERE user = ? ORDER BY blocked'),
    lastSeen: db.prepare('SELECT last_seen FROM users WHERE user = ?'),
    mute: db.prepare('SELECT until FROM mutes WHERE user = ? AND conv = ?'),
    devices: db.prepare(
      'SELECT device, last_seen, push_json FROM devices WHERE user = ? ORDER BY last_seen DESC, device',
    ),
    pushRegistrations: db.prepare(
      'SELECT device, push_json FROM devices WHERE user = ? AND push_json IS NOT NULL ORDER BY device',
    ),
    revokedAt: db.prepare('SELECT revoked_ts FROM device_revocations WHERE user = ? AND device = ?'),
    pushTake: db.prepare(
      `SELECT id, user, device, conv, seq, sender, kind, inbox, ts FROM push_jobs
       WHERE user NOT IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?`,
    ),
    webhookTake: db.prepare(
      `SELECT id, key, delivery_json FROM webhook_jobs
       WHERE key NOT IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?`,
    ),
    webhookLetters: db.prepare(
      'SELECT letter_json FROM webhook_dead_letters WHERE id > ? ORDER BY id LIMIT ?',
    ),
    webhookLetter: db.prepare('SELECT letter_json FROM webhook_dead_letters WHERE id = ?'),
    deadLetters: db.prepare(
      'SELECT id, job_json, platform, reason, attempts, ts FROM push_dead_letters WHERE id > ? ORDER BY id LIMIT ?',
    ),
    deadLetter: db.prepare(
      'SELECT id, job_json, platform, reason, attempts, ts FROM push_dead_letters WHERE id = ?',
    ),
    prekeyCount: db.prepare('SELECT count(*) AS n FROM one_time_prekeys WHERE user = ? AND device = ?'),
    keyDevices: db.prepare(
      'SELECT device FROM device_keys WHERE user = ? AND identity_key IS NOT NULL ORDER BY device',
    ),
    deviceMessages: db.prepare(
      `SELECT qid, sender, sender_device, body, ts FROM device_messages
       WHERE user = ? AND device = ? AND qid > ? ORDER BY qid LIMIT ?`,
    ),
    media: db.prepare(
      'SELECT id, owner, size, content_type, created_ts, last_referenced_ts FROM media WHERE id = ?',
    ),
    mediaConversations: db.prepare('SELECT conv FROM media_conversations WHERE id = ?'),
    mediaUnreferenced: db.prepare(
      `SELECT id, owner, size, content_type, created_ts, last_referenced_ts FROM media
       WHERE last_referenced_ts IS NULL AND created_ts < ? ORDER BY created_ts LIMIT ?`,
    ),
    mediaStale: db.prepare(
      `SELECT id, owner, size, content_type, created_ts, last_referenced_ts FROM media
       WHERE last_referenced_ts IS NOT NULL AND last_referenced_ts < ? ORDER BY last_referenced_ts LIMIT ?`,
    ),
  };
}

type Reads = ReturnType<typeof prepareReads>;

/**
 * The key directory: reads on this thread; uploads, claims and removals through the writer, a
 * claim picking and deleting its one-time prekeys in one transaction.
 */
function keyDirectory(q: Reads, writer: WriterClient): KeyDirectory {
  return {
    upload: (user, device, keys) =>
      writer.writeAndRead<number>({ op: 'keysUpload', user, device, keys, max: MAX_ONE_TIME_PREKEYS }),
    claim: (user) => writer.writeAndRead<ClaimedBundle[]>({ op: 'keysClaim', user }),
    count: async (user, device) => (q.prekeyCount.get(user, device) as { n: number }).n,
    devicesWithKeys: async (user) =>
      new Set((q.keyDevices.all(user) as { device: string }[]).map((r) => r.device)),
    remove: async (user, device) => {
      await writer.write({ op: 'keysRemove', user, device });
    },
  };
}

/** The `to_device` queues; each enqueue also prunes messages past the retention. */
function deviceQueue(q: Reads, writer: WriterClient): DeviceQueue {
  return {
    enqueue: (user, device, message, max) =>
      writer.writeAndRead<number | null>({
        op: 'deviceEnqueue',
        user,
        device,
        message: { from: message.from, fromDevice: message.fromDevice, body: message.body, ts: message.ts },
        max,
        pruneBefore: message.ts - DEVICE_QUEUE_RETENTION_MS,
      }),
    list: async (user, device, after, limit) =>
      (
        q.deviceMessages.all(user, device, after, limit) as {
          qid: number;
          sender: string;
          sender_device: string;
          body: string;
          ts: number;
        }[]
      ).map(
        (r): DeviceMessage => ({
          qid: r.qid,
          from: r.sender,
          fromDevice: r.sender_device,
          body: r.body,
          ts: r.ts,
        }),
      ),
    ack: async (user, device, upto) => {
      await writer.write({ op: 'deviceAck', user, device, upto });
    },
    remove: async (user, device) => {
      await writer.write({ op: 'deviceQueueRemove', user, device });
    },
  };
}

interface MediaRow {
  id: string;
  owner: string;
  size: number;
  content_type: string;
  created_ts: number;
  last_referenced_ts: number | null;
}

function toMediaRecord(r: MediaRow): MediaRecord {
  const m: MediaRecord = {
    id: r.id,
    owner: r.owner,
    size: r.size,
    contentType: r.content_type,
    createdAt: r.created_ts,
  };
  if (r.last_referenced_ts !== null) m.lastReferencedAt = r.last_referenced_ts;
  return m;
}

/** The media index; `collectable` reads the two partial indexes, never listed ones first. */
function mediaIndex(q: Reads, writer: WriterClient): MediaIndex {
  return {
    create: async (record) => {
      await writer.write({ op: 'mediaCreate', record });
    },
    get: async (id) => {
      const r = q.media.get(id) as MediaRow | undefined;
      return r ? toMediaRecord(r) : null;
    },
    reference: async (id, conv, ts) => {
      await writer.write({ op: 'mediaReference', id, conv, ts, max: MAX_MEDIA_REFERENCES });
    },
    conversations: async (id) => (q.mediaConversations.all(id) as { conv: string }[]).map((r) => r.conv),
    collectable: async (unreferencedBefore, referencedBefore, limit) => {
      const unreferenced = q.mediaUnreferenced.all(unreferencedBefore, limit) as MediaRow[];
      const stale = q.mediaStale.all(referencedBefore, limit - unreferenced.length) as MediaRow[];
      return [...unreferenced, ...stale].map(toMediaRecord);
    },
    delete: async (id) => {
      await writer.write({ op: 'mediaDelete', id });
    },
  };
}

interface InviteRow {
  id: string;
  conv: string;
  creator: string;
  creator_joined_seq: number;
  created_ts: number;
  expires_ts: number;
  max_uses: number | null;
  uses: number;
}

function toInvite(r: InviteRow): Invite {
  const i: Invite = {
    id: r.id,
    conv: r.conv,
    creator: r.creator,
    creatorJoinedSeq: r.creator_joined_seq,
    createdTs: r.created_ts,
    expiresTs: r.expires_ts,
    uses: r.uses,
  };
  if (r.max_uses !== null) i.maxUses = r.max_uses;
  return i;
}

/** The highest inbox number ever stored for `user`: the newest entry, or the highest one pruned. */
function inboxHead(q: ReturnType<typeof prepareReads>, user: string): number {
  const max = (q.inboxMax.get(user) as { n: number | null }).n ?? 0;
  const pruned = (q.prunedUpto.get(user) as { pruned_upto: number } | undefined)?.pruned_upto ?? 0;
  return Math.max(max, pruned);
}

function page(q: ReturnType<typeof prepareReads>, conv: string, query: PageQuery): StoredMessage[] {
  const floor = query.floor ?? 1;
  if (query.after !== undefined) {
    const after = Math.max(query.after, floor - 1);
    const before = query.before ?? Number.MAX_SAFE_INTEGER;
    return (q.pageAfter.all(conv, after, before, query.limit) as MessageRow[]).map(toMessage);
  }
  const before = query.before ?? Number.MAX_SAFE_INTEGER;
  const rows = q.pageBefore.all(conv, before, floor, query.limit) as MessageRow[];
  rows.reverse();
  return rows.map(toMessage);
}
