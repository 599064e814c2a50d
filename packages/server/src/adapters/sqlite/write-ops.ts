import type { GroupEffect, Watermark } from '../../ports/conversation-store.js';
import type { FannedMark, InboxEntry, MessageFanout } from '../../ports/inbox-store.js';
import type { Invite } from '../../ports/invite-store.js';
import type { StoredMessage } from '../../ports/message-store.js';
import type { DeadLetter, PushJob } from '../../ports/push-queue.js';

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
  | { op: 'lastSeen'; user: string; ts: number }
  | { op: 'mute'; user: string; conv: string; until: number | null }
  /** The device was seen at `ts`; past `max` devices the user's least recently seen other one goes. */
  | { op: 'deviceSeen'; user: string; device: string; ts: number; max: number }
  /** `push`: the registration as canonical JSON, or null to remove it. */
  | { op: 'devicePush'; user: string; device: string; push: string | null }
  /** Removes the registration only if it is still `push` (canonical JSON). */
  | { op: 'deviceDropPush'; user: string; device: string; push: string }
  /** Answers 1 when the device was known; revocations before `pruneBefore` are deleted. */
  | { op: 'deviceRevoke'; user: string; device: string; ts: number; pruneBefore: number }
  /** Answers how many jobs were queued or replaced a queued one (the others were older). */
  | { op: 'pushEnqueue'; jobs: readonly PushJob[] }
  /** Deletes handed-out jobs by id (a job replaced since has a new id and stays). */
  | { op: 'pushDone'; ids: readonly number[] }
  | { op: 'deadLetterAdd'; letters: readonly DeadLetter[] }
  /** Answers how many letters were deleted. */
  | { op: 'deadLetterRemove'; ids: readonly string[] };

/** A batch sent to the writer thread. */
export interface WriteBatch {
  id: number;
  ops: WriteOp[];
}

/** The writer thread's answer: one number per op (rows affected, where it matters). */
export type WriteResult =
  | { id: number; ok: true; results: number[]; commitMs: number }
  | { id: number; ok: false; error: string };
