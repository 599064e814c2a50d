/**
 * The send queue: a message is stored once even though the network may lose the send or its
 * acknowledgement, because every attempt carries the same client message id (`cmid`) and the
 * server deduplicates by it. Sends are written in call order and stay in order through retries.
 * Socket-free: it writes through a {@link SendChannel} and learns replies from the
 * {@link Correlator}, so its rules are tested with a fake channel and a fake clock.
 *
 * @module
 */

import type { SendResult } from '@parley/protocol';
import { backoffDelay } from './backoff.js';
import type { Channel, Correlator } from './correlator.js';
import { isRetryableSendError, ParleyError } from './errors.js';
import { type Frame, newCmid, resultOf, type Timer } from './util.js';

/** Options of {@link ParleyClient.send}. */
export interface SendOptions {
  /** Message kind. Default `text`. */
  kind?: string;
  /** The `seq` this message replies to, in the same conversation. */
  reply_to?: number;
  /** Media ids from `media_upload`. */
  media?: string[];
  /** Client message id. Default `crypto.randomUUID()`. Give your own to retry a send across restarts. */
  cmid?: string;
}

/** The connection sends are written to. */
export interface SendChannel extends Channel {
  /**
   * A send got no reply within the request timeout: the connection is presumed dead and should
   * be ended. Reconnecting resends every unacknowledged send in order.
   */
  timedOut(): void;
}

/** What an {@link Outbox} needs. */
export interface OutboxOptions {
  /** Request ids and reply routing, shared with the rest of the client. */
  correlator: Correlator;
  /** The authenticated connection now, or null while offline (sends then wait in the queue). */
  channel: () => SendChannel | null;
  /** How long an attempt waits for its reply before the connection is presumed dead. */
  requestTimeoutMs: number;
  /** Failed attempts after which a send rejects (`Infinity`: retried until acknowledged). */
  maxAttempts: number;
  /** Backoff window of the first retry after a retryable error reply. */
  minDelayMs: number;
  /** Largest backoff window between retries. */
  maxDelayMs: number;
  /** Jitter source in `[0, 1)`. */
  random: () => number;
}

/** A `send` not yet acknowledged. */
interface OutgoingSend {
  readonly cmid: string;
  readonly frame: Frame;
  resolve(result: SendResult): void;
  reject(err: ParleyError): void;
  /** Request id of the attempt in flight, if one is. */
  reqId: string | undefined;
  timer: Timer | undefined;
  /** Not written again before this time (retry delay). */
  notBefore: number;
  failures: number;
}

/**
 * Unacknowledged sends, oldest first. A send is written when a connection is there and nothing
 * before it waits out a retry delay (head-of-line: a retried message is not overtaken by later
 * ones); it leaves the queue when the server acknowledges it or it fails for good.
 */
export class Outbox {
  readonly #o: OutboxOptions;
  #sends: OutgoingSend[] = [];
  #pumpTimer: Timer | undefined;

  constructor(options: OutboxOptions) {
    this.#o = options;
  }

  /** Sends not yet acknowledged (queued, waiting to retry, or in flight). */
  get size(): number {
    return this.#sends.length;
  }

  /**
   * Queues a message (assigning a `cmid` unless given) and writes it if it can; resolves when the
   * server has stored it, rejects with the `cmid` on the error when it fails for good.
   */
  add(conv: string, body: string, options: SendOptions): Promise<SendResult> {
    const cmid = options.cmid ?? newCmid();
    const frame: Frame = { type: 'send', conv, cmid, kind: options.kind ?? 'text', body };
    if (options.reply_to !== undefined) frame.reply_to = options.reply_to;
    if (options.media !== undefined) frame.media = options.media;
    return new Promise<SendResult>((resolve, reject) => {
      this.#sends.push({
        cmid,
        frame,
        resolve,
        reject,
        reqId: undefined,
        timer: undefined,
        notBefore: 0,
        failures: 0,
      });
      this.pump();
    });
  }

  /**
   * Writes unsent sends in call order (call it when a connection becomes ready). A send waiting
   * out a retry delay holds back every send after it, and the pump runs again when it is due.
   */
  pump(): void {
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    const channel = this.#o.channel();
    if (!channel) return;
    const now = Date.now();
    for (const s of this.#sends) {
      if (s.reqId !== undefined) continue;
      if (s.notBefore > now) {
        this.#pumpTimer = setTimeout(() => this.pump(), s.notBefore - now);
        return;
      }
      this.#write(channel, s);
      if (this.#o.channel() !== channel) return;
    }
  }

  /** Rejects every send with `closed` and its `cmid` (the client stopped; the message may have been stored). */
  rejectAll(message: string): void {
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    const sends = this.#sends;
    this.#sends = [];
    for (const s of sends) {
      clearTimeout(s.timer);
      s.reject(new ParleyError('closed', message, { cmid: s.cmid }));
    }
  }

  #write(channel: SendChannel, s: OutgoingSend): void {
    const correlator = this.#o.correlator;
    const id = correlator.newId();
    s.reqId = id;
    s.timer = setTimeout(() => {
      if (this.#o.channel() === channel && s.reqId === id) channel.timedOut();
    }, this.#o.requestTimeoutMs);
    correlator.expect(id, {
      onReply: (reply) => this.#onReply(s, reply),
      onLost: (err) => this.#onFailed(s, err),
    });
    channel.write({ ...s.frame, id });
  }

  #onReply(s: OutgoingSend, reply: Frame): void {
    clearTimeout(s.timer);
    s.reqId = undefined;
    if (reply.ok === true) {
      this.#remove(s);
      const r = resultOf<SendResult>(reply);
      const result: SendResult = { conv: r.conv, seq: r.seq, ts: r.ts };
      if (r.dup === true) result.dup = true;
      s.resolve(result);
      return;
    }
    const err = ParleyError.fromReply(reply.error);
    this.#onFailed(s, err);
    if (this.#sends.includes(s)) {
      const o = this.#o;
      s.notBefore =
        Date.now() + (err.retryAfterMs ?? backoffDelay(s.failures - 1, o.minDelayMs, o.maxDelayMs, o.random));
      this.pump();
    }
  }

  /** An attempt failed: reject for good, or leave the send queued for the next write. */
  #onFailed(s: OutgoingSend, err: ParleyError): void {
    clearTimeout(s.timer);
    s.reqId = undefined;
    s.failures += 1;
    if (err.code !== 'closed' && isRetryableSendError(err.code) && s.failures < this.#o.maxAttempts) {
      return;
    }
    this.#remove(s);
    s.reject(
      new ParleyError(err.code, err.message, {
        cmid: s.cmid,
        ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
      }),
    );
  }

  #remove(s: OutgoingSend): void {
    const i = this.#sends.indexOf(s);
    if (i >= 0) this.#sends.splice(i, 1);
  }
}
