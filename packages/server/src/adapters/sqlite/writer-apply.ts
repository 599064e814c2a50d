import type Database from 'better-sqlite3';
import type { GroupEffect, Watermark } from '../../ports/conversation-store.js';
import type { FannedMark, InboxEntry, MessageFanout } from '../../ports/inbox-store.js';
import type { StoredMessage } from '../../ports/message-store.js';
import type { DeadLetter, PushJob } from '../../ports/push-queue.js';
import type { OpAnswer, WriteOp } from './write-ops.js';
import {
  claimKeys,
  type KeyStatements,
  prepareKeyStatements,
  removeKeys,
  uploadKeys,
} from './writer-apply-keys.js';
import {
  createMedia,
  deleteMedia,
  type MediaStatements,
  prepareMediaStatements,
  referenceMedia,
} from './writer-apply-media.js';
import { enqueueDeviceMessage, prepareQueueStatements, type QueueStatements } from './writer-apply-queue.js';
import {
  addWebhookLetters,
  deleteWebhooks,
  enqueueWebhooks,
  prepareWebhookStatements,
  removeWebhookLetters,
  type WebhookStatements,
} from './writer-apply-webhooks.js';

/** How long a dead letter is kept (as in Cassandra, whose rows carry this TTL). */
export const DEAD_LETTER_RETENTION_MS = 30 * 24 * 3600 * 1000;

type Statement = Database.Statement<unknown[]>;

/** The writer thread's prepared statements (those of keys, queues, media and webhooks in files of their own). */
export type WriteStatements = CoreStatements &
  KeyStatements &
  QueueStatements &
  MediaStatements &
  WebhookStatements;

type CoreStatements = Record<
  | 'insertMessage'
  | 'upsertConversationHead'
  | 'insertInbox'
  | 'touchUserConversation'
  | 'markFanned'
  | 'mergeWatermark'
  | 'prunedUptoOf'
  | 'pruneCandidates'
  | 'deleteInbox'
  | 'prunedUpto'
  | 'groupMeta'
  | 'rename'
  | 'join'
  | 'remove'
  | 'role'
  | 'saveSettings'
  | 'block'
  | 'unblock'
  | 'lastSeen'
  | 'inviteCreate'
  | 'invitePrune'
  | 'inviteTake'
  | 'inviteRelease'
  | 'inviteRevoke'
  | 'mute'
  | 'unmute'
  | 'deviceSeen'
  | 'deviceCount'
  | 'deviceEvict'
  | 'devicePush'
  | 'deviceDropPush'
  | 'deviceDelete'
  | 'deviceRevoke'
  | 'revocationsPrune'
  | 'pushJobByKey'
  | 'pushJobInsert'
  | 'pushJobDelete'
  | 'deadLetterAdd'
  | 'deadLetterRemove'
  | 'deadLetterPrune',
  Statement
>;

export function prepareWriteStatements(db: Database.Database): WriteStatements {
  return {
    ...prepareCoreStatements(db),
    ...prepareKeyStatements(db),
    ...prepareQueueStatements(db),
    ...prepareWebhookStatements(db),
    ...prepareMediaStatements(db),
  };
}

function prepareCoreStatements(db: Database.Database): CoreStatements {
  return {
    insertMessage: db.prepare(
      `INSERT INTO messages (conv, seq, ts, sender, device, cmid, kind, body, reply_to, media)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (conv, seq) DO NOTHING`,
    ),
    upsertConversationHead: db.prepare(
      `INSERT INTO conversations (conv, kind, created_ts, last_seq, last_ts) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (conv) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq),
       last_ts = max(last_ts, excluded.last_ts)`,
    ),
    // Numbers at or below the stored head were written before (a retried append): they are not
    // written again, so a pruned entry never comes back below the floor.
    insertInbox: db.prepare(
      `INSERT INTO inbox (user, n, ts, type, conv, seq, actor, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (user, n) DO NOTHING`,
    ),
    touchUserConversation: db.prepare(
      `INSERT INTO user_conversations (user, conv, last_ts, last_seq) VALUES (?, ?, ?, ?)
       ON CONFLICT (user, conv) DO UPDATE SET last_ts = max(last_ts, excluded.last_ts),
       last_seq = max(last_seq, excluded.last_seq)`,
    ),
    markFanned: db.prepare('UPDATE conversations SET fanned_seq = max(fanned_seq, ?) WHERE conv = ?'),
    mergeWatermark: db.prepare(
      `INSERT INTO receipts (conv, user, delivered, read) VALUES (?, ?, ?, ?)
       ON CONFLICT (conv, user) DO UPDATE SET delivered = max(delivered, excluded.delivered),
       read = max(read, excluded.read)`,
    ),
    groupMeta: db.prepare("UPDATE conversations SET kind = 'group', name = ?, created_ts = ? WHERE conv = ?"),
    rename: db.prepare('UPDATE conversations SET name = ? WHERE conv = ?'),
    join: db.prepare(
      `INSERT INTO members (conv, user, role, joined_seq, removed_seq) VALUES (?, ?, ?, ?, NULL)
       ON CONFLICT (conv, user) DO UPDATE SET role = excluded.role, joined_seq = excluded.joined_seq,
       removed_seq = NULL, removed_name = NULL, removed_members = NULL`,
    ),
    remove: db.prepare(
      'UPDATE members SET removed_seq = ?, removed_name = ?, removed_members = ? WHERE conv = ? AND user = ?',
    ),
    role: db.prepare('UPDATE members SET role = ? WHERE conv = ? AND user = ?'),
    saveSettings: db.prepare(
      `INSERT INTO settings (user, read_receipts, last_seen, group_add) VALUES (?, ?, ?, ?)
       ON CONFLICT (user) DO UPDATE SET read_receipts = excluded.read_receipts, last_seen = excluded.last_seen,
       group_add = excluded.group_add`,
    ),
    inviteCreate: db.prepare(
      `INSERT INTO invites (id, conv, creator, creator_joined_seq, created_ts, expires_ts, max_uses, uses)
       VALUES (?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO NOTHING`,
    ),
    invitePrune: db.prepare(
      'DELETE FROM invites WHERE id IN (SELECT id FROM invites WHERE expires_ts <= ? ORDER BY expires_ts LIMIT 100)',
    ),
    inviteTake: db.prepare(
      `UPDATE invites SET uses = uses + 1
       WHERE id = ? AND expires_ts > ? AND (max_uses IS NULL OR uses < max_uses) RETURNING uses`,
    ),
    inviteRelease: db.prepare('UPDATE invites SET uses = uses - 1 WHERE id = ? AND uses > 0'),
    inviteRevoke: db.prepare('DELETE FROM invites WHERE id = ?'),
    block: db.prepare('INSERT INTO blocks (user, blocked) VALUES (?, ?) ON CONFLICT DO NOTHING'),
    unblock: db.prepare('DELETE FROM blocks WHERE user = ? AND blocked = ?'),
    lastSeen: db.prepare(
      `INSERT INTO users (user, last_seen) VALUES (?, ?)
       ON CONFLICT (user) DO UPDATE SET last_seen = excluded.last_seen`,
    ),
    prunedUptoOf: db.prepare('SELECT pruned_upto FROM users WHERE user = ?'),
    pruneCandidates: db.prepare('SELECT user, n FROM inbox WHERE ts < ? ORDER BY ts LIMIT ?'),
    deleteInbox: db.prepare('DELETE FROM inbox WHERE user = ? AND n = ?'),
    prunedUpto: db.prepare(
      `INSERT INTO users (user, pruned_upto) VALUES (?, ?)
       ON CONFLICT (user) DO UPDATE SET pruned_upto = max(pruned_upto, excluded.pruned_upto)`,
    ),
    mute: db.prepare(
      `INSERT INTO mutes (user, conv, until) VALUES (?, ?, ?)
       ON CONFLICT (user, conv) DO UPDATE SET until = excluded.until`,
    ),
    unmute: db.prepare('DELETE FROM mutes WHERE user = ? AND conv = ?'),
    // Connect and disconnect times may arrive out of order: last seen only moves forward.
    deviceSeen: db.prepare(
      `INSERT INTO devices (user, device, last_seen) VALUES (?, ?, ?)
       ON CONFLICT (user, device) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`,
    ),
    deviceCount: db.prepare('SELECT count(*) AS n FROM devices WHERE user = ?'),
    deviceEvict: db.prepare(
      `DELETE FROM devices WHERE user = ? AND device = (
         SELECT device FROM devices WHERE user = ? AND device <> ? ORDER BY last_seen, device LIMIT 1)`,
    ),
    devicePush: db.prepare('UPDATE devices SET push_json = ? WHERE user = ? AND device = ?'),
    deviceDropPush: db.prepare(
      'UPDATE devices SET push_json = NULL WHERE user = ? AND device = ? AND push_json = ?',
    ),
    deviceDelete: db.prepare('DELETE FROM devices WHERE user = ? AND device = ?'),
    deviceRevoke: db.prepare(
      `INSERT INTO device_revocations (user, device, revoked_ts) VALUES (?, ?, ?)
       ON CONFLICT (user, device) DO UPDATE SET revoked_ts = max(revoked_ts, excluded.revoked_ts)`,
    ),
    revocationsPrune: db.prepare(
      `DELETE FROM device_revocations WHERE (user, device) IN (
         SELECT user, device FROM device_revocations WHERE revoked_ts < ? ORDER BY revoked_ts LIMIT 100)`,
    ),
    pushJobByKey: db.prepare('SELECT id, inbox FROM push_jobs WHERE user = ? AND device = ? AND conv = ?'),
    pushJobInsert: db.prepare(
      `INSERT INTO push_jobs (user, device, conv, seq, sender, kind, inbox, ts)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    pushJobDelete: db.prepare('DELETE FROM push_jobs WHERE id = ?'),
    deadLetterAdd: db.prepare(
      `INSERT INTO push_dead_letters (id, job_json, platform, reason, attempts, ts) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET job_json = excluded.job_json, platform = excluded.platform,
       reason = excluded.reason, attempts = excluded.attempts, ts = excluded.ts`,
    ),
    deadLetterRemove: db.prepare('DELETE FROM push_dead_letters WHERE id = ?'),
    deadLetterPrune: db.prepare(
      'DELETE FROM push_dead_letters WHERE id IN (SELECT id FROM push_dead_letters WHERE ts < ? ORDER BY ts LIMIT 1000)',
    ),
  };
}

/** Applies a batch's operations (inside the caller's transaction); returns an answer per op. */
export function applyOps(s: WriteStatements, ops: readonly WriteOp[]): OpAnswer[] {
  return ops.map((op) => applyOp(s, op));
}

function applyOp(s: WriteStatements, op: WriteOp): OpAnswer {
  switch (op.op) {
    case 'messages':
      writeMessages(s, op.rows, op.effects);
      return op.rows.length;
    case 'inbox':
      return writeInbox(s, op.rows, op.fanned, op.fanouts ?? []);
    case 'watermarks':
      writeWatermarks(s, op.rows);
      return op.rows.length;
    case 'prune':
      return prune(s, op.beforeTs, op.max);
    case 'settings':
      s.saveSettings.run(op.user, op.readReceipts ? 1 : 0, op.lastSeen, op.groupAdd);
      return 1;
    case 'inviteCreate': {
      const i = op.invite;
      s.invitePrune.run(i.createdTs);
      s.inviteCreate.run(
        i.id,
        i.conv,
        i.creator,
        i.creatorJoinedSeq,
        i.createdTs,
        i.expiresTs,
        i.maxUses ?? null,
      );
      return 1;
    }
    case 'inviteTake':
      // The uses after this take (>= 1), or 0 when nothing was taken.
      return (s.inviteTake.get(op.id, op.now) as { uses: number } | undefined)?.uses ?? 0;
    case 'inviteRelease':
      return s.inviteRelease.run(op.id).changes;
    case 'inviteRevoke':
      return s.inviteRevoke.run(op.id).changes;
    case 'block':
      (op.blocked ? s.block : s.unblock).run(op.user, op.other);
      return 1;
    case 'lastSeen':
      s.lastSeen.run(op.user, op.ts);
      return 1;
    case 'mute':
      if (op.until === null) s.unmute.run(op.user, op.conv);
      else s.mute.run(op.user, op.conv, op.until);
      return 1;
    case 'deviceSeen':
      return deviceSeen(s, op.user, op.device, op.ts, op.max);
    case 'devicePush':
      return s.devicePush.run(op.push, op.user, op.device).changes;
    case 'deviceDropPush':
      return s.deviceDropPush.run(op.user, op.device, op.push).changes;
    case 'deviceRevoke': {
      const known = s.deviceDelete.run(op.user, op.device).changes;
      s.deviceRevoke.run(op.user, op.device, op.ts);
      s.revocationsPrune.run(op.pruneBefore);
      return known;
    }
    case 'pushEnqueue':
      return enqueuePush(s, op.jobs);
    case 'pushDone': {
      let n = 0;
      for (const id of op.ids) n += s.pushJobDelete.run(id).changes;
      return n;
    }
    case 'deadLetterAdd': {
      for (const l of op.letters) addDeadLetter(s, l);
      const newest = Math.max(...op.letters.map((l) => l.ts));
      if (op.letters.length > 0) s.deadLetterPrune.run(newest - DEAD_LETTER_RETENTION_MS);
      return op.letters.length;
    }
    case 'deadLetterRemove': {
      let n = 0;
      for (const id of new Set(op.ids)) n += s.deadLetterRemove.run(id).changes;
      return n;
    }
    default:
      return applyOpOfItsOwnFile(s, op);
  }
}

type OpOfItsOwnFile = Extract<
  WriteOp,
  {
    op:
      | 'keysUpload'
      | 'keysClaim'
      | 'keysRemove'
      | 'deviceEnqueue'
      | 'deviceAck'
      | 'deviceQueueRemove'
      | 'mediaCreate'
      | 'mediaReference'
      | 'mediaDelete'
      | 'webhookEnqueue'
      | 'webhookDone'
      | 'webhookLetterAdd'
      | 'webhookLetterRemove';
  }
>;

function applyOpOfItsOwnFile(s: WriteStatements, op: OpOfItsOwnFile): OpAnswer {
  switch (op.op) {
    case 'keysUpload':
      return uploadKeys(s, op.user, op.device, op.keys, op.max);
    case 'keysClaim':
      return claimKeys(s, op.user);
    case 'keysRemove':
      return removeKeys(s, op.user, op.device);
    case 'deviceEnqueue':
      return enqueueDeviceMessage(s, op.user, op.device, op.message, op.max, op.pruneBefore);
    case 'deviceAck':
      return s.queueAck.run(op.user, op.device, op.upto).changes;
    case 'deviceQueueRemove':
      return s.queueRemove.run(op.user, op.device).changes;
    case 'mediaCreate':
      return createMedia(s, op.record);
    case 'mediaReference':
      return referenceMedia(s, op.id, op.conv, op.ts, op.max);
    case 'mediaDelete':
      return deleteMedia(s, op.id);
    case 'webhookEnqueue':
      return enqueueWebhooks(s, op.deliveries);
    case 'webhookDone':
      return deleteWebhooks(s, op.ids);
    case 'webhookLetterAdd':
      return addWebhookLetters(s, op.letters);
    case 'webhookLetterRemove':
      return removeWebhookLetters(s, op.ids);
  }
}

/**
 * Records the device as seen (creating it), and drops the user's least recently seen other
 * devices past `max`. A revocation stays: it keeps refusing the tokens issued before it.
 */
function deviceSeen(s: WriteStatements, user: string, device: string, ts: number, max: number): number {
  s.deviceSeen.run(user, device, ts);
  const count = (s.deviceCount.get(user) as { n: number }).n;
  for (let extra = count - max; extra > 0; extra--) s.deviceEvict.run(user, user, device);
  return 1;
}

/**
 * Queues jobs, one row per (user, device, conv): a job for a key already queued replaces that row
 * when it is the later message (a higher inbox number), under a new id, so it takes the later
 * message's place in the queue; an older or equal one is dropped (the queued job stands for it).
 * A row that was handed out and is replaced here is not deleted when its batch is done, since
 * that deletes by id: the replacement is handed out in turn.
 */
function enqueuePush(s: WriteStatements, jobs: readonly PushJob[]): number {
  let queued = 0;
  for (const j of jobs) {
    const old = s.pushJobByKey.get(j.user, j.device, j.conv) as { id: number; inbox: number } | undefined;
    if (old && old.inbox >= j.inbox) continue;
    if (old) s.pushJobDelete.run(old.id);
    s.pushJobInsert.run(j.user, j.device, j.conv, j.seq, j.from, j.kind, j.inbox, j.ts);
    queued++;
  }
  return queued;
}

function addDeadLetter(s: WriteStatements, l: DeadLetter): void {
  const j = l.job;
  const job: PushJob = {
    user: j.user,
    device: j.device,
    conv: j.conv,
    seq: j.seq,
    from: j.from,
    kind: j.kind,
    inbox: j.inbox,
    ts: j.ts,
  };
  s.deadLetterAdd.run(l.id, JSON.stringify(job), l.platform, l.reason, l.attempts, l.ts);
}

/**
 * Stores messages and applies the group effects of those newly stored: a retried batch (its
 * messages already there) changes nothing, not even membership changed since.
 */
function writeMessages(
  s: WriteStatements,
  rows: readonly StoredMessage[],
  effects: readonly GroupEffect[],
): void {
  const heads = new Map<string, StoredMessage>();
  const firstTs = new Map<string, number>();
  const inserted = new Set<string>();
  for (const m of rows) {
    const changes = s.insertMessage.run(
      m.conv,
      m.seq,
      m.ts,
      m.from,
      m.from_device,
      m.cmid,
      m.kind,
      m.body,
      m.reply_to ?? null,
      m.media ? JSON.stringify(m.media) : null,
    ).changes;
    if (changes > 0 && effects.length > 0) inserted.add(`${m.seq}\u0000${m.conv}`);
    const head = heads.get(m.conv);
    if (!head || head.seq < m.seq) heads.set(m.conv, m);
    firstTs.set(m.conv, Math.min(firstTs.get(m.conv) ?? m.ts, m.ts));
  }
  for (const m of heads.values()) {
    const kind = m.conv.startsWith('dm:') ? 'direct' : 'group';
    // created_ts only counts when this batch creates the row: the earliest message's ts.
    s.upsertConversationHead.run(m.conv, kind, firstTs.get(m.conv)!, m.seq, m.ts);
  }
  for (const e of effects) if (inserted.has(`${e.seq}\u0000${e.conv}`)) applyEffect(s, e);
}

function applyEffect(s: WriteStatements, e: GroupEffect): void {
  switch (e.type) {
    case 'create':
      s.groupMeta.run(e.name, e.createdTs, e.conv);
      for (const m of e.members) s.join.run(e.conv, m.user, m.role, e.seq);
      return;
    case 'join':
      for (const u of e.users) s.join.run(e.conv, u, 'member', e.seq);
      return;
    case 'remove':
      for (const u of e.users) s.remove.run(e.seq, e.name ?? null, e.members ?? null, e.conv, u);
      return;
    case 'role':
      s.role.run(e.role, e.conv, e.user);
      return;
    case 'rename':
      s.rename.run(e.name, e.conv);
      return;
  }
}

function writeInbox(
  s: WriteStatements,
  rows: readonly InboxEntry[],
  fanned: readonly FannedMark[],
  fanouts: readonly MessageFanout[],
): number {
  // One chat-list update per (user, conversation) per batch, with the latest activity.
  const touched = new Map<string, { user: string; conv: string; ts: number; seq: number }>();
  // Numbers at or below a user's pruned mark were stored and pruned already: never again.
  const pruned = new Map<string, number>();
  const prunedMark = (user: string): number => {
    let mark = pruned.get(user);
    if (mark === undefined) {
      mark = (s.prunedUptoOf.get(user) as { pruned_upto: number } | undefined)?.pruned_upto ?? 0;
      pruned.set(user, mark);
    }
    return mark;
  };
  const touch = (user: string, conv: string, ts: number, seq: number) => {
    const key = `${user}\u0000${conv}`;
    const prev = touched.get(key);
    if (!prev) touched.set(key, { user, conv, ts, seq });
    else {
      prev.ts = Math.max(prev.ts, ts);
      prev.seq = Math.max(prev.seq, seq);
    }
  };
  for (const e of rows) {
    if (e.inbox <= prunedMark(e.user)) continue;
    const receipt = e.type === 'receipt';
    const inserted = s.insertInbox.run(
      e.user,
      e.inbox,
      e.ts,
      e.type,
      e.conv,
      e.seq,
      receipt ? e.actor : null,
      receipt ? e.kind : null,
    ).changes;
    // A re-appended (user, inbox) is a no-op, for the chat list too.
    if (e.type === 'message' && inserted > 0) touch(e.user, e.conv, e.ts, e.seq);
  }
  let count = rows.length;
  for (const f of fanouts) {
    for (let i = 0; i < f.users.length; i++) {
      const user = f.users[i]!;
      const n = f.inboxes[i]!;
      if (n <= prunedMark(user)) continue;
      if (s.insertInbox.run(user, n, f.ts, 'message', f.conv, f.seq, null, null).changes > 0)
        touch(user, f.conv, f.ts, f.seq);
    }
    count += f.users.length;
  }
  for (const t of touched.values()) s.touchUserConversation.run(t.user, t.conv, t.ts, t.seq);
  for (const f of fanned) s.markFanned.run(f.seq, f.conv);
  return count;
}

/**
 * Deletes up to `max` entries older than `beforeTs`, remembering per user the highest number
 * deleted, so the inbox head (and the numbering) survives a user's inbox emptying.
 */
function prune(s: WriteStatements, beforeTs: number, max: number): number {
  const rows = s.pruneCandidates.all(beforeTs, max) as { user: string; n: number }[];
  const upto = new Map<string, number>();
  for (const r of rows) {
    s.deleteInbox.run(r.user, r.n);
    if ((upto.get(r.user) ?? 0) < r.n) upto.set(r.user, r.n);
  }
  for (const [user, n] of upto) s.prunedUpto.run(user, n);
  return rows.length;
}

function writeWatermarks(s: WriteStatements, rows: readonly Watermark[]): void {
  for (const w of rows) s.mergeWatermark.run(w.conv, w.user, w.delivered, w.read);
}
