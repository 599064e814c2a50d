/**
 * What travels between the processes of a cluster: records on the stage topics and messages on
 * the bus. Plain JSON; a record's key (conversation or user) is the log's partitioning key.
 * @module
 */
import type { ErrorCode } from '@parley/protocol';
import { ParleyError } from '../domain/errors.js';
import type { GroupOp, SendRequest } from '../ports/conversation-writer.js';
import type { PendingEntry } from '../ports/inbox-appender.js';

/** A write for a conversation's owner (ingress topic, keyed by conversation). */
export type IngressRecord = {
  rid: string;
  reply: string;
  /**
   * After this (ms since the epoch) the gateway has stopped waiting and told its client
   * `unavailable`: the write is then refused instead of applied, so that answer stays true.
   */
  deadline: number;
} & (
  | { op: 'send'; req: SendRequest }
  | { op: 'change'; conv: string; actor: string; device: string; change: GroupOp }
);

/** The owner's answer to an ingress record (bus channel `reply:<process>`). */
export type ReplyMessage =
  | { rid: string; ok: true; result: unknown }
  | { rid: string; ok: false; code: ErrorCode; message: string; retryAfterMs?: number };

/**
 * One inbox event for its user's inbox writer (fanout topic, keyed by user). A message travels by
 * reference (its conversation and seq; the fan-out stage reads it from the store once per batch),
 * so a record stays small whatever the body's size and the group's: a 64 KiB message to 512
 * members is 512 small records, not 512 copies of the body. Other events carry their frame.
 */
export interface FanoutRecord {
  user: string;
  entry: PendingEntry['entry'];
  /** The frame head and tail (base64) of an event other than a message. */
  head?: string;
  tail?: string;
  /** A small message carried inline (see `INLINE_FANOUT_BYTES`): its sender and kind, with `tail`. */
  sender?: { from: string; kind: string };
}

type MessageEntry = Extract<PendingEntry['entry'], { type: 'message' }>;

/**
 * A message whose frame tail times its recipients stays under this many bytes travels inline:
 * a 1:1 message's two records then cost the fan-out stage no store read (up to two reads, one per
 * process owning a recipient), while a group's or a large message's records stay references.
 */
export const INLINE_FANOUT_BYTES = 4096;

/**
 * A message's record: by reference (the fan-out stage reads its frame from the store), or with
 * its frame `inline` when the caller decided it is small enough.
 */
export function messageRecord(
  user: string,
  entry: MessageEntry,
  inline?: { tail: string; from: string; kind: string },
): FanoutRecord {
  if (!inline) return { user, entry };
  return { user, entry, tail: inline.tail, sender: { from: inline.from, kind: inline.kind } };
}

/** An inbox event's record: a message by reference, any other event with its frame. */
export function toFanoutRecord(p: PendingEntry): FanoutRecord {
  if (p.entry.type === 'message') return messageRecord(p.user, p.entry);
  return { user: p.user, entry: p.entry, head: p.frameHead, tail: p.frameTail.toString('base64') };
}

/** The reply for a failure: a domain error keeps its code; anything else is `unavailable`. */
export function failureReply(rid: string, err: unknown): ReplyMessage {
  if (err instanceof ParleyError) {
    const r: ReplyMessage = { rid, ok: false, code: err.code, message: err.message };
    if (err.retryAfterMs !== undefined) r.retryAfterMs = err.retryAfterMs;
    return r;
  }
  return {
    rid,
    ok: false,
    code: 'unavailable',
    message: 'the conversation’s writer could not store it; retry',
  };
}

/** Rebuilds the error a reply carries. */
export function replyError(r: Extract<ReplyMessage, { ok: false }>): ParleyError {
  return new ParleyError(r.code, r.message, r.retryAfterMs);
}
