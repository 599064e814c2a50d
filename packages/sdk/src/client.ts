/**
 * {@link ParleyClient}: one connection of one device to a Parley server, kept alive across
 * network loss, server restarts and token expiry; inbox events delivered exactly once and in
 * order across reconnects; sends retried with the same `cmid` until the server acknowledges.
 *
 * @module
 */

import {
  type ConnectResult,
  type ConversationsResult,
  type CreateGroupResult,
  type CreateInviteResult,
  decodeServerFrame,
  directConv,
  encodeFrame,
  type GroupAddPolicy,
  type GroupInfoResult,
  type GroupRole,
  type HistoryResult,
  type LastSeenVisibility,
  type MessageEvent,
  type PingResult,
  type PresenceEvent,
  type PresenceInfo,
  type PresenceSubResult,
  type ReceiptEvent,
  type ReceiptKind,
  type ReceiptsResult,
  type ReconnectEvent,
  type SendResult,
  type SettingsResult,
  SUBPROTOCOL_JSON,
  type SyncResult,
  type TypingEvent,
  type TypingState,
} from '@parley/protocol';
import { backoffDelay, hardBackoffDelay } from './backoff.js';
import { ClientState, type ClosePolicy, closePolicy, connectErrorPolicy, DisconnectReason } from './codes.js';
import { type CursorStore, MemoryCursorStore } from './cursor.js';
import { TypedEmitter } from './emitter.js';
import { isRetryableSendError, ParleyError } from './errors.js';
import { InboxSequencer } from './inbox.js';
import { ReceiptCoalescer } from './receipts.js';
import { parseSystemMessage, removesMember } from './system.js';
import { defaultWebSocket, type WebSocketConstructor, type WebSocketLike, WS_OPEN } from './transport.js';
import { TypingController, type TypingControllerOptions } from './typing.js';

/** Version of this SDK; sent as `client: "parley-js/<version>"` unless `client` is given. */
export const SDK_VERSION = '0.1.0';

/** Largest `sync` page the protocol allows. */
const MAX_SYNC_LIMIT = 1000;
/** Most users in one `presence_sub` (the per-connection subscription limit). */
const MAX_PRESENCE_USERS = 1000;

/** What the client tells {@link TokenProvider} about the token it needs. */
export interface TokenRequest {
  /**
   * True when the server rejected the previous token (close 4401 or an `unauthorized`
   * `connect` reply): a cached token must not be returned again.
   */
  refresh: boolean;
}

/**
 * Returns a JWT for `connect`. Called before every connection attempt (so a token that expired
 * while offline is never presented); cache inside it if fetching is expensive, and bypass the
 * cache when `refresh` is true. A throw or rejection is retried with backoff.
 */
export type TokenProvider = (request: TokenRequest) => string | Promise<string>;

/** How unacknowledged sends are retried. */
export interface SendRetryOptions {
  /**
   * Failed attempts (retryable error reply, timeout, or connection lost with the send in flight)
   * after which the send's promise rejects. Default: unlimited (a send waits until it is
   * acknowledged, it fails for good, or `close()` is called).
   */
  maxAttempts?: number;
  /** Backoff window of the first retry after an `unavailable`/`internal` reply. Default `minReconnectDelayMs`. */
  minDelayMs?: number;
  /** Largest backoff window between retries. Default `maxReconnectDelayMs`. */
  maxDelayMs?: number;
}

/** Options of {@link ParleyClient}. */
export interface ParleyClientOptions {
  /** The server's WebSocket URL, e.g. `wss://chat.example.com/v1/ws`. */
  url: string;
  /** Supplies the JWT for each connection attempt. */
  tokenProvider: TokenProvider;
  /** This installation's device id (`^[A-Za-z0-9_.-]{1,64}$`), stable across runs. */
  device: string;
  /** Client name and version sent in `connect`. Default `parley-js/<SDK_VERSION>`. */
  client?: string;
  /** The WebSocket class. Default `globalThis.WebSocket`; in Node 20 pass `WebSocket` from `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Where the inbox cursor is persisted. Default a {@link MemoryCursorStore}. */
  cursorStore?: CursorStore;
  /** Backoff window of the first reconnect. Default 500 ms. */
  minReconnectDelayMs?: number;
  /** Largest backoff window; also the scale of the long delay after 4429/1013. Default 20000 ms. */
  maxReconnectDelayMs?: number;
  /** How long a request waits for its reply (and a new socket for its `connect` reply). Default 10000 ms. */
  requestTimeoutMs?: number;
  /** Retry policy of {@link ParleyClient.send}. */
  sendRetry?: SendRetryOptions;
  /** `limit` of each `sync` page (1..1000). Default 500. */
  syncPageSize?: number;
  /** Random numbers in `[0, 1)` for backoff jitter. Default `Math.random`; inject for deterministic tests. */
  random?: () => number;
  /**
   * Send a `delivered` receipt for every message received from another user (default true).
   * Receipts are coalesced per conversation (see `receiptIntervalMs`); the user's own messages
   * never get one (sending implies reading), nor does the system message that removed this user.
   */
  autoDeliveredReceipts?: boolean;
  /**
   * Receipts of one conversation and kind are written at most once per this interval, carrying
   * the highest `seq` asked for; the first after a quiet interval goes out at once. Default 200 ms.
   */
  receiptIntervalMs?: number;
  /**
   * `typing(conv, 'start')` sends at most one `start` per conversation per this interval (the
   * server forwards no more than one per 2 s anyway). Default 2000 ms.
   */
  typingIntervalMs?: number;
}

/** Payload of the `state` event. */
export interface StateChange {
  from: ClientState;
  to: ClientState;
}

/** Payload of the `disconnected` event: a connection or a connection attempt ended. */
export interface DisconnectInfo {
  /** The WebSocket close code from the server, or 0 when the client ended the connection itself. */
  code: number;
  /** Why (see {@link DisconnectReason}). */
  reason: DisconnectReason;
  /** Whether the client will try again (false: the state is now `closed`). */
  willReconnect: boolean;
  /** When it will try again, if it will. */
  delayMs?: number;
}

/** Payload of the `synced` event. */
export interface SyncedInfo {
  /** The inbox cursor: every inbox event up to it has been emitted. */
  inbox: number;
}

/**
 * Payload of the `resync_required` event: inbox events between `from` and `to` will never be
 * emitted, so the application must rebuild its state from `conversations()` and `history()`.
 */
export interface ResyncRequired {
  /**
   * `gone`: the events are past the server's inbox retention. `cursor_ahead`: the saved cursor
   * is beyond the server's `inbox_head` (the server's data was reset, or the cursor store
   * belongs to another account); the cursor was moved back to `inbox_head`.
   */
  reason: 'gone' | 'cursor_ahead';
  /** The cursor before. */
  from: number;
  /** The cursor after. */
  to: number;
}

/** Any inbox event (including kinds this SDK version does not know), as emitted by `inbox`. */
export interface AnyInboxEvent {
  type: string;
  inbox: number;
  [field: string]: unknown;
}

/** A server event the client does not handle itself (e.g. `to_device`), as emitted by `event`. */
export interface AnyServerEvent {
  type: string;
  [field: string]: unknown;
}

/** The events of {@link ParleyClient} and their payloads. */
export interface ParleyClientEvents {
  /** The state changed. */
  state: StateChange;
  /** A `connect` succeeded (every (re)connection). */
  connected: ConnectResult;
  /** A connection or connection attempt ended. */
  disconnected: DisconnectInfo;
  /** A new message (an inbox event), exactly once per inbox number, in inbox order. Includes this device's own sends. */
  message: MessageEvent;
  /**
   * A watermark moved (an inbox event), exactly once, in inbox order: another member received or
   * read messages this user sent, or (`read`, `user` = this user) another device of this user
   * marked a conversation read.
   */
  receipt: ReceiptEvent;
  /** Every inbox event, of any type, exactly once, in inbox order (before `message`/`receipt`). */
  inbox: AnyInboxEvent;
  /**
   * The known presence of a subscribed user changed: the first status learned from
   * `subscribePresence`, a live change, or a status renewed after a reconnect. Not stored by the
   * server; never emitted for users not (or no longer) subscribed.
   */
  presence: PresenceEvent;
  /** Another member started or stopped typing (live only; never this user's own). */
  typing: TypingEvent;
  /** The server is draining; the client will reconnect after `after_ms`. */
  reconnect_requested: ReconnectEvent;
  /** A sync finished and the client is caught up to every inbox number it knows of. */
  synced: SyncedInfo;
  /** Some inbox events cannot be delivered; rebuild from `conversations`/`history`. */
  resync_required: ResyncRequired;
  /** Something went wrong that the client handles itself (retries), reported for logging. */
  error: Error;
  /** A server event with no dedicated client event. */
  event: AnyServerEvent;
}

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

/** Parameters of {@link ParleyClient.history}. */
export interface HistoryParams {
  /** Messages with `seq` below this (exclusive); newest page first when neither is given. */
  before?: number;
  /** Messages with `seq` above this (exclusive). */
  after?: number;
  /** Page size (≤ 200). */
  limit?: number;
}

/** Parameters of {@link ParleyClient.conversations}. */
export interface ConversationsParams {
  limit?: number;
  /** Conversations whose last activity is before this time (for paging). */
  before_ts?: number;
}

/** Parameters of {@link ParleyClient.settings}; no fields reads the settings. */
export interface SettingsParams {
  read_receipts?: boolean;
  last_seen?: LastSeenVisibility;
  /** `nobody`: others cannot put this user in groups; they join through invites only. */
  group_add?: GroupAddPolicy;
}

/** Parameters of {@link ParleyClient.createInvite}. */
export interface CreateInviteParams {
  /** How long the code lives (default 7 days, at most 30). */
  expires_in_ms?: number;
  /** How many users may join with it (default: any number until it expires). */
  max_uses?: number;
}

type Frame = Record<string, unknown>;
type Timer = ReturnType<typeof setTimeout>;

/** A request written to the current socket, waiting for its reply. */
interface Inflight {
  onReply(frame: Frame): void;
  /** The connection ended (`disconnected`) or the client stopped (`closed`). */
  onLost(err: ParleyError): void;
  /** Number of the write that carried the request (see `#writeNo`). */
  writeNo?: number;
}

/** One socket, from creation until it closes. */
interface Conn {
  readonly ws: WebSocketLike;
  authed: boolean;
  result: ConnectResult | undefined;
  /** Set by a `reconnect` event: when to reconnect. */
  drainAt: number | undefined;
  syncRunning: boolean;
  connectTimer: Timer | undefined;
  readonly timers: Set<Timer>;
  /**
   * Every write numbered up to this one reached the server: a reply came to a request written
   * after it (the server reads a socket's frames in order).
   */
  confirmedWrite: number;
}

/** A public request, written now or when the client is next connected. */
interface QueuedRequest {
  readonly frame: Frame;
  resolve(reply: Frame): void;
  reject(err: ParleyError): void;
  timer: Timer | undefined;
  id: string | undefined;
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

interface Resolved {
  url: string;
  tokenProvider: TokenProvider;
  device: string;
  client: string;
  WebSocket: WebSocketConstructor | undefined;
  cursorStore: CursorStore;
  minDelay: number;
  maxDelay: number;
  requestTimeout: number;
  sendMaxAttempts: number;
  sendMinDelay: number;
  sendMaxDelay: number;
  syncPageSize: number;
  random: () => number;
  autoDelivered: boolean;
  receiptInterval: number;
  typingInterval: number;
}

/**
 * Result of a group change (`addMembers`, `removeMembers`, `leave`, `updateGroup`, `setRole`):
 * the position of the system message that records it. `seq` and `ts` are absent when nothing
 * changed (adding existing members, renaming to the same name, …), which makes retries safe.
 */
export interface GroupChangeResult {
  conv: string;
  seq?: number;
  ts?: number;
}

const noop = (): void => {};

function isObject(x: unknown): x is Frame {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The result fields of a reply: everything but `type`, `id` and `ok`. */
function resultOf<T>(reply: Frame): T {
  const { type: _type, id: _id, ok: _ok, ...rest } = reply;
  return rest as T;
}

/**
 * A random UUID v4 for a `cmid`. `crypto.randomUUID` exists only in secure contexts in browsers
 * (https, localhost), so a page served over plain http falls back to `getRandomValues`.
 */
function newCmid(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** `value` if it is a finite number >= 0, else `fallback`. */
function nonNegative(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

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
export class ParleyClient extends TypedEmitter<ParleyClientEvents> {
  readonly #o: Resolved;
  #state: ClientState = ClientState.Disconnected;
  #conn: Conn | null = null;
  /** Bumped by every connection attempt and by a stop: async steps of older ones give up. */
  #gen = 0;
  #nextId = 0;
  /** Frames written so far, over all connections (numbers writes, for receipt confirmation). */
  #writeNo = 0;
  #reconnectAttempt = 0;
  #reconnectTimer: Timer | undefined;
  #pumpTimer: Timer | undefined;
  #refreshToken = false;
  #lastConnect: ConnectResult | undefined;
  #connectWaiters: { resolve(r: ConnectResult): void; reject(e: ParleyError): void }[] = [];
  readonly #inflight = new Map<string, Inflight>();
  #waiting: QueuedRequest[] = [];
  #sends: OutgoingSend[] = [];
  readonly #receipts: ReceiptCoalescer;
  /** Users whose presence this client subscribed to (renewed on every connection). */
  readonly #presenceSubs = new Set<string>();
  /** Last known presence of subscribed users. */
  readonly #presenceKnown = new Map<string, PresenceInfo>();
  /** When the last `typing: start` of each conversation was written. */
  readonly #typingStarts = new Map<string, number>();
  readonly #seq: InboxSequencer<AnyInboxEvent>;
  #cursorLoaded = false;
  #savedCursor = -1;
  #saving: Promise<void> | null = null;
  #saveAgain = false;

  constructor(options: ParleyClientOptions) {
    super();
    if (typeof options?.url !== 'string' || options.url === '') {
      throw new TypeError('ParleyClient: url is required');
    }
    if (typeof options.tokenProvider !== 'function') {
      throw new TypeError('ParleyClient: tokenProvider is required');
    }
    if (typeof options.device !== 'string' || options.device === '') {
      throw new TypeError('ParleyClient: device is required');
    }
    const minDelay = nonNegative(options.minReconnectDelayMs, 500);
    const maxDelay = Math.max(minDelay, nonNegative(options.maxReconnectDelayMs, 20_000));
    const page = Math.floor(nonNegative(options.syncPageSize, 500));
    this.#o = {
      url: options.url,
      tokenProvider: options.tokenProvider,
      device: options.device,
      client: options.client ?? `parley-js/${SDK_VERSION}`,
      WebSocket: options.WebSocket ?? defaultWebSocket(),
      cursorStore: options.cursorStore ?? new MemoryCursorStore(),
      minDelay,
      maxDelay,
      requestTimeout: nonNegative(options.requestTimeoutMs, 10_000),
      sendMaxAttempts:
        options.sendRetry?.maxAttempts !== undefined && options.sendRetry.maxAttempts >= 1
          ? options.sendRetry.maxAttempts
          : Number.POSITIVE_INFINITY,
      sendMinDelay: nonNegative(options.sendRetry?.minDelayMs, minDelay),
      sendMaxDelay: nonNegative(options.sendRetry?.maxDelayMs, maxDelay),
      syncPageSize: Math.min(MAX_SYNC_LIMIT, Math.max(1, page)),
      random: options.random ?? Math.random,
      autoDelivered: options.autoDeliveredReceipts !== false,
      receiptInterval: nonNegative(options.receiptIntervalMs, 200),
      typingInterval: nonNegative(options.typingIntervalMs, 2000),
    };
    if (!this.#o.WebSocket) {
      throw new TypeError(
        'ParleyClient: no global WebSocket in this environment; pass the WebSocket option (e.g. `WebSocket` from the ws package)',
      );
    }
    this.#seq = new InboxSequencer<AnyInboxEvent>(0, (event) => this.#deliverInbox(event), {
      open: () => this.#state !== ClientState.Closed,
    });
    this.#receipts = new ReceiptCoalescer(
      (conv, kind, seq) => this.#writeReceipt(conv, kind, seq),
      this.#o.receiptInterval,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Public state

  /** The current state (see {@link ClientState}). */
  get state(): ClientState {
    return this.#state;
  }

  /** The authenticated user id, known after the first successful connect. */
  get userId(): string | undefined {
    return this.#lastConnect?.user;
  }

  /** The result of the latest successful `connect`. */
  get connectResult(): ConnectResult | undefined {
    return this.#lastConnect;
  }

  /** The inbox cursor: the highest inbox number emitted with no gap below it. */
  get inboxCursor(): number {
    return this.#seq.cursor;
  }

  /** Sends not yet acknowledged by the server (queued, waiting to retry, or in flight). */
  get pendingSends(): number {
    return this.#sends.length;
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
    if (this.#conn?.authed && this.#conn.result) return Promise.resolve(this.#conn.result);
    const promise = new Promise<ConnectResult>((resolve, reject) => {
      this.#connectWaiters.push({ resolve, reject });
    });
    if (this.#state === ClientState.Disconnected || this.#state === ClientState.Closed) {
      this.#setState(ClientState.Connecting);
      void this.#attempt();
    }
    return promise;
  }

  /**
   * Resolves when the client is connected and caught up (state `connected`); rejects with
   * `closed` if the client stops first.
   */
  whenSynced(): Promise<void> {
    if (this.#state === ClientState.Connected && !this.#seq.hasGap) return Promise.resolve();
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
    if (this.#state !== ClientState.Closed) this.#stop(0, DisconnectReason.ClientClosed);
    while (this.#saving) await this.#saving;
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
    if (this.#state === ClientState.Closed) {
      return Promise.reject(new ParleyError('closed', 'client is closed'));
    }
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
      this.#pumpSends();
    });
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
      after: params.after ?? this.#seq.cursor,
      limit: params.limit ?? this.#o.syncPageSize,
    });
  }

  /** A page of a conversation's messages, ascending by `seq`. */
  history(conv: string, params: HistoryParams = {}): Promise<HistoryResult> {
    return this.request<HistoryResult>('history', { conv, ...params });
  }

  /** The user's conversations, most recent first, with unread counts. */
  conversations(params: ConversationsParams = {}): Promise<ConversationsResult> {
    return this.request<ConversationsResult>('conversations', { ...params });
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

  /**
   * Every member's delivered/read watermarks in a conversation ("message info" screen). `read`
   * is 0 for members whose read receipts are off, and for everyone when this user's are off
   * (except this user's own).
   */
  receipts(conv: string): Promise<ReceiptsResult> {
    return this.request<ReceiptsResult>('receipts', { conv });
  }

  /** Round trip to the server; resolves with the server's time. */
  ping(): Promise<PingResult> {
    return this.request<PingResult>('ping', {});
  }

  // -------------------------------------------------------------------------------------------
  // Groups

  /**
   * Creates a group with this user as its admin and first member; resolves with its
   * conversation id. Its first message (seq 1) is the `created` system message.
   */
  createGroup(name: string, members: string[]): Promise<CreateGroupResult> {
    return this.request<CreateGroupResult>('create_group', { name, members }).then((r) => ({ conv: r.conv }));
  }

  /** Adds users to a group (admins only). New members see the group from the system message on. */
  addMembers(conv: string, users: string[]): Promise<GroupChangeResult> {
    return this.#groupChange('add_members', { conv, users });
  }

  /** Removes users from a group (admins; any member may remove themself, like {@link ParleyClient.leave}). */
  removeMembers(conv: string, users: string[]): Promise<GroupChangeResult> {
    return this.#groupChange('remove_members', { conv, users });
  }

  /** Leaves a group. If this user was its last admin, the longest-standing member is promoted. */
  leave(conv: string): Promise<GroupChangeResult> {
    return this.#groupChange('leave', { conv });
  }

  /** Renames a group (admins only). */
  updateGroup(conv: string, params: { name: string }): Promise<GroupChangeResult> {
    return this.#groupChange('update_group', { conv, name: params.name });
  }

  /** Sets a member's role (admins only); demoting the last admin is `conflict`. */
  setRole(conv: string, user: string, role: GroupRole): Promise<GroupChangeResult> {
    return this.#groupChange('set_role', { conv, user, role });
  }

  /** A group's name, creation time and active members (in join order) with roles and `joined_seq`. */
  groupInfo(conv: string): Promise<GroupInfoResult> {
    return this.request<GroupInfoResult>('group_info', { conv });
  }

  /**
   * Makes an invite code to a group (admins only). Share the code; whoever holds it may join with
   * {@link ParleyClient.joinGroup} until it expires, is revoked or used up, and while this user
   * stays an admin of the group. The server keeps only a hash: the code cannot be shown again.
   */
  createInvite(conv: string, params: CreateInviteParams = {}): Promise<CreateInviteResult> {
    const frame: Frame = { conv };
    if (params.expires_in_ms !== undefined) frame.expires_in_ms = params.expires_in_ms;
    if (params.max_uses !== undefined) frame.max_uses = params.max_uses;
    return this.request<CreateInviteResult>('create_invite', frame).then((r) => ({
      code: r.code,
      expires_ts: r.expires_ts,
    }));
  }

  /** Revokes an invite code of a group (admins only). Idempotent. */
  async revokeInvite(conv: string, code: string): Promise<void> {
    await this.request('revoke_invite', { conv, code });
  }

  /**
   * Joins a group with an invite code; resolves with the group and the `members_added` system
   * message's position (no `seq` when this user already was a member). A code that is unknown,
   * expired, revoked or used up fails with `not_found`.
   */
  joinGroup(code: string): Promise<GroupChangeResult> {
    return this.#groupChange('join_group', { code });
  }

  // -------------------------------------------------------------------------------------------
  // Presence, typing, settings, blocking

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
    const added = users.filter((u) => !this.#presenceSubs.has(u));
    for (const u of added) this.#presenceSubs.add(u);
    let result: PresenceSubResult;
    try {
      result = await this.request<PresenceSubResult>('presence_sub', { users });
    } catch (e) {
      const err = ParleyError.from(e);
      if (err.code !== 'disconnected' && err.code !== 'timeout') {
        for (const u of added) this.#presenceSubs.delete(u);
      }
      throw err;
    }
    const presence = Array.isArray(result.presence) ? result.presence : [];
    for (const p of presence) this.#notePresence(p);
    return { presence };
  }

  /** Ends presence subscriptions (also for future reconnects) and forgets those users' presence. */
  async unsubscribePresence(users: string[]): Promise<void> {
    for (const u of users) {
      this.#presenceSubs.delete(u);
      this.#presenceKnown.delete(u);
    }
    await this.request('presence_unsub', { users });
  }

  /**
   * The last known presence of a subscribed user (`{ user, status, last_seen? }`), or undefined
   * when not subscribed or not known yet. While the client is offline it keeps the last value;
   * the renewal after reconnecting refreshes it.
   */
  presence(user: string): PresenceInfo | undefined {
    const p = this.#presenceKnown.get(user);
    return p === undefined ? undefined : { ...p };
  }

  /** The users whose presence this client is subscribed to. */
  get presenceSubscriptions(): string[] {
    return [...this.#presenceSubs];
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
    const conn = this.#conn;
    if (conn?.authed !== true) return false;
    const now = Date.now();
    if (state === 'start') {
      const last = this.#typingStarts.get(conv);
      if (last !== undefined && now - last < this.#o.typingInterval) return false;
    }
    if (!this.#write(conn, { type: 'typing', conv, state })) return false;
    // A stop does not reset the interval: the server forwards one start per 2 s, stop or not.
    if (state === 'start') {
      if (this.#typingStarts.size >= 1000) this.#pruneTypingStarts(now);
      this.#typingStarts.set(conv, now);
    }
    return true;
  }

  /**
   * A {@link TypingController} for `conv`: call `input()` on every keystroke and `stop()` when
   * the message is sent; it sends `stop` by itself after `idleMs` (default 3 s) without input.
   */
  typingController(conv: string, options: TypingControllerOptions = {}): TypingController {
    return new TypingController(this, conv, options);
  }

  /**
   * Reads this user's privacy settings, or changes some and resolves with all of them:
   * `read_receipts` (default true; off means no `read` receipts to or from others) and
   * `last_seen` (`everyone` or `nobody`: hide the time in presence) and `group_add`
   * (`everyone` or `nobody`: only invites put this user in groups).
   */
  async settings(patch: SettingsParams = {}): Promise<SettingsResult> {
    const params: Frame = {};
    if (patch.read_receipts !== undefined) params.read_receipts = patch.read_receipts;
    if (patch.last_seen !== undefined) params.last_seen = patch.last_seen;
    if (patch.group_add !== undefined) params.group_add = patch.group_add;
    const r = await this.request<SettingsResult>('settings', params);
    return { read_receipts: r.read_receipts, last_seen: r.last_seen, group_add: r.group_add };
  }

  /**
   * Blocks a user: their sends to this user's direct conversation fail with `forbidden`, this
   * user gets no typing from them, and they see this user offline without `last_seen`. Groups
   * are unaffected. Idempotent.
   */
  async block(user: string): Promise<void> {
    await this.request('block', { user });
  }

  /** Removes a block. Idempotent. */
  async unblock(user: string): Promise<void> {
    await this.request('unblock', { user });
  }

  /**
   * Sends any request and resolves with its result fields (the reply without `type`, `id` and
   * `ok`), or rejects with a {@link ParleyError}: the server's error code, `timeout` after
   * `requestTimeoutMs` (counted from this call), `disconnected` if the connection ended while it
   * was in flight (it is not retried: it may have been applied), or `closed`. Called while not
   * connected, the request waits for the connection within the same timeout. For ops without a
   * dedicated method (`push_register`, `keys_*`, `media_*`, `devices`, …).
   */
  request<T = Frame>(type: string, params: Frame = {}): Promise<T> {
    if (this.#state === ClientState.Closed) {
      return Promise.reject(new ParleyError('closed', 'client is closed'));
    }
    const timeout = this.#o.requestTimeout;
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
        if (q.id !== undefined) this.#inflight.delete(q.id);
        reject(new ParleyError('timeout', `${type}: no reply within ${timeout} ms`));
      }, timeout);
      const conn = this.#conn;
      if (conn?.authed) this.#writeRequest(conn, q);
      else this.#waiting.push(q);
    }).then((reply) => resultOf<T>(reply));
  }

  // -------------------------------------------------------------------------------------------
  // Internals: state, errors

  #setState(to: ClientState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.emit('state', { from, to });
  }

  #emitError(err: unknown): void {
    this.emit('error', err instanceof Error ? err : ParleyError.from(err));
  }

  protected override onListenerError(event: keyof ParleyClientEvents, err: unknown): void {
    if (event !== 'error' && this.listenerCount('error') > 0) this.#emitError(err);
    else super.onListenerError(event, err);
  }

  #newId(): string {
    this.#nextId += 1;
    return String(this.#nextId);
  }

  // -------------------------------------------------------------------------------------------
  // Internals: connecting

  async #attempt(): Promise<void> {
    const gen = ++this.#gen;
    this.#reconnectTimer = undefined;
    if (!this.#cursorLoaded) {
      let loaded: unknown;
      try {
        loaded = await this.#o.cursorStore.load();
      } catch (err) {
        if (gen !== this.#gen) return;
        this.#emitError(err);
        this.#afterDisconnect(
          0,
          { action: 'reconnect', reason: DisconnectReason.TransportClosed },
          undefined,
        );
        return;
      }
      if (gen !== this.#gen) return;
      const cursor = typeof loaded === 'number' && Number.isSafeInteger(loaded) && loaded >= 0 ? loaded : 0;
      if (cursor !== loaded) {
        this.#emitError(new ParleyError('internal', `cursor store returned ${String(loaded)}`));
      }
      this.#seq.reset(cursor);
      this.#savedCursor = cursor;
      this.#cursorLoaded = true;
    }
    let token: unknown;
    try {
      token = await this.#o.tokenProvider({ refresh: this.#refreshToken });
      if (typeof token !== 'string' || token === '') throw new TypeError('tokenProvider returned no token');
    } catch (err) {
      if (gen !== this.#gen) return;
      this.#emitError(err);
      this.#afterDisconnect(
        0,
        { action: 'reconnect', reason: DisconnectReason.TokenProviderFailed },
        undefined,
      );
      return;
    }
    if (gen !== this.#gen) return;
    this.#refreshToken = false;
    let ws: WebSocketLike;
    try {
      const WS = this.#o.WebSocket as WebSocketConstructor;
      ws = new WS(this.#o.url, [SUBPROTOCOL_JSON]);
    } catch (err) {
      this.#emitError(err);
      this.#afterDisconnect(0, { action: 'reconnect', reason: DisconnectReason.TransportClosed }, undefined);
      return;
    }
    const conn: Conn = {
      ws,
      authed: false,
      result: undefined,
      drainAt: undefined,
      syncRunning: false,
      connectTimer: undefined,
      timers: new Set(),
      confirmedWrite: this.#writeNo,
    };
    this.#conn = conn;
    conn.connectTimer = this.#connTimer(
      conn,
      () => this.#endConnection(conn, 0, { action: 'reconnect', reason: DisconnectReason.ConnectTimeout }),
      this.#o.requestTimeout,
    );
    ws.onopen = () => {
      if (this.#conn === conn) this.#onOpen(conn, token as string);
    };
    ws.onmessage = (event: { data?: unknown }) => {
      if (this.#conn === conn) this.#onData(conn, event.data);
    };
    ws.onclose = (event: { code?: number }) => {
      if (this.#conn !== conn) return;
      const code = typeof event.code === 'number' ? event.code : 1006;
      this.#endConnection(conn, code, closePolicy(code));
    };
    // An error is always followed by a close event, which does the work.
    ws.onerror = noop;
  }

  #onOpen(conn: Conn, token: string): void {
    const protocol = conn.ws.protocol;
    if (protocol && protocol !== SUBPROTOCOL_JSON) {
      this.#emitError(new ParleyError('bad_request', `server chose unsupported subprotocol ${protocol}`));
      this.#endConnection(conn, 0, { action: 'stop', reason: DisconnectReason.Policy });
      return;
    }
    const id = this.#newId();
    this.#inflight.set(id, { onReply: (reply) => this.#onConnectReply(conn, reply), onLost: noop });
    this.#write(conn, { type: 'connect', id, token, device: this.#o.device, client: this.#o.client });
  }

  #onConnectReply(conn: Conn, reply: Frame): void {
    if (this.#conn !== conn) return;
    if (reply.ok !== true) {
      const err = ParleyError.fromReply(reply.error);
      this.#emitError(err);
      this.#endConnection(conn, 0, connectErrorPolicy(err.code));
      return;
    }
    const result = resultOf<ConnectResult>(reply);
    if (typeof result.inbox_head !== 'number' || !Number.isSafeInteger(result.inbox_head)) {
      result.inbox_head = 0;
    }
    if (conn.connectTimer !== undefined) {
      clearTimeout(conn.connectTimer);
      conn.timers.delete(conn.connectTimer);
      conn.connectTimer = undefined;
    }
    conn.authed = true;
    conn.result = result;
    this.#lastConnect = result;
    this.#reconnectAttempt = 0;

    const seq = this.#seq;
    if (seq.cursor > result.inbox_head) {
      const from = seq.cursor;
      seq.reset(result.inbox_head);
      this.#saveCursor();
      this.emit('resync_required', { reason: 'cursor_ahead', from, to: result.inbox_head });
      if (this.#conn !== conn) return;
    }
    seq.noteHead(result.inbox_head);
    const needSync = seq.hasGap;
    this.#setState(needSync ? ClientState.Syncing : ClientState.Connected);
    if (this.#conn !== conn) return;
    this.emit('connected', result);
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const w of waiters) w.resolve(result);
    if (this.#conn !== conn) return;

    if (needSync) this.#startSync(conn);
    this.#flushOnConnect(conn);
    this.#scheduleHeartbeat(conn);
    if (!needSync && this.#conn === conn) this.emit('synced', { inbox: seq.cursor });
  }

  /** Writes what waited for a connection: receipts, presence subscriptions, requests, sends. */
  #flushOnConnect(conn: Conn): void {
    this.#receipts.flush();
    if (this.#conn !== conn) return;
    if (this.#presenceSubs.size > 0) {
      const users = [...this.#presenceSubs];
      for (let i = 0; i < users.length; i += MAX_PRESENCE_USERS) {
        this.#call(conn, { type: 'presence_sub', users: users.slice(i, i + MAX_PRESENCE_USERS) }).then(
          (reply) => {
            if (this.#conn !== conn || !Array.isArray(reply.presence)) return;
            for (const p of reply.presence) this.#notePresence(p);
          },
          (err) => {
            if (this.#conn === conn) this.#emitError(err);
          },
        );
      }
    }
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const q of waiting) this.#writeRequest(conn, q);
    this.#pumpSends();
  }

  /** Application-level keepalive: a `ping` every `heartbeat_ms`; no reply in time means a dead connection. */
  #scheduleHeartbeat(conn: Conn): void {
    const every = conn.result?.heartbeat_ms;
    if (typeof every !== 'number' || !(every > 0)) return;
    this.#connTimer(
      conn,
      () => {
        this.#call(conn, { type: 'ping' }).then(
          () => {
            if (this.#conn === conn) this.#scheduleHeartbeat(conn);
          },
          (err: ParleyError) => {
            if (this.#conn !== conn) return;
            if (err.code === 'timeout') {
              this.#endConnection(conn, 0, { action: 'reconnect', reason: DisconnectReason.Timeout });
            } else this.#scheduleHeartbeat(conn);
          },
        );
      },
      every,
    );
  }

  /** A timer that dies with its connection. */
  #connTimer(conn: Conn, fn: () => void, ms: number): Timer {
    const t = setTimeout(() => {
      conn.timers.delete(t);
      fn();
    }, ms);
    conn.timers.add(t);
    return t;
  }

  /** Closes a socket and detaches it, so none of its events reach the client any more. */
  #teardown(conn: Conn): void {
    for (const t of conn.timers) clearTimeout(t);
    conn.timers.clear();
    const ws = conn.ws;
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

  /** Fails everything in flight on the connection that just ended. */
  #failInflight(err: ParleyError): void {
    const entries = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const entry of entries) entry.onLost(err);
  }

  /** The current connection ended (server close, network loss, or the client gave up on it). */
  #endConnection(conn: Conn, code: number, policy: ClosePolicy): void {
    if (this.#conn !== conn) return;
    this.#conn = null;
    this.#teardown(conn);
    // When the client stops for good, everything pending fails alike with `closed`.
    const lostCode = policy.action === 'stop' ? 'closed' : 'disconnected';
    this.#failInflight(new ParleyError(lostCode, `connection lost (${policy.reason})`));
    // Receipts written since the last confirmed write may have died with the socket: write them again.
    if (policy.action !== 'stop') this.#receipts.requeueAfter(conn.confirmedWrite);
    this.#afterDisconnect(code, policy, conn.drainAt);
  }

  /** After a connection or an attempt ended: stop, or schedule the next attempt. */
  #afterDisconnect(code: number, policy: ClosePolicy, drainAt: number | undefined): void {
    if (policy.action === 'stop') {
      this.#stop(code, policy.reason);
      return;
    }
    if (policy.action === 'reconnect' && policy.refreshToken === true) this.#refreshToken = true;
    let delay: number;
    if (drainAt !== undefined) delay = Math.max(0, drainAt - Date.now());
    else if (policy.action === 'reconnect_hard') delay = hardBackoffDelay(this.#o.maxDelay, this.#o.random);
    else delay = backoffDelay(this.#reconnectAttempt++, this.#o.minDelay, this.#o.maxDelay, this.#o.random);
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => void this.#attempt(), delay);
    const gen = this.#gen;
    this.#setState(ClientState.Connecting);
    if (gen !== this.#gen || this.#state !== ClientState.Connecting) return;
    this.emit('disconnected', { code, reason: policy.reason, willReconnect: true, delayMs: delay });
  }

  /** Stops for good (close() or a terminal close code): state `closed`, everything pending rejected. */
  #stop(code: number, reason: DisconnectReason): void {
    this.#gen += 1;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    const conn = this.#conn;
    this.#conn = null;
    if (conn) this.#teardown(conn);
    const err = new ParleyError('closed', `client closed (${reason})`);
    this.#failInflight(err);
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const q of waiting) {
      clearTimeout(q.timer);
      q.reject(err);
    }
    const sends = this.#sends;
    this.#sends = [];
    for (const s of sends) {
      clearTimeout(s.timer);
      s.reject(new ParleyError('closed', err.message, { cmid: s.cmid }));
    }
    this.#receipts.clear();
    const from = this.#state;
    this.#setState(ClientState.Closed);
    if (from !== ClientState.Disconnected && from !== ClientState.Closed) {
      this.emit('disconnected', { code, reason, willReconnect: false });
    }
    const waiters = this.#connectWaiters;
    this.#connectWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  // -------------------------------------------------------------------------------------------
  // Internals: frames

  #write(conn: Conn, frame: Frame): boolean {
    if (conn.ws.readyState !== WS_OPEN) return false;
    try {
      conn.ws.send(encodeFrame(frame));
      this.#writeNo += 1;
      if (typeof frame.id === 'string') {
        const entry = this.#inflight.get(frame.id);
        if (entry) entry.writeNo = this.#writeNo;
      }
      return true;
    } catch (err) {
      this.#emitError(err);
      return false;
    }
  }

  /** A request on a given connection (internal: connect-time work, sync, heartbeat). */
  #call(conn: Conn, frame: Frame): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      const id = this.#newId();
      const timeout = this.#o.requestTimeout;
      const timer = setTimeout(() => {
        this.#inflight.delete(id);
        reject(new ParleyError('timeout', `${String(frame.type)}: no reply within ${timeout} ms`));
      }, timeout);
      this.#inflight.set(id, {
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
      this.#write(conn, { ...frame, id });
    });
  }

  #writeRequest(conn: Conn, q: QueuedRequest): void {
    const id = this.#newId();
    q.id = id;
    this.#inflight.set(id, {
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
    this.#write(conn, { ...q.frame, id });
  }

  #onData(conn: Conn, data: unknown): void {
    if (typeof data !== 'string') {
      this.#emitError(new ParleyError('bad_request', 'binary frame from server ignored'));
      return;
    }
    const decoded = decodeServerFrame(data);
    if (decoded === null) {
      this.#emitError(new ParleyError('bad_request', 'malformed frame from server ignored'));
      return;
    }
    const frame = decoded as unknown as Frame;
    switch (frame.type) {
      case 'reply': {
        const id = frame.id;
        if (typeof id !== 'string') {
          if (frame.ok === false) this.#emitError(ParleyError.fromReply(frame.error));
          return;
        }
        const entry = this.#inflight.get(id);
        if (!entry) return; // a reply after its request timed out
        this.#inflight.delete(id);
        if (entry.writeNo !== undefined && entry.writeNo > conn.confirmedWrite) {
          conn.confirmedWrite = entry.writeNo;
        }
        entry.onReply(frame);
        return;
      }
      case 'presence':
        this.#notePresence(frame);
        return;
      case 'typing':
        this.emit('typing', frame as unknown as TypingEvent);
        return;
      case 'reconnect':
        this.#onReconnectEvent(conn, frame as unknown as ReconnectEvent);
        return;
    }
    if (typeof frame.inbox === 'number') {
      if (!conn.authed) return;
      this.#seq.offer(frame as AnyInboxEvent);
      this.#saveCursor();
      if (this.#conn === conn && this.#seq.hasGap) this.#startSync(conn);
      return;
    }
    this.emit('event', frame as AnyServerEvent);
  }

  /** The server is draining: reconnect after `after_ms` (or when it closes, whichever is later). */
  #onReconnectEvent(conn: Conn, event: ReconnectEvent): void {
    const after = typeof event.after_ms === 'number' && event.after_ms > 0 ? event.after_ms : 0;
    conn.drainAt = Date.now() + after;
    this.#connTimer(
      conn,
      () => this.#endConnection(conn, 0, { action: 'reconnect', reason: DisconnectReason.ServerRestart }),
      after,
    );
    this.emit('reconnect_requested', event);
  }

  // -------------------------------------------------------------------------------------------
  // Internals: inbox

  #deliverInbox(event: AnyInboxEvent): void {
    this.emit('inbox', event);
    if (event.type === 'message') {
      const m = event as unknown as MessageEvent;
      this.emit('message', m);
      if (this.#o.autoDelivered) this.#autoDelivered(m);
    } else if (event.type === 'receipt') this.emit('receipt', event as unknown as ReceiptEvent);
  }

  /** `autoDeliveredReceipts`: a `delivered` receipt for a message from someone else. */
  #autoDelivered(m: MessageEvent): void {
    const me = this.userId;
    if (me === undefined || m.from === me || typeof m.conv !== 'string' || typeof m.seq !== 'number') return;
    // After the system message that removed this user every receipt would be refused.
    if (m.kind === 'system' && removesMember(parseSystemMessage(m), me)) return;
    this.#receipts.mark(m.conv, 'delivered', m.seq);
  }

  #startSync(conn: Conn): void {
    if (conn.syncRunning) return;
    conn.syncRunning = true;
    void this.#syncLoop(conn);
  }

  /**
   * Pages through `sync` from the cursor until the server has nothing more and no gap is left.
   * Live events keep arriving meanwhile and go through the same sequencer, so whichever copy
   * of an inbox number comes first is emitted and the other is dropped.
   */
  async #syncLoop(conn: Conn): Promise<void> {
    const seq = this.#seq;
    let idle = 0;
    try {
      while (this.#conn === conn) {
        const before = seq.cursor;
        let reply: Frame;
        try {
          reply = await this.#call(conn, { type: 'sync', after: seq.cursor, limit: this.#o.syncPageSize });
        } catch (e) {
          if (this.#conn !== conn) return;
          const err = ParleyError.from(e);
          if (err.code === 'gone') {
            this.#onGone(conn);
            if (this.#conn !== conn) return;
            if (!seq.hasGap) break;
            continue;
          }
          this.#emitError(err);
          await this.#sleep(
            conn,
            err.retryAfterMs ?? backoffDelay(idle++, this.#o.minDelay, this.#o.maxDelay, this.#o.random),
          );
          continue;
        }
        if (this.#conn !== conn) return;
        const events = Array.isArray(reply.events) ? reply.events : [];
        for (const event of events) if (isObject(event)) seq.offer(event as AnyInboxEvent);
        if (typeof reply.inbox_head === 'number') seq.noteHead(reply.inbox_head);
        this.#saveCursor();
        if (this.#conn !== conn) return;
        const progressed = seq.cursor > before;
        if (progressed) idle = 0;
        if (reply.more === true && progressed) continue;
        if (!seq.hasGap) break;
        // The server says there is nothing more, yet an inbox number it announced is missing (its
        // read path lags its live path), or it says more but sent nothing new: wait, then retry.
        if (!progressed) {
          await this.#sleep(conn, backoffDelay(idle++, this.#o.minDelay, this.#o.maxDelay, this.#o.random));
        }
      }
    } finally {
      conn.syncRunning = false;
    }
    if (this.#conn !== conn) return;
    if (this.#state === ClientState.Syncing) this.#setState(ClientState.Connected);
    if (this.#conn === conn) this.emit('synced', { inbox: seq.cursor });
  }

  /** `sync` answered `gone`: skip to the server's head (from `connect`) and tell the application to resync. */
  #onGone(conn: Conn): void {
    const seq = this.#seq;
    const from = seq.cursor;
    const head = conn.result?.inbox_head ?? 0;
    const to = from < head ? head : seq.known;
    seq.jumpTo(to);
    this.#saveCursor();
    this.emit('resync_required', { reason: 'gone', from, to: seq.cursor });
  }

  #sleep(conn: Conn, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#connTimer(conn, resolve, ms);
    });
  }

  /** Saves the cursor if it moved; one save at a time, the latest value wins. */
  #saveCursor(): void {
    if (this.#saving) {
      this.#saveAgain = true;
      return;
    }
    const value = this.#seq.cursor;
    if (value === this.#savedCursor || !this.#cursorLoaded) return;
    let result: Promise<void> | void;
    try {
      result = this.#o.cursorStore.save(value);
    } catch (err) {
      this.#emitError(err);
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      this.#saving = (result as Promise<void>)
        .then(
          () => {
            this.#savedCursor = value;
          },
          (err: unknown) => this.#emitError(err),
        )
        .finally(() => {
          this.#saving = null;
          if (this.#saveAgain) {
            this.#saveAgain = false;
            this.#saveCursor();
          }
        });
    } else {
      this.#savedCursor = value;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Internals: receipts and sends

  /** Writes a receipt frame for the coalescer: its write number, or null while not connected (it stays pending). */
  #writeReceipt(conv: string, kind: ReceiptKind, seq: number): number | null {
    const conn = this.#conn;
    return conn?.authed === true && this.#write(conn, { type: 'receipt', conv, kind, seq })
      ? this.#writeNo
      : null;
  }

  async #groupChange(type: string, params: Frame): Promise<GroupChangeResult> {
    const r = await this.request<GroupChangeResult>(type, params);
    const result: GroupChangeResult = { conv: r.conv };
    if (typeof r.seq === 'number') result.seq = r.seq;
    if (typeof r.ts === 'number') result.ts = r.ts;
    return result;
  }

  /** Records a subscribed user's presence (from an event or a `presence_sub` reply); emits `presence` when it changed. */
  #notePresence(p: unknown): void {
    if (!isObject(p) || typeof p.user !== 'string' || (p.status !== 'online' && p.status !== 'offline'))
      return;
    if (!this.#presenceSubs.has(p.user)) return; // unsubscribed meanwhile
    const info: PresenceInfo = { user: p.user, status: p.status };
    if (typeof p.last_seen === 'number') info.last_seen = p.last_seen;
    const prev = this.#presenceKnown.get(info.user);
    if (prev && prev.status === info.status && prev.last_seen === info.last_seen) return;
    this.#presenceKnown.set(info.user, info);
    this.emit('presence', { type: 'presence', ...info });
  }

  #pruneTypingStarts(now: number): void {
    for (const [conv, t] of this.#typingStarts) {
      if (now - t >= this.#o.typingInterval) this.#typingStarts.delete(conv);
    }
  }

  /**
   * Writes unsent sends in call order. A send waiting out a retry delay holds back every send
   * after it (head-of-line), so that a retried message is not overtaken by later ones.
   */
  #pumpSends(): void {
    clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    const conn = this.#conn;
    if (!conn?.authed) return;
    const now = Date.now();
    for (const s of this.#sends) {
      if (s.reqId !== undefined) continue;
      if (s.notBefore > now) {
        this.#pumpTimer = setTimeout(() => this.#pumpSends(), s.notBefore - now);
        return;
      }
      this.#writeSend(conn, s);
      if (this.#conn !== conn) return;
    }
  }

  #writeSend(conn: Conn, s: OutgoingSend): void {
    const id = this.#newId();
    s.reqId = id;
    s.timer = setTimeout(() => {
      // No reply: the connection is presumed dead. Reconnecting resends every unacknowledged
      // send in order; the server deduplicates by cmid.
      if (this.#conn === conn && s.reqId === id) {
        this.#endConnection(conn, 0, { action: 'reconnect', reason: DisconnectReason.Timeout });
      }
    }, this.#o.requestTimeout);
    this.#inflight.set(id, {
      onReply: (reply) => this.#onSendReply(s, reply),
      onLost: (err) => this.#onSendFailed(s, err),
    });
    this.#write(conn, { ...s.frame, id });
  }

  #onSendReply(s: OutgoingSend, reply: Frame): void {
    clearTimeout(s.timer);
    s.reqId = undefined;
    if (reply.ok === true) {
      this.#removeSend(s);
      const r = resultOf<SendResult>(reply);
      const result: SendResult = { conv: r.conv, seq: r.seq, ts: r.ts };
      if (r.dup === true) result.dup = true;
      s.resolve(result);
      return;
    }
    const err = ParleyError.fromReply(reply.error);
    this.#onSendFailed(s, err);
    if (this.#sends.includes(s)) {
      s.notBefore =
        Date.now() +
        (err.retryAfterMs ??
          backoffDelay(s.failures - 1, this.#o.sendMinDelay, this.#o.sendMaxDelay, this.#o.random));
      this.#pumpSends();
    }
  }

  /** An attempt failed: reject for good, or leave the send queued for the next write. */
  #onSendFailed(s: OutgoingSend, err: ParleyError): void {
    clearTimeout(s.timer);
    s.reqId = undefined;
    s.failures += 1;
    if (err.code !== 'closed' && isRetryableSendError(err.code) && s.failures < this.#o.sendMaxAttempts) {
      return;
    }
    this.#removeSend(s);
    s.reject(
      new ParleyError(err.code, err.message, {
        cmid: s.cmid,
        ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
      }),
    );
  }

  #removeSend(s: OutgoingSend): void {
    const i = this.#sends.indexOf(s);
    if (i >= 0) this.#sends.splice(i, 1);
  }
}
