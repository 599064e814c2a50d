/**
 * A group invite as stored. The code itself is never stored: `id` is its SHA-256 (base64url), so
 * whoever reads the store (a backup, an operator) cannot join groups with what they find there.
 */
export interface Invite {
  /** SHA-256 of the code, base64url: the key. */
  id: string;
  conv: string;
  /** The admin who created it; the invite is good only while they stay an admin without a break. */
  creator: string;
  /** The creator's `joined_seq` when the invite was made (a re-joined creator has a new one). */
  creatorJoinedSeq: number;
  createdTs: number;
  /** From this time (ms) on the invite is dead. */
  expiresTs: number;
  /** How many joins it allows; absent: any number until it expires. */
  maxUses?: number;
  /** Joins counted so far. */
  uses: number;
}

/**
 * Durable group invites. Uses are counted by the store atomically (`take`), so concurrent joins
 * through any process never exceed `maxUses`; a use given back (`release`) after a join that did
 * not happen may be lost in a crash, which only ever makes an invite allow fewer joins, never more.
 */
export interface InviteStore {
  /** Stores a new invite (with `uses` 0); resolves once durable. */
  create(invite: Invite): Promise<void>;
  /**
   * The invite with this id, or null when there is none (never made, revoked; a store may also
   * drop expired ones). Does not check expiry or uses.
   */
  get(id: string): Promise<Invite | null>;
  /**
   * Counts one use when the invite exists, has not expired at `now` and has uses left; resolves
   * with the invite as it is after the use, or null (nothing changed) otherwise. Durable when it
   * resolves.
   */
  take(id: string, now: number): Promise<Invite | null>;
  /** Gives back one use taken for a join that did not happen (never below 0; a no-op when gone). */
  release(id: string): Promise<void>;
  /** Deletes the invite; idempotent. Resolves once durable. */
  revoke(id: string): Promise<void>;
}
