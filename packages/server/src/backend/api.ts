import type { AppEvent } from '@parley/protocol';
import type { Account } from '../domain/account.js';
import type { Chat } from '../domain/chat.js';
import type { KeyService } from '../domain/keys.js';
import type { MediaService } from '../domain/media.js';
import type { OperatorPresence } from '../domain/presence.js';
import type { SessionsApi } from '../ports/sessions.js';

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
 * the backend process when gateways run as separate workers.
 */
export type ChatApi = Pick<Chat, (typeof CHAT_METHODS)[number]>;

/** The session operations a gateway calls, written once (see `CHAT_METHODS`). */
export const SESSION_METHODS = [
  'open',
  'close',
  'subscribe',
  'unsubscribe',
] as const satisfies readonly (keyof SessionsApi)[];

/** The account operations a gateway calls: devices, push registration, mutes (see `CHAT_METHODS`). */
export const ACCOUNT_METHODS = [
  'checkToken',
  'devices',
  'revokeDevice',
  'pushRegister',
  'pushUnregister',
  'mute',
  'unmute',
  'vapidPublicKey',
] as const satisfies readonly (keyof Account)[];

export type AccountApi = { [K in (typeof ACCOUNT_METHODS)[number]]: AsyncOf<Account[K]> };

/** A method as a proxy over IPC sees it: its result always comes as a promise. */
type AsyncOf<F> = F extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> : never;

/** The key directory and `to_device` operations a gateway calls (see `CHAT_METHODS`). */
export const KEYS_METHODS = [
  'uploadKeys',
  'claimKeys',
  'countKeys',
  'sendToDevice',
  'ackToDevice',
  'pendingToDevice',
] as const satisfies readonly (keyof KeyService)[];

export type KeysApi = Pick<KeyService, (typeof KEYS_METHODS)[number]>;

/** The media operations a gateway calls (see `CHAT_METHODS`). */
export const MEDIA_METHODS = ['upload', 'download'] as const satisfies readonly (keyof MediaService)[];

export type MediaApi = Pick<MediaService, (typeof MEDIA_METHODS)[number]>;

/**
 * What the operator (the server API) may do beyond a user's own operations: see anyone's presence
 * and close a user's connections everywhere. Gateways never call it.
 */
export interface OperatorApi {
  presenceOf(users: readonly string[]): Promise<OperatorPresence[]>;
  /** Resolves with how many connections were closed. */
  disconnectUser(user: string): Promise<number>;
  /** Sends an event to the user's live devices; resolves with how many were live. */
  publishEvent(user: string, event: AppEvent): Promise<number>;
}

/** Everything a gateway needs from the backend. */
export interface BackendApi {
  chat: ChatApi;
  sessions: SessionsApi;
  account: AccountApi;
  keys: KeysApi;
  media: MediaApi;
}
