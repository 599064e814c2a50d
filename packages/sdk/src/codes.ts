/**
 * Client states, disconnect reasons and the reconnect policy per WebSocket close code, in one
 * table, as centrifuge-js keeps them in `src/codes.ts`.
 *
 * @module
 */

import { CloseCode } from '@parley/protocol';

/**
 * The connection states of {@link ParleyClient}. Every change goes through one place and is
 * emitted as a `state` event `{ from, to }`.
 *
 * ```
 * disconnected ──connect()──────────────▶ connecting
 * connecting   ──connect ok, behind─────▶ syncing ──caught up──▶ connected
 * connecting   ──connect ok, up to date─▶ connected
 * syncing | connected ──connection lost──▶ connecting   (reconnect after a delay)
 * any state    ──close(), 4409, 4400, 1008, 1009──▶ closed
 * closed       ──connect()──────────────▶ connecting
 * ```
 */
export const ClientState = {
  /** Initial state: `connect()` has not been called. Sends are queued. */
  Disconnected: 'disconnected',
  /** Opening a socket, waiting for the `connect` reply, or waiting out a reconnect delay. */
  Connecting: 'connecting',
  /** Connected and authenticated, catching up on the inbox with `sync`. Requests and sends flow. */
  Syncing: 'syncing',
  /** Connected and caught up: every inbox event up to the latest known one has been emitted. */
  Connected: 'connected',
  /** Stopped by `close()` or by a close code that must not be retried. `connect()` restarts. */
  Closed: 'closed',
} as const;
/** One of the {@link ClientState} values. */
export type ClientState = (typeof ClientState)[keyof typeof ClientState];

/**
 * Why a connection (or a connection attempt) ended. Carried by the `disconnected` event.
 */
export const DisconnectReason = {
  /** The application called `close()`. */
  ClientClosed: 'client_closed',
  /** The socket closed or failed without a more specific reason (network loss, 1000, 1001, 1006). */
  TransportClosed: 'transport_closed',
  /** No `connect` reply within `requestTimeoutMs` of opening the socket, or the server closed with 4408. */
  ConnectTimeout: 'connect_timeout',
  /** The server rejected the `connect` request with an error reply. */
  ConnectRejected: 'connect_rejected',
  /** The token was invalid or expired (close 4401, or an `unauthorized` connect reply); a fresh one is fetched. */
  TokenInvalid: 'token_invalid',
  /** `tokenProvider` threw or rejected; retried with backoff. */
  TokenProviderFailed: 'token_provider_failed',
  /** A newer connection of the same user and device replaced this one (4409). Not retried. */
  Replaced: 'replaced',
  /** The server is restarting or draining (1012, or a `reconnect` event). Retried after `after_ms`. */
  ServerRestart: 'server_restart',
  /** Too many connections for this user (4429), or the server said try again later (1013). Retried after a long delay. */
  TooManyConnections: 'too_many_connections',
  /** The server closed with 4400: this client sent frames it considers abuse. Not retried (a client bug). */
  ProtocolAbuse: 'protocol_abuse',
  /** The server closed with 1008 (origin not allowed, frame too large) or 1009. Not retried (a deployment or client bug). */
  Policy: 'policy',
  /** A `ping` or `send` got no reply within `requestTimeoutMs`: the connection is presumed dead. */
  Timeout: 'timeout',
} as const;
/** One of the {@link DisconnectReason} values. */
export type DisconnectReason = (typeof DisconnectReason)[keyof typeof DisconnectReason];

/** What the client does after a socket closes with a given code. */
export type ClosePolicy =
  | { action: 'reconnect'; reason: DisconnectReason; refreshToken?: boolean }
  | { action: 'reconnect_hard'; reason: DisconnectReason }
  | { action: 'stop'; reason: DisconnectReason };

/**
 * The reconnect policy for a server close code (the one table). Codes not listed (1000, 1001,
 * 1006, 1011, …) reconnect with normal backoff.
 */
export function closePolicy(code: number): ClosePolicy {
  switch (code) {
    case CloseCode.TokenInvalid:
      return { action: 'reconnect', reason: DisconnectReason.TokenInvalid, refreshToken: true };
    case CloseCode.Replaced:
      return { action: 'stop', reason: DisconnectReason.Replaced };
    case CloseCode.ServiceRestart:
      return { action: 'reconnect', reason: DisconnectReason.ServerRestart };
    case CloseCode.ConnectTimeout:
      return { action: 'reconnect', reason: DisconnectReason.ConnectTimeout };
    case CloseCode.TooManyConnections:
    case CloseCode.TryAgainLater:
      return { action: 'reconnect_hard', reason: DisconnectReason.TooManyConnections };
    case CloseCode.ProtocolAbuse:
      return { action: 'stop', reason: DisconnectReason.ProtocolAbuse };
    case CloseCode.Policy:
    case CloseCode.MessageTooBig:
      return { action: 'stop', reason: DisconnectReason.Policy };
    default:
      return { action: 'reconnect', reason: DisconnectReason.TransportClosed };
  }
}

/**
 * The policy after an error reply to `connect`: `unauthorized` fetches a fresh token (like
 * 4401); `bad_request` and `forbidden` stop (a bad device id or a refused client would fail
 * the same way forever); `rate_limited` waits long; anything else (`unavailable`, `internal`)
 * backs off normally.
 */
export function connectErrorPolicy(code: string): ClosePolicy {
  switch (code) {
    case 'unauthorized':
      return { action: 'reconnect', reason: DisconnectReason.TokenInvalid, refreshToken: true };
    case 'bad_request':
    case 'forbidden':
      return { action: 'stop', reason: DisconnectReason.ConnectRejected };
    case 'rate_limited':
      return { action: 'reconnect_hard', reason: DisconnectReason.ConnectRejected };
    default:
      return { action: 'reconnect', reason: DisconnectReason.ConnectRejected };
  }
}
