/**
 * The writer thread's part of the `MediaIndex`: records, and the conversations that listed each
 * media id (at most `max`, the least recently listed forgotten first).
 * @module
 */
import type Database from 'better-sqlite3';
import type { MediaRecord } from '../../ports/media-index.js';

type Statement = Database.Statement<unknown[]>;

/** The writer thread's prepared statements of the media index. */
export type MediaStatements = Record<
  | 'mediaCreate'
  | 'mediaTouch'
  | 'mediaDelete'
  | 'mediaConvUpsert'
  | 'mediaConvCount'
  | 'mediaConvTrim'
  | 'mediaConvDelete',
  Statement
>;

export function prepareMediaStatements(db: Database.Database): MediaStatements {
  return {
    // A retried create changes nothing (ids are unique and unguessable).
    mediaCreate: db.prepare(
      `INSERT INTO media (id, owner, size, content_type, created_ts) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    ),
    // A listing that arrives late never moves the time back.
    mediaTouch: db.prepare(
      'UPDATE media SET last_referenced_ts = max(coalesce(last_referenced_ts, ?), ?) WHERE id = ?',
    ),
    mediaDelete: db.prepare('DELETE FROM media WHERE id = ?'),
    mediaConvUpsert: db.prepare(
      `INSERT INTO media_conversations (id, conv, ts) VALUES (?, ?, ?)
       ON CONFLICT (id, conv) DO UPDATE SET ts = max(ts, excluded.ts)`,
    ),
    mediaConvCount: db.prepare('SELECT count(*) AS n FROM media_conversations WHERE id = ?'),
    mediaConvTrim: db.prepare(
      `DELETE FROM media_conversations WHERE id = ? AND conv IN (
         SELECT conv FROM media_conversations WHERE id = ? ORDER BY ts, conv LIMIT ?)`,
    ),
    mediaConvDelete: db.prepare('DELETE FROM media_conversations WHERE id = ?'),
  };
}

export function createMedia(s: MediaStatements, r: Omit<MediaRecord, 'lastReferencedAt'>): number {
  return s.mediaCreate.run(r.id, r.owner, r.size, r.contentType, r.createdAt).changes;
}

/** Records a listing of a known media id (an unknown or deleted one is ignored). */
export function referenceMedia(
  s: MediaStatements,
  id: string,
  conv: string,
  ts: number,
  max: number,
): number {
  if (s.mediaTouch.run(ts, ts, id).changes === 0) return 0;
  s.mediaConvUpsert.run(id, conv, ts);
  const over = (s.mediaConvCount.get(id) as { n: number }).n - max;
  if (over > 0) s.mediaConvTrim.run(id, id, over);
  return 1;
}

export function deleteMedia(s: MediaStatements, id: string): number {
  return s.mediaDelete.run(id).changes + s.mediaConvDelete.run(id).changes;
}
