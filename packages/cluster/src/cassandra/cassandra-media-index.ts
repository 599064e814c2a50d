/**
 * The `MediaIndex` on Cassandra (tables `media`, `media_conversations`, `media_due` and
 * `media_due_buckets`, see `schema.ts`).
 * @module
 */
import { MAX_MEDIA_REFERENCES, type MediaIndex, type MediaRecord } from '@parley/server/ports/media-index';
import { type Cql, long, mapLimit, num, settled } from './cql.js';
import { mediaDueBucketOf } from './schema.js';

/** Due rows read per query of one hour's partition. */
const DUE_PAGE = 200;
/** Hours of each kind `collectable` looks at per call at most. */
const DUE_HOURS = 1000;
/** Records loaded at once. */
const READ_CONCURRENCY = 32;

/** A due row's kind: at the hour of the creation ('c') or of a listing ('r'). */
type DueKind = 'c' | 'r';

/** What a due row says of its record now. */
type Verdict = 'due' | 'wait' | 'stale';

/**
 * The media index on Cassandra. A record is one row; its conversations one partition, each row
 * written with the listing's time as its write timestamp (so it keeps the latest listing's time,
 * and forgetting the earliest deletes exactly the version read). A time-ordered scan of all
 * records is no Cassandra query, so `collectable` works from "due" rows bucketed by hour (as dead
 * letters are): one at the hour of creation, one at the hour of each listing that moved
 * `lastReferencedAt` on. It reads the hours before its cutoffs, loads each record named, returns
 * those that qualify, and deletes the due rows that no longer can (the record is gone, was listed,
 * or was listed again later: a later due row stands for it).
 */
export class CassandraMediaIndex implements MediaIndex {
  constructor(private readonly cql: Cql) {}

  /** The due row first: a record is never stored without one (a due row without record is dropped). */
  async create(r: Omit<MediaRecord, 'lastReferencedAt'>): Promise<void> {
    await this.addDue('c', r.createdAt, r.id);
    await this.cql.run(
      `INSERT INTO ${this.cql.ks}.media (id, owner, size, content_type, created_at) VALUES (?, ?, ?, ?, ?)`,
      [r.id, r.owner, long(r.size), r.contentType, long(r.createdAt)],
    );
  }

  async get(id: string): Promise<MediaRecord | null> {
    const r = await this.cql.one(
      `SELECT owner, size, content_type, created_at, last_referenced_at FROM ${this.cql.ks}.media WHERE id = ?`,
      [id],
    );
    // A row without owner is no record: only a listing written as the record was deleted.
    if (!r || r.owner === null) return null;
    const m: MediaRecord = {
      id,
      owner: r.owner as string,
      size: num(r.size),
      contentType: r.content_type as string,
      createdAt: num(r.created_at),
    };
    if (r.last_referenced_at !== null) m.lastReferencedAt = num(r.last_referenced_at);
    return m;
  }

  /** Records the time and the conversation side by side; a known id only (read first). */
  async reference(id: string, conv: string, ts: number): Promise<void> {
    const r = await this.get(id);
    if (!r) return;
    await settled([this.listedAt(r, ts), this.addConversation(id, conv, ts)]);
  }

  /**
   * Moves `lastReferencedAt` on to `ts` if later: its due row first (so the record is reachable
   * from the hour it may become collectable in), then the cell, with `ts` as its write timestamp
   * (a max-register: a late, earlier listing never wins).
   */
  private async listedAt(r: MediaRecord, ts: number): Promise<void> {
    if (r.lastReferencedAt !== undefined && r.lastReferencedAt >= ts) return;
    await this.addDue('r', ts, r.id);
    await this.cql.run(
      `UPDATE ${this.cql.ks}.media USING TIMESTAMP ? SET last_referenced_at = ? WHERE id = ?`,
      [long(ts * 1000), long(ts), r.id],
    );
  }

  /** Adds (or refreshes) the conversation; one new to the media may push the earliest out. */
  private async addConversation(id: string, conv: string, ts: number): Promise<void> {
    const known = await this.cql.one(
      `SELECT conv FROM ${this.cql.ks}.media_conversations WHERE id = ? AND conv = ?`,
      [id, conv],
    );
    await this.cql.run(
      `INSERT INTO ${this.cql.ks}.media_conversations (id, conv, ts) VALUES (?, ?, ?) USING TIMESTAMP ?`,
      [id, conv, long(ts), long(ts * 1000)],
    );
    if (!known) await this.forgetEarliest(id);
  }

  async conversations(id: string): Promise<string[]> {
    const rows = await this.cql.all(`SELECT conv FROM ${this.cql.ks}.media_conversations WHERE id = ?`, [id]);
    return rows.map((r) => r.conv as string);
  }

  async collectable(
    unreferencedBefore: number,
    referencedBefore: number,
    limit: number,
  ): Promise<MediaRecord[]> {
    const out: MediaRecord[] = [];
    if (limit <= 0) return out;
    await this.collectKind(
      'c',
      unreferencedBefore,
      (r) => unreferencedVerdict(r, unreferencedBefore),
      out,
      limit,
    );
    await this.collectKind(
      'r',
      referencedBefore,
      (r, bucket) => referencedVerdict(r, bucket, referencedBefore),
      out,
      limit,
    );
    return out;
  }

  async delete(id: string): Promise<void> {
    const r = await this.get(id);
    await this.cql.run(`DELETE FROM ${this.cql.ks}.media WHERE id = ?`, [id]);
    await this.cql.run(`DELETE FROM ${this.cql.ks}.media_conversations WHERE id = ?`, [id]);
    if (!r) return;
    await this.dropDue('c', mediaDueBucketOf(r.createdAt), id);
    if (r.lastReferencedAt !== undefined) await this.dropDue('r', mediaDueBucketOf(r.lastReferencedAt), id);
  }

  /**
   * Walks the hours of `kind` up to the cutoff's, oldest first, a page of due rows at a time,
   * adding the records that qualify to `out` until it holds `limit`. An hour wholly before the
   * cutoff found empty leaves the index.
   */
  private async collectKind(
    kind: DueKind,
    cutoff: number,
    verdict: (r: MediaRecord | null, bucket: number) => Verdict,
    out: MediaRecord[],
    limit: number,
  ): Promise<void> {
    const last = mediaDueBucketOf(cutoff);
    const buckets = (
      await this.cql.all(
        `SELECT bucket FROM ${this.cql.ks}.media_due_buckets WHERE kind = ? AND bucket <= ? LIMIT ${DUE_HOURS}`,
        [kind, last],
      )
    ).map((r) => num(r.bucket));
    for (const bucket of buckets) {
      let after: string | undefined;
      for (;;) {
        const ids = await this.dueIds(kind, bucket, after);
        if (ids.length === 0 && after === undefined && bucket < last) await this.dropHour(kind, bucket);
        const records = await mapLimit(ids, READ_CONCURRENCY, (id) => this.get(id));
        for (const [i, id] of ids.entries()) {
          const v = verdict(records[i]!, bucket);
          if (v === 'stale') await this.dropDue(kind, bucket, id);
          else if (v === 'due' && !out.some((m) => m.id === id)) out.push(records[i]!);
          if (out.length >= limit) return;
        }
        if (ids.length < DUE_PAGE) break;
        after = ids[ids.length - 1];
      }
    }
  }

  private async dueIds(kind: DueKind, bucket: number, after: string | undefined): Promise<string[]> {
    const rows = await this.cql.all(
      `SELECT id FROM ${this.cql.ks}.media_due WHERE kind = ? AND bucket = ?${after === undefined ? '' : ' AND id > ?'} LIMIT ${DUE_PAGE}`,
      after === undefined ? [kind, bucket] : [kind, bucket, after],
    );
    return rows.map((r) => r.id as string);
  }

  /** The hour's index row first, so a due row is always reachable from the index. */
  private async addDue(kind: DueKind, at: number, id: string): Promise<void> {
    const bucket = mediaDueBucketOf(at);
    await this.cql.run(`INSERT INTO ${this.cql.ks}.media_due_buckets (kind, bucket) VALUES (?, ?)`, [
      kind,
      bucket,
    ]);
    await this.cql.run(`INSERT INTO ${this.cql.ks}.media_due (kind, bucket, id) VALUES (?, ?, ?)`, [
      kind,
      bucket,
      id,
    ]);
  }

  private async dropDue(kind: DueKind, bucket: number, id: string): Promise<void> {
    await this.cql.run(`DELETE FROM ${this.cql.ks}.media_due WHERE kind = ? AND bucket = ? AND id = ?`, [
      kind,
      bucket,
      id,
    ]);
  }

  private async dropHour(kind: DueKind, bucket: number): Promise<void> {
    await this.cql.run(`DELETE FROM ${this.cql.ks}.media_due_buckets WHERE kind = ? AND bucket = ?`, [
      kind,
      bucket,
    ]);
  }

  /**
   * Past `MAX_MEDIA_REFERENCES` conversations, deletes the least recently listed ones, each at the
   * timestamp of the version read: a listing written since (a later timestamp) stays.
   */
  private async forgetEarliest(id: string): Promise<void> {
    const count = num(
      (await this.cql.one(`SELECT COUNT(*) AS n FROM ${this.cql.ks}.media_conversations WHERE id = ?`, [id]))
        ?.n,
    );
    if (count <= MAX_MEDIA_REFERENCES) return;
    const rows = (
      await this.cql.all(`SELECT conv, ts FROM ${this.cql.ks}.media_conversations WHERE id = ?`, [id])
    )
      .map((r) => ({ conv: r.conv as string, ts: num(r.ts) }))
      .sort((a, b) => a.ts - b.ts || (a.conv < b.conv ? -1 : a.conv > b.conv ? 1 : 0));
    for (const r of rows.slice(0, rows.length - MAX_MEDIA_REFERENCES))
      await this.cql.run(
        `DELETE FROM ${this.cql.ks}.media_conversations USING TIMESTAMP ? WHERE id = ? AND conv = ?`,
        [long(r.ts * 1000), id, r.conv],
      );
  }
}

/** A creation's due row: due while never listed and created before the cutoff. */
function unreferencedVerdict(r: MediaRecord | null, cutoff: number): Verdict {
  if (!r || r.lastReferencedAt !== undefined) return 'stale';
  return r.createdAt < cutoff ? 'due' : 'wait';
}

/** A listing's due row: stands for the record only at the hour of its last listing. */
function referencedVerdict(r: MediaRecord | null, bucket: number, cutoff: number): Verdict {
  if (!r || r.lastReferencedAt === undefined) return 'stale';
  if (mediaDueBucketOf(r.lastReferencedAt) !== bucket) return 'stale';
  return r.lastReferencedAt < cutoff ? 'due' : 'wait';
}
