/**
 * The session seam between gateways (which hold sockets) and the session registry (which knows
 * every live device of the deployment): the registry's operations a gateway calls, and the link
 * through which the registry reaches a gateway. In one process both sides are objects; with
 * `--workers` they talk over IPC, in cluster mode over the bus.
 * @module
 */
import type { OutboundFrame } from './router.js';

/** One user's presence as a given watcher may see it. */
export interface PresenceView {
  user: string;
  status: 'online' | 'offline';
  last_seen?: number;
}

/** A live, authenticated connection as the backend knows it. */
export interface ConnectionRef {
  /** The gateway (process) holding the socket. */
  gateway: string;
  /** The connection's id, unique within its gateway. */
  conn: string;
  user: string;
  device: string;
}

/**
 * The deployment-wide table of live devices: one connection per device (a newer one replaces the
 * older, wherever it is), a cap per user, presence, and presence subscriptions (which belong to a
 * connection and end with it).
 */
export interface SessionsApi {
  /**
   * Registers a connection whose token was issued at `issuedAt` (ms); resolves with the user's
   * inbox head. Throws `unauthorized` (close 4401) for a device revoked after the token was
   * issued, `forbidden` (close 4429) past the per-user cap.
   */
  open(ref: ConnectionRef, issuedAt: number): Promise<{ inboxHead: number }>;
  /** Unregisters a connection (a no-op when it was already replaced). */
  close(ref: ConnectionRef): Promise<void>;
  subscribe(ref: ConnectionRef, users: readonly string[]): Promise<PresenceView[]>;
  unsubscribe(ref: ConnectionRef, users: readonly string[]): Promise<void>;
}

/** What the backend calls on a gateway: live delivery and connection control. */
export interface GatewayLink {
  /** Writes a frame to every connection of `user` on this gateway. */
  deliver(user: string, frame: OutboundFrame): void;
  /** Writes a frame to one connection. */
  send(conn: string, frame: string): void;
  /** Closes one connection. */
  close(conn: string, code: number, reason: string): void;
  /** Tells one connection that `to_device` messages wait for its device (it reads them in order). */
  toDeviceWaiting(conn: string): void;
}

/** What a session registry asks of a gateway in another process. */
export type GatewayCommand =
  | { t: 'deliver'; frames: { user: string; frame: string }[] }
  | { t: 'send'; conn: string; frame: string }
  | { t: 'close'; conn: string; code: number; reason: string }
  | { t: 'to_device'; conn: string };

/**
 * How a session registry reaches gateways held by other processes (cluster mode: the bus). A
 * registry without one serves only the gateways attached to it (embedded, and `--workers`, whose
 * workers are attached over IPC).
 */
export interface SessionTransport {
  /** Sends a command to the process holding `gateway`. */
  send(gateway: string, command: GatewayCommand): Promise<void>;
  /** Receives the commands sent to `gateway` (held here); resolves, once listening, with a stop. */
  listen(gateway: string, handle: (command: GatewayCommand) => void): Promise<() => Promise<void>>;
}
