import type { Chat } from '../domain/chat.js';
import type { PresenceView } from '../domain/presence.js';
import type { OutboundFrame } from '../ports/router.js';

/**
 * The chat operations a gateway may call, written once: the `ChatApi` type, the workers' IPC
 * proxy and the primary's allowlist are all derived from this list.
 */
export const CHAT_METHODS = [
  'send',
  'sync',
  'history',
  'conversations',
  'receipt',
  'receipts',
  'createGroup',
  'changeGroup',
  'groupInfo',
  'typing',
  'settings',
  'block',
  'unblock',
  'inboxHead',
  'createInvite',
  'revokeInvite',
  'joinGroup',
] as const satisfies readonly (keyof Chat)[];

/**
 * The chat operations a gateway calls: the domain's `Chat` itself in one process, or a proxy to
 * the core process when gateways run as separate workers.
 */
export type ChatApi = Pick<Chat, (typeof CHAT_METHODS)[number]>;

/** The session operations a gateway calls, written once (see `CHAT_METHODS`). */
export const SESSION_METHODS = [
  'open',
  'close',
  'subscribe',
  'unsubscribe',
] as const satisfies readonly (keyof SessionsApi)[];

/** A live, authenticated connection as the core knows it. */
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
  /** Registers a connection; resolves with the user's inbox head. Throws `forbidden` (close 4429) past the per-user cap. */
  open(ref: ConnectionRef): Promise<{ inboxHead: number }>;
  /** Unregisters a connection (a no-op when it was already replaced). */
  close(ref: ConnectionRef): Promise<void>;
  subscribe(ref: ConnectionRef, users: readonly string[]): Promise<PresenceView[]>;
  unsubscribe(ref: ConnectionRef, users: readonly string[]): Promise<void>;
}

/** Everything a gateway needs from the core. */
export interface CoreApi {
  chat: ChatApi;
  sessions: SessionsApi;
}

/** What the core calls on a gateway: live delivery and connection control. */
export interface GatewayLink {
  /** Writes a frame to every connection of `user` on this gateway. */
  deliver(user: string, frame: OutboundFrame): void;
  /** Writes a frame to one connection. */
  send(conn: string, frame: string): void;
  /** Closes one connection. */
  close(conn: string, code: number, reason: string): void;
}
