/**
 * Client-side coalescing of receipt watermarks, so that a client that reads 200 messages, or
 * receives them in a burst after a reconnect, writes a handful of `receipt` frames rather than
 * 200.
 *
 * @module
 */

import type { MessageEvent, ReceiptKind } from '@parley/protocol';
import { parseSystemMessage, removesMember } from './system.js';

/**
 * Writes one `receipt` frame and returns a number identifying the write (increasing over the
 * client's life), or null when it could not be written (not connected).
 */
export type ReceiptWriter = (conv: string, kind: ReceiptKind, seq: number) => number | null;

type Timer = ReturnType<typeof setTimeout>;

/** The state of one (conversation, kind) watermark. */
interface Slot {
  readonly conv: string;
  readonly kind: ReceiptKind;
  /** Highest value asked for and not yet written (0: none). */
  pending: number;
  /** Highest value written. */
  sent: number;
  /** When a frame was last written (for the interval). */
  lastSentAt: number;
  /** The writer's number for the last write. */
  writeNo: number;
  /** Set while a write waits for the end of the interval. */
  timer: Timer | undefined;
}

/**
 * Keeps, per conversation and kind, the highest watermark asked for and writes it at most once
 * per `intervalMs`: the first update after a quiet interval is written at once (no added
 * latency for a single message), later ones within the interval are merged into one write at
 * its end. Values at or below what was already written, or (for `delivered`) at or below the
 * `read` watermark, are dropped: watermarks only move forward and `read` implies `delivered`.
 * What cannot be written while offline stays pending until {@link ReceiptCoalescer.flush}, and
 * so does what was written on a connection that then died before the server confirmed reading
 * it ({@link ReceiptCoalescer.requeueAfter}).
 */
export class ReceiptCoalescer {
  readonly #slots = new Map<string, Slot>();
  readonly #write: ReceiptWriter;
  readonly #intervalMs: number;

  constructor(write: ReceiptWriter, intervalMs: number) {
    this.#write = write;
    this.#intervalMs = intervalMs;
  }

  /** Asks for `kind` up to `seq` in `conv`. */
  mark(conv: string, kind: ReceiptKind, seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 1) return;
    const slot = this.#slot(conv, kind);
    if (seq <= Math.max(slot.sent, slot.pending)) return;
    if (kind === 'delivered') {
      const read = this.#slots.get(`read\n${conv}`);
      if (read && seq <= Math.max(read.sent, read.pending)) return;
    } else {
      const delivered = this.#slots.get(`delivered\n${conv}`);
      if (delivered && delivered.pending <= seq) delivered.pending = 0;
    }
    slot.pending = seq;
    this.#schedule(slot);
  }

  /** Writes every pending watermark that is not waiting out its interval (call after connecting). */
  flush(): void {
    for (const slot of this.#slots.values()) {
      if (slot.pending > 0 && slot.timer === undefined) this.#flushSlot(slot);
    }
  }

  /**
   * The connection ended and only writes numbered up to `confirmedWriteNo` are known to have
   * reached the server: watermarks written after it become pending again, for
   * {@link ReceiptCoalescer.flush} on the next connection (a repeated receipt changes nothing).
   */
  requeueAfter(confirmedWriteNo: number): void {
    for (const slot of this.#slots.values()) {
      if (slot.sent > 0 && slot.writeNo > confirmedWriteNo) slot.pending = Math.max(slot.pending, slot.sent);
    }
  }

  /** Cancels every pending write (the client stopped). What was written stays remembered. */
  clear(): void {
    for (const slot of this.#slots.values()) {
      clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.pending = 0;
    }
  }

  #slot(conv: string, kind: ReceiptKind): Slot {
    const key = `${kind}\n${conv}`;
    let slot = this.#slots.get(key);
    if (!slot) {
      slot = {
        conv,
        kind,
        pending: 0,
        sent: 0,
        lastSentAt: Number.NEGATIVE_INFINITY,
        writeNo: 0,
        timer: undefined,
      };
      this.#slots.set(key, slot);
    }
    return slot;
  }

  #schedule(slot: Slot): void {
    if (slot.timer !== undefined) return;
    const wait = slot.lastSentAt + this.#intervalMs - Date.now();
    if (wait <= 0) {
      this.#flushSlot(slot);
      return;
    }
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      this.#flushSlot(slot);
    }, wait);
  }

  #flushSlot(slot: Slot): void {
    const seq = slot.pending;
    if (seq === 0) return;
    const writeNo = this.#write(slot.conv, slot.kind, seq);
    if (writeNo === null) return;
    slot.writeNo = writeNo;
    slot.sent = Math.max(slot.sent, seq);
    slot.pending = 0;
    slot.lastSentAt = Date.now();
  }
}

/**
 * Whether a received message gets an automatic `delivered` receipt from `me` (the user id, once
 * known): messages from others only (sending implies reading), and not the system message that
 * removed `me` from a group (every receipt after it would be refused).
 */
export function wantsDeliveredReceipt(m: MessageEvent, me: string | undefined): boolean {
  if (me === undefined || m.from === me || typeof m.conv !== 'string' || typeof m.seq !== 'number')
    return false;
  return !(m.kind === 'system' && removesMember(parseSystemMessage(m), me));
}
