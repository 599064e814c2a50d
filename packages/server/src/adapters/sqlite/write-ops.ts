import type { GroupEffect, Watermark } from '../../ports/conversation-store.js';
import type { FannedMark, InboxEntry, MessageFanout } from '../../ports/inbox-store.js';
import type { Invite } from '../../ports/invite-store.js';
import type { StoredMessage } from '../../ports/message-store.js';

/**
 * The writes the embedded store's writer thread applies. Everything queued while a commit is in
 * flight goes into the next transaction together (group commit), whatever port it came from.
 */
export type WriteOp =
  | { op: 'messages'; rows: readonly StoredMessage[]; effects: readonly GroupEffect[] }
  | {
      op: 'inbox';
      rows: readonly InboxEntry[];
      fanned: readonly FannedMark[];
      fanouts: readonly MessageFanout[];
    }
  | { op: 'watermarks'; rows: readonly Watermark[] }
  | { op: 'prune'; beforeTs: number; max: number }
  | {
      op: 'settings';
      user: string;
      readReceipts: boolean;
      lastSeen: 'everyone' | 'nobody';
      groupAdd: 'everyone' | 'nobody';
    }
  | { op: 'inviteCreate'; invite: Invite }
  | { op: 'inviteTake'; id: string; now: number }
  | { op: 'inviteRelease'; id: string }
  | { op: 'inviteRevoke'; id: string }
  | { op: 'block'; user: string; other: string; blocked: boolean }
  | { op: 'lastSeen'; user: string; ts: number };

/** A batch sent to the writer thread. */
export interface WriteBatch {
  id: number;
  ops: WriteOp[];
}

/** The writer thread's answer: one number per op (rows affected, where it matters). */
export type WriteResult =
  | { id: number; ok: true; results: number[]; commitMs: number }
  | { id: number; ok: false; error: string };
