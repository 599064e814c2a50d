/**
 * `@parley/sdk`: the Parley client library for browsers and Node.js.
 *
 * {@link ParleyClient} keeps one device connected to a Parley server: a connection state
 * machine with full-jitter reconnect backoff, resume by inbox cursor (every inbox event
 * emitted exactly once, in order), and sends retried with the same client message id until
 * the server acknowledges them; typed helpers for groups (and their system messages), coalesced
 * receipts, presence, typing, settings and blocking. See the package README for usage.
 *
 * @module
 */

export type {
  AppEvent,
  ConnectResult,
  ConversationSummary,
  ConversationsResult,
  CreateGroupResult,
  CreateInviteResult,
  DeviceInfo,
  DeviceKeyBundle,
  DevicesResult,
  ErrorCode,
  GroupAddPolicy,
  GroupInfoResult,
  GroupMember,
  GroupRole,
  HistoryResult,
  InboxEvent,
  KeysClaimResult,
  KeysCountResult,
  LastSeenVisibility,
  MediaDownloadResult,
  MediaUploadResult,
  MessageEvent,
  MessageObject,
  PingResult,
  PresenceEvent,
  PresenceInfo,
  PresenceStatus,
  PresenceSubResult,
  ReceiptEvent,
  ReceiptKind,
  ReceiptsResult,
  ReconnectEvent,
  SendResult,
  SettingsResult,
  SyncResult,
  ToDeviceEvent,
  TypingEvent,
  TypingState,
  WebPushSubscription,
} from '@parley/protocol';
export { CloseCode } from '@parley/protocol';
export { backoffDelay, hardBackoffDelay } from './backoff.js';
export { ParleyClient } from './client.js';
export { ClientState, type ClosePolicy, closePolicy, connectErrorPolicy, DisconnectReason } from './codes.js';
export { type CursorStore, MemoryCursorStore } from './cursor.js';
export { type Listener, TypedEmitter } from './emitter.js';
export { type ClientErrorCode, isRetryableSendError, ParleyError, type ParleyErrorCode } from './errors.js';
export type {
  AnyInboxEvent,
  AnyServerEvent,
  DisconnectInfo,
  ParleyClientEvents,
  ResyncRequired,
  StateChange,
  SyncedInfo,
} from './events.js';
export {
  type ParleyClientOptions,
  SDK_VERSION,
  type SendRetryOptions,
  type TokenProvider,
  type TokenRequest,
} from './options.js';
export type { SendOptions } from './outbox.js';
export { ReceiptCoalescer, type ReceiptWriter } from './receipts.js';
export type {
  ConversationsParams,
  CreateInviteParams,
  GroupChangeResult,
  HistoryParams,
  KeysUploadParams,
  PushRegistrationParams,
  SettingsParams,
} from './request-methods.js';
export { fromServiceAccount } from './senders.js';
export {
  type GroupCreated,
  type GroupDeleted,
  type GroupRenamed,
  type MemberLeft,
  type MembersAdded,
  type MembersRemoved,
  parseSystemMessage,
  type RoleChanged,
  type SystemEventName,
  type SystemMessage,
} from './system.js';
export type { WebSocketConstructor, WebSocketLike } from './transport.js';
export { TypingController, type TypingControllerOptions, type TypingSender } from './typing.js';
