/**
 * The `MediaIndex` port: what the server knows of each media object (its owner, size, type, and
 * the conversations whose messages listed it), so that `media_download` can be authorized and
 * objects nobody needs any more can be deleted. The bytes live in the `MediaStore`.
 * Conformance: `adapters/conformance/media-index.suite.ts`.
 * @module
 */

/** One media object as the index knows it. */
export interface MediaRecord {
  /** The media id clients use (`m_…`, unguessable). */
  id: string;
  /** The user who asked to upload it. */
  owner: string;
  size: number;
  contentType: string;
  /** When the upload URL was issued (ms since the epoch). */
  createdAt: number;
  /** When a message last listed it (absent: never). */
  lastReferencedAt?: number;
}

/** Conversations kept per media id (a forwarded file is listed in many). */
export const MAX_MEDIA_REFERENCES = 1000;

export interface MediaIndex {
  /** Records a new media id; resolves once durable. */
  create(record: Omit<MediaRecord, 'lastReferencedAt'>): Promise<void>;
  /** The record, or null for an unknown (or deleted) id. */
  get(id: string): Promise<MediaRecord | null>;
  /**
   * Records that a message of `conv` listed the media at `ts`: adds `conv` to its conversations
   * (past `MAX_MEDIA_REFERENCES`, the earliest are forgotten) and moves `lastReferencedAt` to
   * `ts` if later. Resolves once durable. A deleted or unknown id is ignored.
   */
  reference(id: string, conv: string, ts: number): Promise<void>;
  /** The conversations whose messages listed the media (unordered). */
  conversations(id: string): Promise<string[]>;
  /**
   * Media to delete, at most `limit`, in no particular order: those created before
   * `unreferencedBefore` that no message ever listed, and those last listed before
   * `referencedBefore`. A record stays collectable until it is deleted (or listed again).
   */
  collectable(unreferencedBefore: number, referencedBefore: number, limit: number): Promise<MediaRecord[]>;
  /** Forgets the media id and its conversations. */
  delete(id: string): Promise<void>;
}
