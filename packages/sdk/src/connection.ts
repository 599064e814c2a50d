/**
 * The connection state machine (after centrifuge-js `src/centrifuge.ts`): one state, changed
 * only by its `#setState`, which emits `state` with the old and new value; a
 * connection attempt per socket (cursor, token, socket, `connect`); a heartbeat; the policy
 * for every close code (`codes.ts`) with full-jitter backoff between attempts (`backoff.ts`);
 * and the stop that ends everything. What happens on top of a connection (sync, sends,
 * requests, receipts, presence) the client plugs in through {@link ConnectionHooks}.
 *
 * @module
 */

import {
  type ConnectResult,
  decodeServerFrame,
  type ReconnectEvent,
  SUBPROTOCOL_JSON,
} from '@parley/protocol';
import { backoffDelay, hardBackoffDelay } from './backoff.js';
import { ClientState, type ClosePolicy, closePolicy, connectErrorPolicy, DisconnectReason } from './codes.js';
import type { Correlator } from './correlator.js';
import { ParleyError } from './errors.js';
import { asError, type Emit } from './events.js';
import { Link } from './link.js';
import type { ResolvedOptions } from './options.js';
import type { WebSocketLike } from './transport.js';
import { type Frame, noop, resultOf, type Timer } from './util.js';

/** What the client does on top of the state machine, at the points where it must. */
export interface ConnectionHooks {
  /**
   * Before each attempt: work that must finish first (loading the inbox cursor, once), or null
   * when there is none. A rejection backs off and retries; `stale` tells that the attempt was
   * overtaken (by `close()`) while it ran.
   */
  prepare(stale: () => boolean): Promise<void> | null;
  /** `connect` succeeded: reconcile the inbox cursor with `inbox_head`; whether a sync must run. */
  resume(link: Link, result: ConnectResult): boolean;
  /** The state is set and `connected` emitted: start the sync if needed, write what waited. */
  ready(link: Link, needSync: boolean): void;
  /** A server frame other than a reply or a `reconnect` event. */
  frame(link: Link, frame: Frame): void;
  /** The connection ended and the client will reconnect (in-flight requests already failed). */
  lost(link: Link): void;
  /** The client stopped: reject everything still pending with `err`. */
  stopped(err: ParleyError): void;
}

/** Connects, stays connected, and stops; see the module comment. */
export class Connection {
  readonly #o: ResolvedOptions;
  readonly #correlator: Correlator;
  readonly #emit: Emit;
  readonly #hooks: ConnectionHooks;
  #state: ClientState = ClientState.Disconnected;
  #link: Link | null = null;
  /** Bumped by every connection attempt and by a stop: async steps of older ones give up. */
  #gen = 0;
  #reconnectAttempt = 0;
  #reconnectTimer: Timer | undefined;
  #refreshToken = false;
  #lastConnect: ConnectResult | undefined;
  #connectWaiters: { resolve(r: ConnectResult): void; reject(e: ParleyError): void }[] = [];

  constructor(options: ResolvedOptions, correlator: Correlator, emit: Emit, hooks: ConnectionHooks) {
    this.#o = options;
    this.#correlator = correlator;
    this.#emit = emit;
    this.#hooks = hooks;
  }

  /** The current state. */
  get state(): ClientState {
    return this.#state;
  }

  /** The result of the latest successful `connect`. */
  get lastConnect(): ConnectResult | undefined {
    return this.#lastConnect;
  }

  /** The current socket, authenticated or not; null between sockets. */
  get link(): Link | null {
    return this.#link;
  }

  /** The current socket if authenticated (frames other than `connect` may be written), else null. */
  get ready(): Link | null {
    return this.#link?.authed === true ? this.#link : null;
  }

  /** Starts connecting (unless already) and resolves on the next successful `connect`; see `ParleyClient.connect`. */
  connect(): Promise<ConnectResult> {
    const link = this.#link;
    if (link?.authed && link.result) return Promise.resolve(link.result);
    const promise = new Promise<ConnectResult>((resolve, reject) => {
      this.#connectWaiters.push({ resolve, reject });
    });
    if (this.#state === ClientState.Disconnected || this.#state === ClientState.Closed) {
      this.#setState(ClientState.Connecting);
      void this.#attempt();
    }
    return promise;
  }

  /** The one place the state changes; emits `state` `{ from, to }` when it does. */
  #setState(to: ClientState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#emit('state', { from, to });
  }

  /** The catch-up sync after a connect finished: `syncing` becomes `connected`. */
  caughtUp(): void {
    if (this.#state === ClientState.Syncing) this.#setState(ClientState.Connected);
  }

  /** Stops for good (close() or a terminal close code): state `closed`, everything pending rejected. */
  stop(code: number, reason: DisconnectReason): void {
    this.#gen += 1;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const link = this.#link;
    this.#link = null;
    if (link) link.teardown();
    const err = new ParleyError('closed', `client closed (${reason})`);
    this.#correlator.failAll(err);
    this.#hooks.stopped(err);
    const from = this.#state;
    this.#setState(ClientState.Closed);
    if (from !== ClientState.Disconnected && from !== ClientState.Closed) {
      this.#emit('disconnected', { code, reason, willReconnect: false });
    }
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  /** The current connection ended (server close, network loss, or the client gave up on it). */
  end(link: Link, code: number, policy: ClosePolicy): void {
    if (this.#link !== link) return;
    this.#link = null;
    link.teardown();
    // When the client stops for good, everything pending fails alike with `closed`.
    const lostCode = policy.action === 'stop' ? 'closed' : 'disconnected';
    this.#correlator.failAll(new ParleyError(lostCode, `connection lost (${policy.reason})`));
    if (policy.action !== 'stop') this.#hooks.lost(link);
    this.#afterDisconnect(code, policy, link.drainAt);
  }

  #error(err: unknown): void {
    this.#emit('error', asError(err));
  }

  async #attempt(): Promise<void> {
    const gen = ++this.#gen;
    const stale = () => gen !== this.#gen;
    this.#reconnectTimer = undefined;
    const preparing = this.#hooks.prepare(stale);
    if (preparing) {
      try {
        await preparing;
      } catch (err) {
        if (stale()) return;
        this.#error(err);
        this.#afterDisconnect(
          0,
          { action: 'reconnect', reason: DisconnectReason.TransportClosed },
          undefined,
        );
        return;
      }
      if (stale()) return;
    }
    let token: unknown;
    try {
      token = await this.#o.tokenProvider({ refresh: this.#refreshToken });
      if (typeof token !== 'string' || token === '') throw new TypeError('tokenProvider returned no token');
    } catch (err) {
      if (stale()) return;
      this.#error(err);
      this.#afterDisconnect(
        0,
        { action: 'reconnect', reason: DisconnectReason.TokenProviderFailed },
        undefined,
      );
      return;
    }
    if (stale()) return;
    this.#refreshToken = false;
    let ws: WebSocketLike;
    try {
      ws = new this.#o.WebSocket(this.#o.url, [SUBPROTOCOL_JSON]);
    } catch (err) {
      this.#error(err);
      this.#afterDisconnect(0, { action: 'reconnect', reason: DisconnectReason.TransportClosed }, undefined);
      return;
    }
    const link = new Link(ws, {
      correlator: this.#correlator,
      requestTimeoutMs: this.#o.requestTimeout,
      onWriteError: (err) => this.#error(err),
      onTimedOut: (l) => this.end(l, 0, { action: 'reconnect', reason: DisconnectReason.Timeout }),
    });
    this.#link = link;
    link.connectTimer = link.timer(
      () => this.end(link, 0, { action: 'reconnect', reason: DisconnectReason.ConnectTimeout }),
      this.#o.requestTimeout,
    );
    ws.onopen = () => {
      if (this.#link === link) this.#onOpen(link, token as string);
    };
    ws.onmessage = (event: { data?: unknown }) => {
      if (this.#link === link) this.#onData(link, event.data);
    };
    ws.onclose = (event: { code?: number }) => {
      if (this.#link !== link) return;
      const code = typeof event.code === 'number' ? event.code : 1006;
      this.end(link, code, closePolicy(code));
    };
    // An error is always followed by a close event, which does the work.
    ws.onerror = noop;
  }

  #onOpen(link: Link, token: string): void {
    const protocol = link.ws.protocol;
    if (protocol && protocol !== SUBPROTOCOL_JSON) {
      this.#error(new ParleyError('bad_request', `server chose unsupported subprotocol ${protocol}`));
      this.end(link, 0, { action: 'stop', reason: DisconnectReason.Policy });
      return;
    }
    const id = this.#correlator.newId();
    this.#correlator.expect(id, { onReply: (reply) => this.#onConnectReply(link, reply), onLost: noop });
    link.write({ type: 'connect', id, token, device: this.#o.device, client: this.#o.client });
  }

  #onConnectReply(link: Link, reply: Frame): void {
    if (this.#link !== link) return;
    if (reply.ok !== true) {
      const err = ParleyError.fromReply(reply.error);
      this.#error(err);
      this.end(link, 0, connectErrorPolicy(err.code));
      return;
    }
    const result = resultOf<ConnectResult>(reply);
    if (typeof result.inbox_head !== 'number' || !Number.isSafeInteger(result.inbox_head)) {
      result.inbox_head = 0;
    }
    link.authenticate(result);
    this.#lastConnect = result;
    this.#reconnectAttempt = 0;

    const needSync = this.#hooks.resume(link, result);
    if (this.#link !== link) return;
    this.#setState(needSync ? ClientState.Syncing : ClientState.Connected);
    if (this.#link !== link) return;
    this.#emit('connected', result);
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const w of waiters) w.resolve(result);
    if (this.#link !== link) return;
    this.#scheduleHeartbeat(link);
    this.#hooks.ready(link, needSync);
  }

  /** Application-level keepalive: a `ping` every `heartbeat_ms`; no reply in time means a dead connection. */
  #scheduleHeartbeat(link: Link): void {
    const every = link.result?.heartbeat_ms;
    if (typeof every !== 'number' || !(every > 0)) return;
    link.timer(() => {
      link.call({ type: 'ping' }).then(
        () => {
          if (this.#link === link) this.#scheduleHeartbeat(link);
        },
        (err: ParleyError) => {
          if (this.#link !== link) return;
          if (err.code === 'timeout') {
            this.end(link, 0, { action: 'reconnect', reason: DisconnectReason.Timeout });
          } else this.#scheduleHeartbeat(link);
        },
      );
    }, every);
  }

  #onData(link: Link, data: unknown): void {
    if (typeof data !== 'string') {
      this.#error(new ParleyError('bad_request', 'binary frame from server ignored'));
      return;
    }
    const decoded = decodeServerFrame(data);
    if (decoded === null) {
      this.#error(new ParleyError('bad_request', 'malformed frame from server ignored'));
      return;
    }
    const frame = decoded as unknown as Frame;
    if (frame.type === 'reply') {
      const id = frame.id;
      if (typeof id !== 'string') {
        if (frame.ok === false) this.#error(ParleyError.fromReply(frame.error));
        return;
      }
      const entry = this.#correlator.take(id);
      if (!entry) return; // a reply after its request timed out
      link.confirm(entry.writeNo);
      entry.onReply(frame);
    } else if (frame.type === 'reconnect') {
      this.#onReconnectEvent(link, frame as unknown as ReconnectEvent);
    } else {
      this.#hooks.frame(link, frame);
    }
  }

  /** The server is draining: reconnect after `after_ms` (or when it closes, whichever is later). */
  #onReconnectEvent(link: Link, event: ReconnectEvent): void {
    const after = typeof event.after_ms === 'number' && event.after_ms > 0 ? event.after_ms : 0;
    link.drainAt = Date.now() + after;
    link.timer(
      () => this.end(link, 0, { action: 'reconnect', reason: DisconnectReason.ServerRestart }),
      after,
    );
    this.#emit('reconnect_requested', event);
  }

  /** After a connection or an attempt ended: stop, or schedule the next attempt. */
  #afterDisconnect(code: number, policy: ClosePolicy, drainAt: number | undefined): void {
    if (policy.action === 'stop') {
      this.stop(code, policy.reason);
      return;
    }
    if (policy.action === 'reconnect' && policy.refreshToken === true) this.#refreshToken = true;
    const o = this.#o;
    let delay: number;
    if (drainAt !== undefined) delay = Math.max(0, drainAt - Date.now());
    else if (policy.action === 'reconnect_hard') delay = hardBackoffDelay(o.maxDelay, o.random);
    else delay = backoffDelay(this.#reconnectAttempt++, o.minDelay, o.maxDelay, o.random);
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => void this.#attempt(), delay);
    const gen = this.#gen;
    this.#setState(ClientState.Connecting);
    if (gen !== this.#gen || this.#state !== ClientState.Connecting) return;
    this.#emit('disconnected', { code, reason: policy.reason, willReconnect: true, delayMs: delay });
  }
}
