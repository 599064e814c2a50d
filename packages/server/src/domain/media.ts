import { randomBytes } from 'node:crypto';
import type { MediaDownloadResult, MediaUploadResult } from '@parley/protocol';
import { directMembers } from '@parley/protocol';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { MediaIndex, MediaRecord } from '../ports/media-index.js';
import type { MediaStore } from '../ports/media-store.js';
import { ParleyError } from './errors.js';
import type { WorkBudget } from './work-budget.js';

/** What media needs. */
export interface MediaDeps {
  index: MediaIndex;
  /** Absent when no object store is configured: media requests answer `unavailable`. */
  store?: MediaStore;
  budget: WorkBudget;
  clock: Clock;
  log: Logger;
  /** Whether `user` is a current member of group `conv`. */
  isGroupMember(conv: string, user: string): Promise<boolean>;
  limits: MediaLimits;
}

export interface MediaLimits {
  maxBytes: number;
  uploadUrlSeconds: number;
  downloadUrlSeconds: number;
  /** Uploads no message listed within this time are deleted. */
  unreferencedMs: number;
  /** Media is deleted this long after the last message that listed it. */
  retentionMs: number;
}

/** The object key of a media id in the store. */
export const mediaKey = (id: string) => `media/${id}`;

/** Media deleted per sweep step. */
const SWEEP_BATCH = 100;

/**
 * Photos, voice notes and files: the server hands out short-lived URLs for the object store (the
 * embedded file store, or S3 in cluster mode) and decides who may download what; the bytes never
 * pass through a gateway in cluster mode, and they are opaque (the SDK encrypts every attachment).
 * May download: the uploader, and the current members of any conversation in which a message
 * listed the media id.
 */
export class MediaService {
  constructor(private readonly d: MediaDeps) {}

  /** A new media id and a URL that accepts exactly `size` bytes of `contentType`. */
  async upload(user: string, size: number, contentType: string): Promise<MediaUploadResult> {
    if (size > this.d.limits.maxBytes)
      throw new ParleyError('too_large', `media is limited to ${this.d.limits.maxBytes} bytes`);
    const store = this.store();
    await this.d.budget.take('media', user, 1);
    await this.d.budget.take('uploadBytes', user, size);
    const id = `m_${randomBytes(18).toString('base64url')}`;
    await this.d.index.create({ id, owner: user, size, contentType, createdAt: this.d.clock.now() });
    const put = await store.presignPut(mediaKey(id), contentType, size, this.d.limits.uploadUrlSeconds);
    return { media: id, url: put.url, method: put.method, headers: put.headers, expires_ts: put.expiresAt };
  }

  /** A short-lived download URL, for the uploader and members of a conversation that listed it. */
  async download(user: string, id: string): Promise<MediaDownloadResult> {
    const store = this.store();
    await this.d.budget.take('media', user, 1);
    const record = await this.d.index.get(id);
    if (!record) throw new ParleyError('not_found', 'no such media');
    if (!(await this.mayRead(user, record)))
      throw new ParleyError('forbidden', 'you may not download this media');
    const get = await store.presignGet(mediaKey(id), this.d.limits.downloadUrlSeconds);
    return { url: get.url, expires_ts: get.expiresAt };
  }

  /**
   * Checks media a message lists before it is stored, and records the conversation as one whose
   * members may download them: each id must exist, be uploaded in full, and be the sender's own
   * or one they may read (forwarding). Recorded before the message is sequenced, so a stored
   * message never lists media its members cannot fetch.
   */
  async attach(user: string, conv: string, ids: readonly string[]): Promise<void> {
    // Not a member: the writer refuses the send; nothing is recorded for that conversation.
    if (!(await this.isMember(conv, user))) return;
    const now = this.d.clock.now();
    await Promise.all(
      ids.map(async (id) => {
        const record = await this.d.index.get(id);
        if (!record || !(await this.mayRead(user, record)))
          throw new ParleyError('bad_request', `media ${id} does not exist or is not yours`);
        const stored = await this.store().head(mediaKey(id));
        if (!stored || stored.size !== record.size)
          throw new ParleyError('bad_request', `media ${id} has not been uploaded`);
        await this.d.index.reference(id, conv, now);
      }),
    );
  }

  /**
   * Deletes media nobody needs any more: uploads no message listed within `unreferencedMs`, and
   * media last listed more than `retentionMs` ago. Resolves with how many were deleted.
   */
  async sweep(): Promise<number> {
    if (!this.d.store) return 0;
    const now = this.d.clock.now();
    const { unreferencedMs, retentionMs } = this.d.limits;
    let deleted = 0;
    for (;;) {
      const due = await this.d.index.collectable(now - unreferencedMs, now - retentionMs, SWEEP_BATCH);
      for (const record of due) {
        // The object first: an index entry without its object is harmless, the reverse leaks bytes.
        await this.store().delete(mediaKey(record.id));
        await this.d.index.delete(record.id);
      }
      deleted += due.length;
      if (due.length < SWEEP_BATCH) return deleted;
    }
  }

  private store(): MediaStore {
    if (!this.d.store) throw new ParleyError('unavailable', 'media storage is not configured on this server');
    return this.d.store;
  }

  private async mayRead(user: string, record: MediaRecord): Promise<boolean> {
    if (record.owner === user) return true;
    for (const conv of await this.d.index.conversations(record.id))
      if (await this.isMember(conv, user)) return true;
    return false;
  }

  private isMember(conv: string, user: string): Promise<boolean> {
    const direct = directMembers(conv);
    return direct ? Promise.resolve(direct.includes(user)) : this.d.isGroupMember(conv, user);
  }
}
