/**
 * Request/reply correlation: every request frame carries an `id`, and the server's `reply`
 * carries it back. {@link Correlator} hands out ids, numbers every frame written (so receipt
 * writes can be confirmed by a later reply) and routes replies and connection loss to whoever
 * waits. {@link RequestQueue} holds the application's requests while the client is offline.
 * Neither touches a socket: they write through a {@link Channel}.
 *
 * @module
 */

import { ParleyError } from './errors.js';
import type { Frame, Timer } from './util.js';

/**
 * Where the modules write frames: one authenticated connection. The client's connection
 * implements it; tests pass a recording fake.
 */
export interface Channel {
  /** Writes one frame; false when it could not be written (the socket is no longer open). */
  write(frame: Frame): boolean;
}

/** Who waits for the reply to one request id. */
export interface ReplyHandlers {
  /** The reply (`ok` true or false) arrived. */
  onReply(frame: Frame): void;
  /** The connection ended (`disconnected`) or the client stopped (`closed`) first. */
  onLost(err: ParleyError): void;
}

/** A request waiting for its reply, as {@link Correlator.take} returns it. */
export interface Inflight extends ReplyHandlers {
  /** Number of the write that carried the request, once written (see {@link Correlator.wrote}). */
  writeNo?: number;
}

/**
 * Matches replies to requests. Ids and write numbers increase over the client's life, across
 * connections, so a late reply from an older connection can never be taken for a newer request.
 */
export class Correlator {
  #nextId = 0;
  #writeNo = 0;
  readonly #inflight = new Map<string, Inflight>();

  /** A fresh request id. */
  newId(): string {
    this.#nextId += 1;
    return String(this.#nextId);
  }

  /** Frames written so far, over all connections. */
  get writeNo(): number {
    return this.#writeNo;
  }

  /** Registers the handlers of request `id` (before its frame is written). */
  expect(id: string, handlers: ReplyHandlers): void {
    this.#inflight.set(id, handlers);
  }

  /** Stops waiting for request `id` (it timed out): a reply arriving later is ignored. */
  forget(id: string): void {
    this.#inflight.delete(id);
  }

  /** Counts a frame just written; returns its write number (and records it on its request, if any). */
  wrote(frame: Frame): number {
    this.#writeNo += 1;
    if (typeof frame.id === 'string') {
      const entry = this.#inflight.get(frame.id);
      if (entry) entry.writeNo = this.#writeNo;
    }
    return this.#writeNo;
  }

  /** The request a reply answers, no longer waiting; undefined for unknown ids (timed out meanwhile). */
  take(id: string): Inflight | undefined {
    const entry = this.#inflight.get(id);
    if (entry) this.#inflight.delete(id);
    return entry;
  }

  /** Fails every request in flight (the connection they were written to ended). */
  failAll(err: ParleyError): void {
    const entries = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const entry of entries) entry.onLost(err);
  }

  /**
   * A request on one channel that settles with its reply (rejects with the reply's error, with
   * `timeout` after `timeoutMs`, or when the connection is lost). For the client's own requests
   * tied to one connection: sync pages, heartbeat pings, presence renewals.
   */
  call(channel: Channel, frame: Frame, timeoutMs: number): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      const id = this.newId();
      const timer = setTimeout(() => {
        this.forget(id);
        reject(new ParleyError('timeout', `${String(frame.type)}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.expect(id, {
        onReply: (reply) => {
          clearTimeout(timer);
          if (reply.ok === true) resolve(reply);
          else reject(ParleyError.fromReply(reply.error));
        },
        onLost: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      channel.write({ ...frame, id });
    });
  }
}

/** An application request, written now or when the client is next connected. */
interface QueuedRequest {
  readonly frame: Frame;
  resolve(reply: Frame): void;
  reject(err: ParleyError): void;
  timer: Timer | undefined;
  id: string | undefined;
}

/**
 * The application's requests (`ParleyClient.request` and the helpers built on it). Made while
 * offline, a request waits for the next connection; its timeout counts from the call either way.
 * It is written once: lost with its connection it rejects with `disconnected` rather than being
 * retried, because it may have been applied.
 */
export class RequestQueue {
  readonly #correlator: Correlator;
  readonly #timeoutMs: number;
  #waiting: QueuedRequest[] = [];

  constructor(correlator: Correlator, timeoutMs: number) {
    this.#correlator = correlator;
    this.#timeoutMs = timeoutMs;
  }

  /** Sends `type` with `params` on `channel`, or queues it when `channel` is null; resolves with the reply. */
  request(type: string, params: Frame, channel: Channel | null): Promise<Frame> {
    const timeout = this.#timeoutMs;
    return new Promise<Frame>((resolve, reject) => {
      const q: QueuedRequest = {
        frame: { ...params, type },
        resolve,
        reject,
        timer: undefined,
        id: undefined,
      };
      q.timer = setTimeout(() => {
        const i = this.#waiting.indexOf(q);
        if (i >= 0) this.#waiting.splice(i, 1);
        if (q.id !== undefined) this.#correlator.forget(q.id);
        reject(new ParleyError('timeout', `${type}: no reply within ${timeout} ms`));
      }, timeout);
      if (channel) this.#write(channel, q);
      else this.#waiting.push(q);
    });
  }

  /** Writes every queued request, in call order (the client just connected). */
  flush(channel: Channel): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const q of waiting) this.#write(channel, q);
  }

  /** Rejects every queued request with `err` (the client stopped). */
  rejectAll(err: ParleyError): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const q of waiting) {
      clearTimeout(q.timer);
      q.reject(err);
    }
  }

  #write(channel: Channel, q: QueuedRequest): void {
    const id = this.#correlator.newId();
    q.id = id;
    this.#correlator.expect(id, {
      onReply: (reply) => {
        clearTimeout(q.timer);
        if (reply.ok === true) q.resolve(reply);
        else q.reject(ParleyError.fromReply(reply.error));
      },
      onLost: (err) => {
        clearTimeout(q.timer);
        q.reject(err);
      },
    });
    channel.write({ ...q.frame, id });
  }
}
