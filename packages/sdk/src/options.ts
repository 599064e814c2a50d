/**
 * The options of {@link ParleyClient} as the application gives them, and the one place that
 * validates them and fills in defaults, so every module reads complete, sane settings.
 *
 * @module
 */

import { type CursorStore, MemoryCursorStore } from './cursor.js';
import { defaultWebSocket, type WebSocketConstructor } from './transport.js';
import { nonNegative } from './util.js';

/** Version of this SDK; sent as `client: "parley-js/<version>"` unless `client` is given. */
export const SDK_VERSION = '0.1.0';

/** Largest `sync` page the protocol allows. */
const MAX_SYNC_LIMIT = 1000;

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

/** {@link ParleyClientOptions} validated, with every default applied (what the modules read). */
export interface ResolvedOptions {
  url: string;
  tokenProvider: TokenProvider;
  device: string;
  client: string;
  WebSocket: WebSocketConstructor;
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
 * Checks the required options (a `TypeError` naming the first one missing, so a misconfigured
 * client fails at construction, not on its first reconnect) and applies the defaults.
 */
export function resolveOptions(options: ParleyClientOptions): ResolvedOptions {
  if (typeof options?.url !== 'string' || options.url === '') {
    throw new TypeError('ParleyClient: url is required');
  }
  if (typeof options.tokenProvider !== 'function') {
    throw new TypeError('ParleyClient: tokenProvider is required');
  }
  if (typeof options.device !== 'string' || options.device === '') {
    throw new TypeError('ParleyClient: device is required');
  }
  const WebSocket = options.WebSocket ?? defaultWebSocket();
  if (!WebSocket) {
    throw new TypeError(
      'ParleyClient: no global WebSocket in this environment; pass the WebSocket option (e.g. `WebSocket` from the ws package)',
    );
  }
  const minDelay = nonNegative(options.minReconnectDelayMs, 500);
  const maxDelay = Math.max(minDelay, nonNegative(options.maxReconnectDelayMs, 20_000));
  const page = Math.floor(nonNegative(options.syncPageSize, 500));
  return {
    url: options.url,
    tokenProvider: options.tokenProvider,
    device: options.device,
    client: options.client ?? `parley-js/${SDK_VERSION}`,
    WebSocket,
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
}
