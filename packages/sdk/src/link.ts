/**
 * {@link Link}: one WebSocket from its creation until it closes, with everything whose life is
 * that socket's: the `connect` result, the timers (heartbeat, drain, sync backoff) that must die
 * with it, and how far its writes are known to have reached the server. A new socket is a new
 * Link, so work started for an old one can tell it is stale by identity.
 *
 * @module
 */

import { type ConnectResult, encodeFrame } from '@parley/protocol';
import type { Correlator } from './correlator.js';
import type { SendChannel } from './outbox.js';
import { type WebSocketLike, WS_OPEN } from './transport.js';
import { type Frame, noop, type Timer } from './util.js';

/** What a {@link Link} needs from the client. */
export interface LinkOptions {
  /** Numbers writes and matches replies (shared by every Link of the client). */
  correlator: Correlator;
  /** Reply timeout of the Link's own requests. */
  requestTimeoutMs: number;
  /** A write threw (reported as `error`; the frame counts as not written). */
  onWriteError(err: unknown): void;
  /** A send got no reply in time: end this Link as dead. */
  onTimedOut(link: Link): void;
}

/** One socket of the client; see the module comment. */
export class Link implements SendChannel {
  /** The socket. */
  readonly ws: WebSocketLike;
  /** Whether the `connect` request succeeded (requests, sends and receipts may flow). */
  authed = false;
  /** The `connect` result, once authenticated. */
  result: ConnectResult | undefined;
  /** Set by a `reconnect` event: when to reconnect. */
  drainAt: number | undefined;
  /** Ends the attempt when no `connect` reply comes in time. */
  connectTimer: Timer | undefined;
  /**
   * Every write numbered up to this one reached the server: a reply came to a request written
   * after it (the server reads a socket's frames in order).
   */
  confirmedWrite: number;
  readonly #timers = new Set<Timer>();
  readonly #o: LinkOptions;

  constructor(ws: WebSocketLike, options: LinkOptions) {
    this.ws = ws;
    this.#o = options;
    this.confirmedWrite = options.correlator.writeNo;
  }

  /** Writes a frame if the socket is open; false when it was not written. */
  write(frame: Frame): boolean {
    if (this.ws.readyState !== WS_OPEN) return false;
    try {
      this.ws.send(encodeFrame(frame));
      this.#o.correlator.wrote(frame);
      return true;
    } catch (err) {
      this.#o.onWriteError(err);
      return false;
    }
  }

  /** A request on this socket (the client's own: sync pages, pings, presence renewals). */
  call(frame: Frame): Promise<Frame> {
    return this.#o.correlator.call(this, frame, this.#o.requestTimeoutMs);
  }

  /** The `connect` reply was ok: stop the connect timeout, record the result. */
  authenticate(result: ConnectResult): void {
    if (this.connectTimer !== undefined) {
      clearTimeout(this.connectTimer);
      this.#timers.delete(this.connectTimer);
      this.connectTimer = undefined;
    }
    this.authed = true;
    this.result = result;
  }

  /** A reply came to the request carried by write `writeNo`: every write up to it was read. */
  confirm(writeNo: number | undefined): void {
    if (writeNo !== undefined && writeNo > this.confirmedWrite) this.confirmedWrite = writeNo;
  }

  /** See {@link SendChannel.timedOut}. */
  timedOut(): void {
    this.#o.onTimedOut(this);
  }

  /** A timer that dies with this socket. */
  timer(fn: () => void, ms: number): Timer {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  /** Resolves after `ms`, unless the socket is torn down first (then never: its work is abandoned). */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.timer(resolve, ms);
    });
  }

  /** Closes the socket and detaches it, so none of its events reach the client any more. */
  teardown(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const ws = this.ws;
    ws.onopen = noop;
    ws.onmessage = noop;
    ws.onclose = noop;
    ws.onerror = noop;
    if (ws.readyState === 0 || ws.readyState === WS_OPEN) {
      try {
        ws.close(1000, 'client closing');
      } catch {
        // already closing
      }
    }
  }
}
