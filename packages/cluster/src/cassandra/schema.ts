/**
 * The Cassandra keyspace of Parley's cluster mode: tables, their partitioning, and the idempotent
 * migration `parley migrate` runs.
 *
 * Every partition is bounded: a conversation's log and a user's inbox are split into buckets of
 * `BUCKET_SIZE` consecutive numbers, so no partition grows past ~1,000 rows whatever a
 * conversation's or a user's age. Every query reads one partition (or one bucket after another).
 *
 * Max-registers (a conversation's last seq, an inbox head, receipt watermarks, chat-list activity)
 * are written with the value as the cell's write timestamp (`USING TIMESTAMP`): Cassandra keeps
 * the cell with the highest timestamp, so a late or retried write can never move one back, without
 * a read before the write.
 * @module
 */
import type { Client } from 'cassandra-driver';

/** Consecutive seqs (or inbox numbers) per partition of the log (or of an inbox). */
export const BUCKET_SIZE = 1000;

/** The bucket of a seq or inbox number. */
export const bucketOf = (n: number): number => Math.floor(n / BUCKET_SIZE);

/**
 * The kinds of dead letters: push jobs and webhook deliveries. Each kind has its two tables, of the
 * same shape: `<kind>_dead_letters` and `<kind>_dead_letter_buckets`.
 */
const DEAD_LETTER_KINDS = ['push', 'webhook'] as const;
export type DeadLetterKind = (typeof DEAD_LETTER_KINDS)[number];

/** The span of one partition of `<kind>_dead_letters`: an hour of letters (by their id's time). */
export const DEAD_LETTER_BUCKET_MS = 3_600_000;

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The time (ms) a ULID's first ten characters encode, or undefined when they are not Crockford
 * base 32 in upper case (the canonical form, whose order is the order of the ids).
 */
export function ulidTime(id: string): number | undefined {
  if (id.length < 10) return undefined;
  let t = 0;
  for (let i = 0; i < 10; i++) {
    const digit = CROCKFORD.indexOf(id[i]!);
    if (digit < 0) return undefined;
    t = t * 32 + digit;
  }
  return t;
}

/** The `<kind>_dead_letters` partition of a letter id (a ULID), or undefined for another id. */
export function deadLetterBucketOf(id: string): number | undefined {
  const t = ulidTime(id);
  return t === undefined ? undefined : Math.floor(t / DEAD_LETTER_BUCKET_MS);
}

/** The span of one partition of `media_due`: an hour of creations or listings. */
export const MEDIA_DUE_BUCKET_MS = 3_600_000;

/** The `media_due` partition of a time (ms). */
export const mediaDueBucketOf = (ms: number): number => Math.floor(ms / MEDIA_DUE_BUCKET_MS);

/** How the keyspace is replicated: `parley migrate` creates it so; changing it later is an ALTER. */
export type Replication =
  | { class: 'SimpleStrategy'; replication_factor: number }
  | { class: 'NetworkTopologyStrategy'; [datacenter: string]: number | string };

const TABLES = [
  // A conversation's log. `effect` holds the group change a system message records (JSON), so the
  // derived tables can be rebuilt from the log if a writer died between the two write steps.
  `CREATE TABLE IF NOT EXISTS messages (
     conv text, bucket int, seq bigint, ts bigint, sender text, device text, cmid text, kind text,
     body text, reply_to bigint, media list<text>, effect text,
     PRIMARY KEY ((conv, bucket), seq))`,
  // Idempotent send: one small partition per (conv, sender, cmid).
  `CREATE TABLE IF NOT EXISTS message_cmids (
     conv text, sender text, cmid text, seq bigint, ts bigint,
     PRIMARY KEY ((conv, sender, cmid)))`,
  // Conversation metadata; last_seq/last_ts are max-registers (written USING TIMESTAMP value).
  `CREATE TABLE IF NOT EXISTS conversations (
     conv text PRIMARY KEY, kind text, name text, created_ts bigint, last_seq bigint, last_ts bigint)`,
  `CREATE TABLE IF NOT EXISTS members (
     conv text, user text, role text, joined_seq bigint, removed_seq bigint,
     name_at_removal text, members_at_removal int,
     PRIMARY KEY ((conv), user))`,
  // Receipt watermarks: delivered and read are max-registers.
  `CREATE TABLE IF NOT EXISTS watermarks (
     conv text, user text, delivered bigint, read bigint,
     PRIMARY KEY ((conv), user))`,
  // A user's inbox, in buckets; rows carry a TTL of the retention.
  `CREATE TABLE IF NOT EXISTS inbox (
     user text, bucket int, inbox bigint, ts bigint, type text, conv text, seq bigint,
     actor text, receipt_kind text,
     PRIMARY KEY ((user, bucket), inbox))`,
  // Per-user inbox state: head (max-register, never expires) and the first bucket that may still
  // hold entries (a hint that only moves forward).
  `CREATE TABLE IF NOT EXISTS inbox_heads (user text PRIMARY KEY, head bigint, floor_bucket int)`,
  // The chat list: one row per conversation, last_ts a max-register; sorted when read. last_seq,
  // the highest message seq of the conversation in the user's inbox, is a max-register too.
  `CREATE TABLE IF NOT EXISTS user_conversations (
     user text, conv text, last_ts bigint, last_seq bigint,
     PRIMARY KEY ((user), conv))`,
  `CREATE TABLE IF NOT EXISTS user_settings (user text PRIMARY KEY, read_receipts boolean, last_seen text)`,
  `CREATE TABLE IF NOT EXISTS blocks (user text, other text, PRIMARY KEY ((user), other))`,
  `CREATE TABLE IF NOT EXISTS last_seen (user text PRIMARY KEY, ts bigint)`,
  // Group invites, keyed by the SHA-256 of their code (never the code); rows expire by TTL a
  // minute after the invite does. `uses` is changed only by conditional updates (Paxos), so
  // concurrent joins never pass `max_uses`.
  `CREATE TABLE IF NOT EXISTS invites (
     id text PRIMARY KEY, conv text, creator text, creator_joined_seq bigint, created_ts bigint,
     expires_ts bigint, max_uses int, uses int)`,
  // Conversations a user muted, until when (ms since the epoch; MUTED_FOREVER = 2^53 - 1 fits a
  // bigint). A timed mute's row carries a TTL running out shortly after the mute ends.
  `CREATE TABLE IF NOT EXISTS mutes (user text, conv text, until bigint, PRIMARY KEY ((user), conv))`,
  // A user's devices: at most MAX_DEVICES_PER_USER (64) rows per partition, read whole. push_json
  // is the push registration as JSON with sorted keys (compared whole by \`dropPush\`); it is only
  // ever changed by conditional updates, so a registration is removed only while still the same.
  `CREATE TABLE IF NOT EXISTS devices_by_user (
     user text, device text, last_seen bigint, push_json text,
     PRIMARY KEY ((user), device))`,
  // Revoked devices: tokens issued for the device before revoked_ts are refused. Rows carry a TTL
  // (7 days by default, and never less than the longest token lifetime accepted), so a revocation
  // is kept as long as a token issued before it can live, then forgotten.
  `CREATE TABLE IF NOT EXISTS device_revocations (
     user text, device text, revoked_ts bigint,
     PRIMARY KEY ((user), device))`,
  ...DEAD_LETTER_KINDS.flatMap((kind) => [
    // Dead letters of one kind (`push_dead_letters`: push jobs; `webhook_dead_letters`: webhook
    // deliveries), as JSON, partitioned by the hour of their ULID id's time, so a partition holds
    // one hour of the deployment's letters and the ids sort the same within and across
    // partitions. Rows carry a TTL (30 days by default). Tombstones of purged letters are kept one
    // day, not ten: a replica that missed a purge for longer than that (hints last 3 hours) can
    // only bring back a letter an operator will see, and purge, again.
    `CREATE TABLE IF NOT EXISTS ${kind}_dead_letters (
       bucket int, id text, letter text,
       PRIMARY KEY ((bucket), id))
     WITH gc_grace_seconds = 86400`,
    // The hours that have dead letters of the kind (one small partition, k = 0, at most ~720
    // rows): where a listing from the oldest letter starts. A row is rewritten with each letter of
    // its hour and outlives them by an hour (TTL), so listing never walks the many expired hours.
    `CREATE TABLE IF NOT EXISTS ${kind}_dead_letter_buckets (k int, bucket int, PRIMARY KEY ((k), bucket))`,
  ]),
  // End-to-end encryption keys of a user's devices (one small partition per user). `gen` names the
  // partition of `one_time_prekeys` the device's current identity uses: a new identity key gets a
  // new gen, so the old identity's prekeys are out of reach at once, and deleting their partition
  // can never shadow a prekey of the new one (whatever the clocks). Every write is conditional.
  `CREATE TABLE IF NOT EXISTS device_keys (
     user text, device text, gen text, identity_key text,
     signed_key_id bigint, signed_key text, signed_signature text,
     PRIMARY KEY ((user), device))`,
  // One-time prekeys (at most MAX_ONE_TIME_PREKEYS, 500, per partition). Inserted `IF NOT EXISTS`
  // and claimed with `DELETE … IF key = ?`: a key is handed out by one winning Paxos round only.
  `CREATE TABLE IF NOT EXISTS one_time_prekeys (
     user text, device text, gen text, key_id bigint, key text,
     PRIMARY KEY ((user, device, gen), key_id))`,
  // A device's `to_device` queue. The static `head` is the highest qid ever given: a message is
  // queued by a conditional batch that moves head on and inserts the row in one Paxos round, so
  // qids are distinct and no qid is visible before its message. Acknowledgements and revocations
  // delete rows by qid range, never the partition, so head survives them. The static `acked` is a
  // max-register (written with the value as its timestamp), the qid up to which messages are gone:
  // head - acked is how many wait. Rows carry a TTL of the retention (30 days).
  `CREATE TABLE IF NOT EXISTS device_messages (
     user text, device text, qid bigint, sender text, sender_device text, body text, ts bigint,
     head bigint static, acked bigint static,
     PRIMARY KEY ((user, device), qid))`,
  // Media records. last_referenced_at is written with the listing's time as its timestamp, so a
  // late write never moves it back.
  `CREATE TABLE IF NOT EXISTS media (
     id text PRIMARY KEY, owner text, size bigint, content_type text, created_at bigint,
     last_referenced_at bigint)`,
  // The conversations that listed a media id (at most MAX_MEDIA_REFERENCES, 1000, per partition).
  `CREATE TABLE IF NOT EXISTS media_conversations (id text, conv text, ts bigint, PRIMARY KEY ((id), conv))`,
  // When media may become collectable, by hour (`MEDIA_DUE_BUCKET_MS`): kind 'c' at the hour of
  // its creation (collectable if never listed), 'r' at the hour of each later listing (collectable
  // if not listed since). Garbage collection reads the hours before its cutoffs and drops the rows
  // that no longer say anything, instead of scanning every record.
  `CREATE TABLE IF NOT EXISTS media_due (kind text, bucket int, id text, PRIMARY KEY ((kind, bucket), id))`,
  // The hours of each kind that have due rows (one small partition per kind).
  `CREATE TABLE IF NOT EXISTS media_due_buckets (kind text, bucket int, PRIMARY KEY ((kind), bucket))`,
  // Ownership epochs of a stage's partitions (the fan-out stage's inbox fencing). `last` is the
  // highest epoch taken, moved on by a conditional update (one Paxos round per assignment); each
  // partition's row is written with its epoch as the timestamp, so a higher epoch always stands.
  // One partition per stage: one read answers "are my partitions still mine?".
  `CREATE TABLE IF NOT EXISTS stage_epochs (
     stage text, partition int, epoch bigint, owner text, last bigint static,
     PRIMARY KEY ((stage), partition))`,
];

/** Columns added after their table first shipped: [table, column, type]; added by the migration. */
const ADDED_COLUMNS: readonly (readonly [string, string, string])[] = [
  ['user_conversations', 'last_seq', 'bigint'],
  ['user_settings', 'group_add', 'text'],
];

/** CQL's quoting of a keyspace name (only [a-z0-9_] are accepted). */
export function keyspaceName(name: string): string {
  if (!/^[a-z][a-z0-9_]{0,47}$/.test(name)) throw new Error(`invalid keyspace name: ${name}`);
  return name;
}

/**
 * Creates the keyspace (with `replication`, when it does not exist yet) and every table; safe to
 * run again. Uses a client connected without a keyspace.
 */
export async function migrateCassandra(
  client: Client,
  keyspace: string,
  replication: Replication,
): Promise<void> {
  const ks = keyspaceName(keyspace);
  const repl = JSON.stringify(replication).replaceAll('"', "'");
  await client.execute(`CREATE KEYSPACE IF NOT EXISTS ${ks} WITH replication = ${repl}`);
  for (const table of TABLES)
    await client.execute(table.replace('CREATE TABLE IF NOT EXISTS ', `CREATE TABLE IF NOT EXISTS ${ks}.`));
  for (const [table, column, type] of ADDED_COLUMNS) {
    const present = await client.execute(
      'SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ? AND column_name = ?',
      [ks, table, column],
      { prepare: true },
    );
    if (present.rowLength === 0) await client.execute(`ALTER TABLE ${ks}.${table} ADD ${column} ${type}`);
  }
}
