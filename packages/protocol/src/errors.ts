/**
 * Error codes carried in `{"type":"reply","ok":false,"error":{"code", ...}}`, their HTTP statuses,
 * and WebSocket close codes. These are the only codes a client ever has to understand, so they
 * live in the protocol package and nowhere else.
 *
 * @module
 */

/**
 * The code of a failed reply (and of HTTP API errors). Clients branch on it: `rate_limited` and
 * `unavailable` mean "retry later", `gone` means "resync from conversations and history",
 * `bad_request` means "fix the frame", the rest mean "do not retry as is".
 */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'too_large'
  | 'rate_limited'
  | 'conflict'
  | 'unavailable'
  | 'internal'
  | 'gone';

/**
 * The HTTP status of each error code, for the HTTP API (history, conversations, admin). The one
 * table that maps protocol errors to HTTP; also the source of {@link ERROR_CODES}.
 */
export const ERROR_HTTP_STATUS: Readonly<Record<ErrorCode, number>> = Object.freeze({
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  too_large: 413,
  rate_limited: 429,
  conflict: 409,
  unavailable: 503,
  internal: 500,
  gone: 410,
});

/** Every error code, for exhaustive tests, documentation and decoders. */
export const ERROR_CODES: readonly ErrorCode[] = Object.freeze(Object.keys(ERROR_HTTP_STATUS) as ErrorCode[]);

/** Whether x is one of the protocol's error codes (for clients decoding replies from any server version). */
export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.hasOwn(ERROR_HTTP_STATUS, x);
}

/**
 * WebSocket close codes the server uses. The 4xxx codes mirror HTTP statuses so they are easy to
 * remember; a client must reconnect with a fresh token on `TokenInvalid`, must not reconnect on
 * `Replaced`, and backs off on `TryAgainLater`, `ServiceRestart` and `TooManyConnections`.
 */
export const CloseCode = {
  /** Normal closure. */
  Normal: 1000,
  /** The server or client is going away (e.g. page unload). */
  GoingAway: 1001,
  /** Policy violation: origin not allowed, frame too big at the transport. */
  Policy: 1008,
  /** A message larger than the transport accepts. */
  MessageTooBig: 1009,
  /** Server restart, after a `reconnect` event: reconnect (to any server). */
  ServiceRestart: 1012,
  /** Overloaded: reconnect later with backoff. */
  TryAgainLater: 1013,
  /** The client kept sending malformed frames. */
  ProtocolAbuse: 4400,
  /** The token is invalid or expired, or the device was revoked. */
  TokenInvalid: 4401,
  /** No successful `connect` within the connect timeout (10 s). */
  ConnectTimeout: 4408,
  /** A newer connection of the same user and device replaced this one. */
  Replaced: 4409,
  /** Too many connections for this user. */
  TooManyConnections: 4429,
} as const;

/** One of the {@link CloseCode} values. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
