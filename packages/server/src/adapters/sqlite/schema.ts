import type Database from 'better-sqlite3';

/**
 * Schema migrations of the embedded store, applied in order and recorded in `schema_migrations`.
 * Append new steps; never edit a step that has shipped. The tables mirror the storage model of
 * docs/architecture.md (Cassandra terms), with SQLite keys in place of partitions.
 */
// Layout, measured on the append-heavy load (docs/architecture.md, "Embedded store"):
// - `messages` is a rowid table: new rows land at the end of the table, and only the small index
//   entries go to random places. Clustering the whole row by (conv, seq) dirtied a page per
//   conversation per commit; the rowid layout halved the cost of a durable message.
// - `inbox` rows are small, so they are clustered by (user, n): one B-tree insert per entry, and
//   a user's entries share pages, which a batch of group messages touches once.
// - The inbox head is max(n) of the user's entries, or `users.pruned_upto` when pruning removed
//   them all; no per-user row is written on the hot path.
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE conversations (
    conv TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT,
    created_ts INTEGER NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_ts INTEGER NOT NULL DEFAULT 0,
    fanned_seq INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE INDEX conversations_unfanned ON conversations (conv) WHERE fanned_seq < last_seq;
  CREATE TABLE messages (
    conv TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    sender TEXT NOT NULL,
    device TEXT NOT NULL,
    cmid TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    reply_to INTEGER,
    media TEXT
  );
  CREATE UNIQUE INDEX messages_by_seq ON messages (conv, seq);
  CREATE UNIQUE INDEX messages_dedup ON messages (conv, sender, cmid);
  CREATE TABLE members (
    conv TEXT NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    joined_seq INTEGER NOT NULL,
    removed_seq INTEGER,
    removed_name TEXT,
    removed_members INTEGER,
    PRIMARY KEY (conv, user)
  ) WITHOUT ROWID;
  CREATE TABLE users (
    user TEXT PRIMARY KEY,
    pruned_upto INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER
  ) WITHOUT ROWID;
  CREATE TABLE inbox (
    user TEXT NOT NULL,
    n INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    type TEXT NOT NULL,
    conv TEXT NOT NULL,
    seq INTEGER NOT NULL,
    actor TEXT,
    kind TEXT,
    PRIMARY KEY (user, n)
  ) WITHOUT ROWID;
  CREATE INDEX inbox_by_ts ON inbox (ts);
  CREATE TABLE user_conversations (
    user TEXT NOT NULL,
    conv TEXT NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (user, conv)
  ) WITHOUT ROWID;
  CREATE INDEX user_conversations_recent ON user_conversations (user, last_ts);
  CREATE TABLE receipts (
    conv TEXT NOT NULL,
    user TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conv, user)
  ) WITHOUT ROWID;
  CREATE TABLE settings (
    user TEXT PRIMARY KEY,
    read_receipts INTEGER NOT NULL,
    last_seen TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE blocks (
    user TEXT NOT NULL,
    blocked TEXT NOT NULL,
    PRIMARY KEY (user, blocked)
  ) WITHOUT ROWID;
  `,
  // The highest message seq per user and conversation, so a fan-out redone long after the first
  // one is recognised without scanning the inbox.
  `
  ALTER TABLE user_conversations ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
  UPDATE user_conversations SET last_seq = m.seq
    FROM (SELECT user, conv, max(seq) AS seq FROM inbox WHERE type = 'message' GROUP BY user, conv) AS m
    WHERE user_conversations.user = m.user AND user_conversations.conv = m.conv;
  `,
  // Group admission: the `group_add` privacy setting, and group invites keyed by the SHA-256 of
  // their code (the code itself is never stored). Expired invites are deleted as new ones come.
  `
  ALTER TABLE settings ADD COLUMN group_add TEXT NOT NULL DEFAULT 'everyone';
  CREATE TABLE invites (
    id TEXT PRIMARY KEY,
    conv TEXT NOT NULL,
    creator TEXT NOT NULL,
    creator_joined_seq INTEGER NOT NULL,
    created_ts INTEGER NOT NULL,
    expires_ts INTEGER NOT NULL,
    max_uses INTEGER,
    uses INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE INDEX invites_by_expiry ON invites (expires_ts);
  `,
  // Push: the devices a user signed in with (last seen, push registration as JSON), revocations
  // (kept a bounded time, pruned as new ones come), mutes, the push queue and its dead letters.
  // `push_jobs` holds at most one job per (user, device, conv): a newer job replaces the queued
  // one under a new id, so the queue order (id) is the order of the jobs that remain, and a row
  // handed out and replaced meanwhile is not deleted when its batch is done (it is deleted by id).
  `
  CREATE TABLE devices (
    user TEXT NOT NULL,
    device TEXT NOT NULL,
    last_seen INTEGER NOT NULL,
    push_json TEXT,
    PRIMARY KEY (user, device)
  ) WITHOUT ROWID;
  CREATE TABLE device_revocations (
    user TEXT NOT NULL,
    device TEXT NOT NULL,
    revoked_ts INTEGER NOT NULL,
    PRIMARY KEY (user, device)
  ) WITHOUT ROWID;
  CREATE INDEX device_revocations_by_ts ON device_revocations (revoked_ts);
  CREATE TABLE mutes (
    user TEXT NOT NULL,
    conv TEXT NOT NULL,
    until INTEGER NOT NULL,
    PRIMARY KEY (user, conv)
  ) WITHOUT ROWID;
  CREATE TABLE push_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    device TEXT NOT NULL,
    conv TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    inbox INTEGER NOT NULL,
    ts INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX push_jobs_by_key ON push_jobs (user, device, conv);
  CREATE TABLE push_dead_letters (
    id TEXT PRIMARY KEY,
    job_json TEXT NOT NULL,
    platform TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    ts INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX push_dead_letters_by_ts ON push_dead_letters (ts);
  `,
  // End-to-end encryption and media. `device_keys` holds a device's identity key and signed
  // prekey; a claim picks and deletes a one-time prekey in the writer's transaction, so each is
  // handed out once. `device_queue_heads` keeps the highest qid given to each device, apart from
  // the messages, so qids are never reused after acknowledgement or revocation. `device_messages`
  // is a rowid table (bodies are up to 64 KiB), pruned by age as new messages come.
  // `media` has partial indexes on what `collectable` asks: never listed by creation time, listed
  // by last listing.
  `
  CREATE TABLE device_keys (
    user TEXT NOT NULL,
    device TEXT NOT NULL,
    identity_key TEXT,
    signed_key_id INTEGER,
    signed_key TEXT,
    signed_signature TEXT,
    PRIMARY KEY (user, device)
  ) WITHOUT ROWID;
  CREATE TABLE one_time_prekeys (
    user TEXT NOT NULL,
    device TEXT NOT NULL,
    key_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (user, device, key_id)
  ) WITHOUT ROWID;
  CREATE TABLE device_queue_heads (
    user TEXT NOT NULL,
    device TEXT NOT NULL,
    head INTEGER NOT NULL,
    PRIMARY KEY (user, device)
  ) WITHOUT ROWID;
  CREATE TABLE device_messages (
    user TEXT NOT NULL,
    device TEXT NOT NULL,
    qid INTEGER NOT NULL,
    sender TEXT NOT NULL,
    sender_device TEXT NOT NULL,
    body TEXT NOT NULL,
    ts INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX device_messages_by_qid ON device_messages (user, device, qid);
  CREATE INDEX device_messages_by_ts ON device_messages (ts);
  CREATE TABLE media (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    created_ts INTEGER NOT NULL,
    last_referenced_ts INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX media_unreferenced ON media (created_ts) WHERE last_referenced_ts IS NULL;
  CREATE INDEX media_by_last_reference ON media (last_referenced_ts) WHERE last_referenced_ts IS NOT NULL;
  CREATE TABLE media_conversations (
    id TEXT NOT NULL,
    conv TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (id, conv)
  ) WITHOUT ROWID;
  CREATE INDEX media_conversations_by_ts ON media_conversations (id, ts);
  `,
  // Webhooks: the delivery queue (one row per event and endpoint, handed out in id order, one key
  // at a time) and the deliveries given up on, kept like push's dead letters.
  `
  CREATE TABLE webhook_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    delivery_json TEXT NOT NULL
  );
  CREATE TABLE webhook_dead_letters (
    id TEXT PRIMARY KEY,
    letter_json TEXT NOT NULL,
    ts INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX webhook_dead_letters_by_ts ON webhook_dead_letters (ts);
  `,
];

/** The schema version this build expects. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Applies pending migrations up to `target` (tests stop early to build an older database) in one
 * transaction each; returns the versions applied.
 */
export function migrate(
  db: Database.Database,
  now: number = Date.now(),
  target: number = MIGRATIONS.length,
): number[] {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ts INTEGER NOT NULL)',
  );
  const row = db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null };
  const current = row.v ?? 0;
  if (current > MIGRATIONS.length) {
    throw new Error(`database schema version ${current} is newer than this build (${MIGRATIONS.length})`);
  }
  const applied: number[] = [];
  for (let version = current + 1; version <= target; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version - 1]!);
      db.prepare('INSERT INTO schema_migrations (version, applied_ts) VALUES (?, ?)').run(version, now);
    })();
    applied.push(version);
  }
  return applied;
}

/** Pragmas every connection sets: WAL so readers never block the writer, and a busy timeout. */
export function configureConnection(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = OFF');
}
