/**
 * {@link ParleyClient}: one connection of one device to a Parley server, kept alive across
 * network loss, server restarts and token expiry; inbox events delivered exactly once and in
 * order across reconnects; sends retried with the same `cmid` until the server acknowledges.
 *
 * This file is the facade: the public API, and the wiring between the modules that do the
 * work, each socket-free where it can be: the state machine (`connection.ts`, one socket:
 * `link.ts`), request/reply correlation (`correlator.ts`), the send queue (`outbox.ts`), resume
 * and sync (`resume.ts`), receipts (`receipts.ts`), presence (`presence.ts`), typing
 * (`typing.ts`), and the one-request helpers (`request-methods.ts`).
 *
 * @module
 */

import {
  type AppEvent,
  type ConnectResult,
  directConv,
  type MessageEvent,
  type PresenceInfo,
  type PresenceSubResult,
  type ReceiptEvent,
  type ReceiptKind,
  type SendResult,
  type SyncResult,
  type ToDeviceEvent,
  type TypingEvent,
  type TypingState,
} from '@parley/protocol';
import { ClientState, DisconnectReason } from './codes.js';
import { Connection } from './connection.js';
import { Correlator, RequestQueue } from './correlator.js';
import { ParleyError } from './errors.js';
import {
  type AnyInboxEvent,
  type AnyServerEvent,
  asError,
  type Emit,
  type ParleyClientEvents,
} from './events.js';
import type { Link } from './link.js';
import { type ParleyClientOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { Outbox, type SendOptions } from './outbox.js';
import { PresenceTracker } from './presence.js';
import { ReceiptCoalescer, wantsDeliveredReceipt } from './receipts.js';
import { RequestMethods } from './request-methods.js';
import { InboxResume } from './resume.js';
import { TypingController, type TypingControllerOptions, TypingLimiter } from './typing.js';
import { type Frame, resultOf } from './util.js';

/**
 * A Parley client: one device's connection to a Parley server.
 *
 * It connects, authenticates with a token from `tokenProvider`, catches up on the inbox with
 * `sync` from the saved cursor, then stays connected: it reconnects with full-jitter backoff
 * after network loss, with a fresh token after 4401, after `after_ms` when the server drains,
 * and stops for good only on 4409 (replaced), 4400, 1008/1009 or {@link ParleyClient.close}.
 * Inbox events (`message`, `receipt`) are emitted exactly once per inbox number and in order,
 * whatever mix of live events, sync pages and reconnects brought them. Sends are queued while
 * offline and retried with the same `cmid` until acknowledged. Receipts are coalesced per
 * conversation (and `delivered` ones sent automatically), presence subscriptions survive
 * reconnects, and typing indicators are rate-limited locally.
 *
 * @example
 * ```ts
 * import { ParleyClient } from '@parley/sdk';
 * import { WebSocket } from 'ws'; // Node 20 only; browsers have a global WebSocket
 *
 * const client = new ParleyClient({
 *   url: 'ws://localhost:8080/v1/ws',
 *   device: 'laptop-1',
 *   tokenProvider: () => fetchToken(),
 *   WebSocket,
 * });
 * client.on('message', (m) => console.log(m.from, m.body));
 * await client.connect();
 * await client.send(client.directConv('bob'), 'hi bob');
 * ```
 */
export class ParleyClient extends RequestMethods {
  readonly #o: ResolvedOptions;
  readonly #correlator = new Correlator();
  readonly #requests: RequestQueue;
  readonly #conn: Connection;
  readonly #resume: InboxResume;
  readonly #outbox: Outbox;
  readonly #receipts: ReceiptCoalescer;
  readonly #presence: PresenceTracker;
  readonly #typing: TypingLimiter;

  constructor(options: ParleyClientOptions) {
    super();
    const o = resolveOptions(options);
    this.#o = o;
    const emit: Emit = (event, payload) => this.emit(event, payload);
    const correlator = this.#correlator;
    this.#requests = new RequestQueue(correlator, o.requestTimeout);
    this.#conn = new Connection(o, correlator, emit, {
      prepare: (stale) => this.#resume.prepare(stale),
      resume: (link, result) => this.#resume.onConnect(link, result.inbox_head),
      ready: (link, needSync) => this.#ready(link, needSync),
      frame: (link, frame) => this.#onFrame(link, frame),
      // Receipts written since the last confirmed write may have died with the socket: write them again.
      lost: (link) => this.#receipts.requeueAfter(link.confirmedWrite),
      stopped: (err) => {
        this.#requests.rejectAll(err);
        this.#outbox.rejectAll(err.message);
        this.#receipts.clear();
      },
    });
    this.#resume = new InboxResume({
      store: o.cursorStore,
      pageSize: o.syncPageSize,
      minDelayMs: o.minDelay,
      maxDelayMs: o.maxDelay,
      random: o.random,
      emit,
      deliver: (event) => this.#deliverInbox(event),
      open: () => this.#conn.state !== ClientState.Closed,
      current: () => this.#conn.link,
      caughtUp: () => this.#conn.caughtUp(),
    });
    this.#outbox = new Outbox({
      correlator,
      channel: () => this.#conn.ready,
      requestTimeoutMs: o.requestTimeout,
      maxAttempts: o.sendMaxAttempts,
      minDelayMs: o.sendMinDelay,
      maxDelayMs: o.sendMaxDelay,
      random: o.random,
    });
    this.#receipts = new ReceiptCoalescer(
      (conv, kind, seq) => this.#writeReceipt(conv, kind, seq),
      o.receiptInterval,
    );
    this.#presence = new PresenceTracker(emit);
    this.#typing = new TypingLimiter(o.typingInterval);
  }

  // -------------------------------------------------------------------------------------------
  // Public state

  /** The current state (see {@link ClientState}). */
  get state(): ClientState {
    return this.#conn.state;
  }

  /** The authenticated user id, known after the first successful connect. */
  get userId(): string | undefined {
    return this.#conn.lastConnect?.user;
  }

  /** The result of the latest successful `connect`. */
  get connectResult(): ConnectResult | undefined {
    return this.#conn.lastConnect;
  }

  /** The inbox cursor: the highest inbox number emitted with no gap below it. */
  get inboxCursor(): number {
    return this.#resume.cursor;
  }

  /** Sends not yet acknowledged by the server (queued, waiting to retry, or in flight). */
  get pendingSends(): number {
    return this.#outbox.size;
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  /**
   * Starts connecting (if not already) and resolves with the `connect` result once connected.
   * It keeps retrying through transient failures, so it settles only on success, or rejects
   * (code `closed`) if the client is closed or stopped by a terminal close code first. After
   * `close()` or a stop, calling it again starts over (the cursor is kept).
   */
  connect(): Promise<ConnectResult> {
    return this.#conn.connect();
  }

  /**
   * Resolves when the client is connected and caught up (state `connected`); rejects with
   * `closed` if the client stops first.
   */
  whenSynced(): Promise<void> {
    if (this.state === ClientState.Connected && !this.#resume.hasGap) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const offSynced = this.on('synced', () => {
        offSynced();
        offState();
        resolve();
      });
      const offState = this.on('state', ({ to }) => {
        if (to !== ClientState.Closed) return;
        offSynced();
        offState();
        reject(new ParleyError('closed', 'client closed'));
      });
    });
  }

  /**
   * Ends the connection for good: no reconnect; pending requests and unacknowledged sends reject
   * with code `closed`. Resolves once the cursor store has finished saving. `connect()` may be
   * called again afterwards.
   */
  async close(): Promise<void> {
    if (this.state !== ClientState.Closed) this.#conn.stop(0, DisconnectReason.ClientClosed);
    await this.#resume.saved();
  }

  // -------------------------------------------------------------------------------------------
  // Messaging

  /**
   * Sends a message and resolves when the server has durably stored it. Assigns a `cmid`
   * (unless given), queues while offline, and retries with the same `cmid` after reconnects,
   * timeouts and retryable errors (`unavailable`, `internal`, `rate_limited` after
   * `retry_after_ms`), so the message is stored once (a retry of a send that had been stored resolves with `dup: true`).
   * Rejects on `bad_request`, `forbidden`, `not_found`, `too_large`, `conflict` and other
   * non-retryable codes, on `close()`, or after `sendRetry.maxAttempts`; the error carries the
   * `cmid`. Sends are written in call order, and after a reconnect every unacknowledged send is
   * written again in that order.
   */
  send(conv: string, body: string, options: SendOptions = {}): Promise<SendResult> {
    if (this.state === ClientState.Closed) {
      return Promise.reject(new ParleyError('closed', 'client is closed'));
    }
    return this.#outbox.add(conv, body, options);
  }

  /**
   * The direct conversation id with another user (`dm:<a>:<b>`, sorted). Needs the user id,
   * so it throws before the first successful connect.
   */
  directConv(otherUser: string): string {
    const me = this.userId;
    if (me === undefined) {
      throw new ParleyError('disconnected', 'directConv: not connected yet (user id unknown)');
    }
    return directConv(me, otherUser);
  }

  /**
   * Low level: fetches one page of inbox events after `after` (default: the cursor). It does not
   * move the cursor nor emit events; the client already syncs by itself on every connect and
   * whenever it sees a gap.
   */
  sync(params: { after?: number; limit?: number } = {}): Promise<SyncResult> {
    return this.request<SyncResult>('sync', {
      after: params.after ?? this.#resume.cursor,
      limit: params.limit ?? this.#o.syncPageSize,
    });
  }

  /**
   * Marks everything up to `seq` in `conv` as received by this user. Fire-and-forget (a
   * `receipt` frame without `id`), coalesced: per conversation the highest value is written at
   * most once per `receiptIntervalMs` (the first at once), values already covered by an earlier
   * `delivered` or `read` are dropped, and while offline the highest value is kept and written on
   * the next connect. With `autoDeliveredReceipts` (the default) the client calls this itself for
   * every message from another user.
   */
  markDelivered(conv: string, seq: number): void {
    this.#receipts.mark(conv, 'delivered', seq);
  }

  /**
   * Marks everything up to `seq` in `conv` as read (implies delivered). Fire-and-forget and
   * coalesced like {@link ParleyClient.markDelivered}: call it freely (e.g. for every message
   * scrolled into view); only the highest value per conversation goes out, at most once per
   * `receiptIntervalMs`.
   */
  markRead(conv: string, seq: number): void {
    this.#receipts.mark(conv, 'read', seq);
  }

  // -------------------------------------------------------------------------------------------
  // Presence and typing

  /**
   * Subscribes to users' presence and resolves with their current presence (in the order
   * asked). The client keeps the set of subscribed users: subscriptions belong to a connection
   * on the server, so it subscribes again after every reconnect. Whenever the known presence of
   * a subscribed user changes (first status learned, live `presence` events, statuses renewed
   * after a reconnect) a `presence` event is emitted and {@link ParleyClient.presence} updated.
   * If the server refuses the subscription (e.g. `too_large`), the users added by this call are
   * dropped from the set again; if the connection is lost meanwhile they stay and are
   * subscribed on the next connection.
   */
  async subscribePresence(users: string[]): Promise<PresenceSubResult> {
    return this.#presence.subscribe(users, () => this.request<PresenceSubResult>('presence_sub', { users }));
  }

  /** Ends presence subscriptions (also for future reconnects) and forgets those users' presence. */
  async unsubscribePresence(users: string[]): Promise<void> {
    this.#presence.unsubscribe(users);
    await this.request('presence_unsub', { users });
  }

  /**
   * The last known presence of a subscribed user (`{ user, status, last_seen? }`), or undefined
   * when not subscribed or not known yet. While the client is offline it keeps the last value;
   * the renewal after reconnecting refreshes it.
   */
  presence(user: string): PresenceInfo | undefined {
    return this.#presence.get(user);
  }

  /** The users whose presence this client is subscribed to. */
  get presenceSubscriptions(): string[] {
    return this.#presence.users;
  }

  /**
   * Tells the other members that this user started or stopped typing. Fire-and-forget. A `start`
   * within `typingIntervalMs` (2 s) of the last one sent for the same conversation is dropped
   * locally (the server would drop it too) and returns false; `stop` is always sent and ends the
   * interval, so the next `start` goes out at once. Returns false as well while not connected
   * (a late typing indicator is wrong), true when the frame was written.
   * For keystroke handling with an automatic `stop`, see {@link ParleyClient.typingController}.
   */
  typing(conv: string, state: TypingState): boolean {
    const link = this.#conn.ready;
    if (!link) return false;
    const now = Date.now();
    if (!this.#typing.allows(conv, state, now)) return false;
    if (!link.write({ type: 'typing', conv, state })) return false;
    this.#typing.wrote(conv, state, now);
    return true;
  }

  /**
   * A {@link TypingController} for `conv`: call `input()` on every keystroke and `stop()` when
   * the message is sent; it sends `stop` by itself after `idleMs` (default 3 s) without input.
   */
  typingController(conv: string, options: TypingControllerOptions = {}): TypingController {
    return new TypingController(this, conv, options);
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  /**
   * Sends any request and resolves with its result fields (the reply without `type`, `id` and
   * `ok`), or rejects with a {@link ParleyError}: the server's error code, `timeout` after
   * `requestTimeoutMs` (counted from this call), `disconnected` if the connection ended while it
   * was in flight (it is not retried: it may have been applied), or `closed`. Called while not
   * connected, the request waits for the connection within the same timeout. For ops without a
   * dedicated method (`push_register`, `keys_*`, `media_*`, `devices`, …).
   */
  request<T = Frame>(type: string, params: Frame = {}): Promise<T> {
    if (this.state === ClientState.Closed) {
      return Promise.reject(new ParleyError('closed', 'client is closed'));
    }
    return this.#requests.request(type, params, this.#conn.ready).then((reply) => resultOf<T>(reply));
  }

  // -------------------------------------------------------------------------------------------
  // Internals: the wiring between the modules

  /** A throwing listener is reported as `error` (unless it was an `error` listener, or nobody listens). */
  protected override onListenerError(event: keyof ParleyClientEvents, err: unknown): void {
    if (event !== 'error' && this.listenerCount('error') > 0) this.emit('error', asError(err));
    else super.onListenerError(event, err);
  }

  /**
   * A connection is ready (state set, `connected` emitted): start the catch-up sync if needed,
   * then write what waited for a connection: receipts, presence subscriptions, requests, sends.
   */
  #ready(link: Link, needSync: boolean): void {
    if (needSync) this.#resume.startSync(link);
    this.#receipts.flush();
    if (this.#conn.link !== link) return;
    this.#presence.renew(
      (frame) => link.call(frame),
      () => this.#conn.link === link,
    );
    this.#requests.flush(link);
    this.#outbox.pump();
    if (!needSync && this.#conn.link === link) this.emit('synced', { inbox: this.#resume.cursor });
  }

  /** A server event (not a reply): presence, typing, an inbox event, or anything else. */
  #onFrame(link: Link, frame: Frame): void {
    if (frame.type === 'presence') this.#presence.note(frame);
    else if (frame.type === 'typing') this.emit('typing', frame as unknown as TypingEvent);
    else if (frame.type === 'to_device') this.emit('to_device', frame as unknown as ToDeviceEvent);
    else if (frame.type === 'app_event') this.emit('app_event', frame as unknown as AppEvent);
    else if (typeof frame.inbox === 'number') {
      if (link.authed) this.#resume.offer(link, frame as AnyInboxEvent);
    } else this.emit('event', frame as AnyServerEvent);
  }

  /** One inbox event, in order and exactly once: `inbox`, then `message` or `receipt`. */
  #deliverInbox(event: AnyInboxEvent): void {
    this.emit('inbox', event);
    if (event.type === 'message') {
      const m = event as unknown as MessageEvent;
      this.emit('message', m);
      if (this.#o.autoDelivered && wantsDeliveredReceipt(m, this.userId)) {
        this.#receipts.mark(m.conv, 'delivered', m.seq);
      }
    } else if (event.type === 'receipt') this.emit('receipt', event as unknown as ReceiptEvent);
  }

  /** Writes a receipt frame for the coalescer: its write number, or null while not connected (it stays pending). */
  #writeReceipt(conv: string, kind: ReceiptKind, seq: number): number | null {
    const link = this.#conn.ready;
    return link?.write({ type: 'receipt', conv, kind, seq }) ? this.#correlator.writeNo : null;
  }
}
