/**
 * The events of {@link ParleyClient}: one typed map of event names to payloads (as
 * centrifuge-js types its events), and the `emit` function the client hands to its modules so
 * that each can report what it saw without holding the client itself.
 *
 * @module
 */

import type {
  AppEvent,
  ConnectResult,
  MessageEvent,
  PresenceEvent,
  ReceiptEvent,
  ReconnectEvent,
  ToDeviceEvent,
  TypingEvent,
} from '@parley/protocol';
import type { ClientState, DisconnectReason } from './codes.js';
import { ParleyError } from './errors.js';

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
  /**
   * A `to_device` message for this device (key exchange, sender keys): delivered after each
   * connect from the device's queue, in `qid` order, until acknowledged with `ackToDevice`.
   */
  to_device: ToDeviceEvent;
  /** An event the app's backend published to this user's live devices (never stored). */
  app_event: AppEvent;
  /** A server event with no dedicated client event. */
  event: AnyServerEvent;
}

/**
 * Emits one client event. The modules get this instead of the client, so each can be built and
 * tested with a recording function in its place.
 */
export type Emit = <K extends keyof ParleyClientEvents>(event: K, payload: ParleyClientEvents[K]) => void;

/** What an `error` event carries for anything thrown (a token provider or cursor store may throw non-errors). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : ParleyError.from(err);
}
