import type { GroupEffect, Watermark } from '../../ports/conversation-store.js';
import type { DeviceMessage } from '../../ports/device-queue.js';
import type { FannedMark, InboxEntry, MessageFanout } from '../../ports/inbox-store.js';
import type { Invite } from '../../ports/invite-store.js';
import type { KeyUpload } from '../../ports/key-directory.js';
import type { MediaRecord } from '../../ports/media-index.js';
import type { StoredMessage } from '../../ports/message-store.js';
import type { DeadLetter, PushJob } from '../../ports/push-queue.js';
import type { WebhookDeadLetter, WebhookDelivery } from '../../ports/webhooks.js';

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
  | { op: 'deadLetterRemove'; ids: readonly string[] }
  /** Reads back how many one-time prekeys the device has after the upload (at most `max`). */
  | { op: 'keysUpload'; user: string; device: string; keys: KeyUpload; max: number }
  /** Reads back the claimed bundles (`ClaimedBundle[]`): one-time prekeys picked and deleted at once. */
  | { op: 'keysClaim'; user: string }
  | { op: 'keysRemove'; user: string; device: string }
  /**
   * Reads back the message's qid, or null when `max` messages already wait (nothing is stored);
   * messages older than `pruneBefore`, of any device, are deleted first.
   */
  | {
      op: 'deviceEnqueue';
      user: string;
      device: string;
      message: Omit<DeviceMessage, 'qid'>;
      max: number;
      pruneBefore: number;
    }
  | { op: 'deviceAck'; user: string; device: string; upto: number }
  /** Deletes the device's queued messages; its qid head stays. */
  | { op: 'deviceQueueRemove'; user: string; device: string }
  | { op: 'mediaCreate'; record: Omit<MediaRecord, 'lastReferencedAt'> }
  /** Past `max` conversations the media's least recently listed one is forgotten. */
  | { op: 'mediaReference'; id: string; conv: string; ts: number; max: number }
  | { op: 'mediaDelete'; id: string }
  | { op: 'webhookEnqueue'; deliveries: readonly WebhookDelivery[] }
  /** Deletes handed-out deliveries by row id. */
  | { op: 'webhookDone'; ids: readonly number[] }
  | { op: 'webhookLetterAdd'; letters: readonly WebhookDeadLetter[] }
  /** Answers how many letters were deleted. */
  | { op: 'webhookLetterRemove'; ids: readonly string[] };

/** A batch sent to the writer thread. */
export interface WriteBatch {
  id: number;
  ops: WriteOp[];
}

/**
 * What applying one op answers: the rows it affected (where it matters), or, for an op that reads
 * back what it changed in the same transaction (a qid it assigned, the keys a claim took), that
 * value with the rows it changed.
 */
export type OpAnswer = number | { rows: number; value: unknown };

/** The writer thread's answer: one `OpAnswer` per op. */
export type WriteResult =
  | { id: number; ok: true; results: OpAnswer[]; commitMs: number }
  | { id: number; ok: false; error: string };
