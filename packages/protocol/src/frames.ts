/**
 * Frame types of protocol v1: what clients send (requests, {@link ClientFrame}) and what the
 * server sends (replies and events, {@link ServerFrame}). Field names are exactly those on the
 * wire. Client frame types describe frames *after* validation: defaults are filled in and
 * unknown fields are gone.
 *
 * @module
 */

import type { ErrorCode } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Shared enums

/** Watermark kinds: "received up to seq" and "read up to seq" (read implies delivered). */
export type ReceiptKind = 'delivered' | 'read';
/** Typing indicator state. */
export type TypingState = 'start' | 'stop';
/** Role of a group member; admins add, remove, rename and set roles. */
export type GroupRole = 'admin' | 'member';
/** Who sees a user's `last_seen` time. */
export type LastSeenVisibility = 'everyone' | 'nobody';
/**
 * Who may put a user in a group (`create_group`, `add_members`). With `nobody` the user joins
 * groups only through an invite (`join_group`).
 */
export type GroupAddPolicy = 'everyone' | 'nobody';
/** Push providers a device can register with. */
export type PushPlatform = 'apns' | 'fcm' | 'webpush' | 'unifiedpush';
/** Presence of a user: online while at least one device is connected and alive. */
export type PresenceStatus = 'online' | 'offline';

// ---------------------------------------------------------------------------------------------
// Invites

/** The longest an invite code may live (`create_invite` `expires_in_ms`): 30 days. */
export const MAX_INVITE_EXPIRES_MS = 30 * 24 * 3600 * 1000;
/** How long an invite code lives when `create_invite` gives no `expires_in_ms`: 7 days. */
export const DEFAULT_INVITE_EXPIRES_MS = 7 * 24 * 3600 * 1000;
/** The most uses `create_invite` `max_uses` may allow. */
export const MAX_INVITE_USES = 100_000;
/** The longest invite code `join_group` and `revoke_invite` accept (codes the server makes are 24 chars). */
export const MAX_INVITE_CODE_LENGTH = 64;

// ---------------------------------------------------------------------------------------------
// Client → server frames (requests)

/** First frame of every connection: authenticates with a JWT and names the device. */
export interface ConnectFrame {
  type: 'connect';
  id: string;
  token: string;
  device: string;
  client?: string;
}

/** Application-level ping; with an `id` the server replies with its time. */
export interface PingFrame {
  type: 'ping';
  id?: string;
}

/** Sends a message; retried safely with the same `cmid`. */
export interface SendFrame {
  type: 'send';
  id: string;
  conv: string;
  cmid: string;
  kind: string;
  body: string;
  reply_to?: number;
  media?: string[];
}

/** Reads inbox events with `inbox > after`, oldest first. `limit` defaults to DEFAULT_SYNC_LIMIT. */
export interface SyncFrame {
  type: 'sync';
  id: string;
  after: number;
  limit: number;
}

/** Reads a page of a conversation's messages. At most one of `before`/`after`; `limit` defaulted. */
export interface HistoryFrame {
  type: 'history';
  id: string;
  conv: string;
  before?: number;
  after?: number;
  limit: number;
}

/** Lists the user's conversations, most recent first. `limit` defaulted. */
export interface ConversationsFrame {
  type: 'conversations';
  id: string;
  limit: number;
  before_ts?: number;
}

/** Moves the user's delivered/read watermark in a conversation forward. */
export interface ReceiptFrame {
  type: 'receipt';
  id?: string;
  conv: string;
  kind: ReceiptKind;
  seq: number;
}

/** Asks for every member's watermarks in a conversation. */
export interface ReceiptsFrame {
  type: 'receipts';
  id: string;
  conv: string;
}

/** Creates a group with the sender as admin. `members` excludes or includes the sender, either way. */
export interface CreateGroupFrame {
  type: 'create_group';
  id: string;
  name: string;
  members: string[];
}

/** Adds users to a group (admins only). */
export interface AddMembersFrame {
  type: 'add_members';
  id: string;
  conv: string;
  users: string[];
}

/** Removes users from a group (admins only). */
export interface RemoveMembersFrame {
  type: 'remove_members';
  id: string;
  conv: string;
  users: string[];
}

/** Leaves a group. */
export interface LeaveFrame {
  type: 'leave';
  id: string;
  conv: string;
}

/** Renames a group (admins only). */
export interface UpdateGroupFrame {
  type: 'update_group';
  id: string;
  conv: string;
  name: string;
}

/** Sets a member's role (admins only). */
export interface SetRoleFrame {
  type: 'set_role';
  id: string;
  conv: string;
  user: string;
  role: GroupRole;
}

/** Asks for a group's name, creation time and members. */
export interface GroupInfoFrame {
  type: 'group_info';
  id: string;
  conv: string;
}

/** Subscribes to presence events of users. */
export interface PresenceSubFrame {
  type: 'presence_sub';
  id: string;
  users: string[];
}

/** Unsubscribes from presence events of users. */
export interface PresenceUnsubFrame {
  type: 'presence_unsub';
  id: string;
  users: string[];
}

/** Typing indicator for a conversation; forwarded to online members, never stored. */
export interface TypingFrame {
  type: 'typing';
  id?: string;
  conv: string;
  state: TypingState;
}

/** Changes privacy settings; with no fields, only reads them. */
export interface SettingsFrame {
  type: 'settings';
  id: string;
  read_receipts?: boolean;
  last_seen?: LastSeenVisibility;
  group_add?: GroupAddPolicy;
}

/**
 * Creates an invite code to a group (admins only). `expires_in_ms` defaults to 7 days and is at
 * most {@link MAX_INVITE_EXPIRES_MS}; without `max_uses` the code may be used until it expires.
 */
export interface CreateInviteFrame {
  type: 'create_invite';
  id: string;
  conv: string;
  expires_in_ms?: number;
  max_uses?: number;
}

/** Revokes an invite code of a group (admins only); idempotent. */
export interface RevokeInviteFrame {
  type: 'revoke_invite';
  id: string;
  conv: string;
  code: string;
}

/** Joins a group with an invite code; `not_found` for a code that is unknown, expired, revoked or used up. */
export interface JoinGroupFrame {
  type: 'join_group';
  id: string;
  code: string;
}

/** Blocks a user from sending to the blocker's direct conversation. */
export interface BlockFrame {
  type: 'block';
  id: string;
  user: string;
}

/** Removes a block. */
export interface UnblockFrame {
  type: 'unblock';
  id: string;
  user: string;
}

/** A W3C PushSubscription as JSON (the fields the server needs). */
export interface WebPushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/**
 * Registers this device for push. Required per platform (the validator keeps only those):
 * `apns` → `token` (hex) and `topic`; `fcm` → `token`; `webpush` → `subscription` (https
 * endpoint); `unifiedpush` → `endpoint` (https) and optionally `keys`.
 */
export interface PushRegisterFrame {
  type: 'push_register';
  id: string;
  platform: PushPlatform;
  token?: string;
  topic?: string;
  subscription?: WebPushSubscription;
  endpoint?: string;
  /** `unifiedpush` only, optional: the distributor's Web Push keys (then the message is encrypted). */
  keys?: WebPushSubscription['keys'];
}

/**
 * Mutes a conversation for all of the user's devices: no push for its messages until `until` (ms
 * since the epoch), or for good without it. Messages still arrive and count as unread.
 */
export interface MuteFrame {
  type: 'mute';
  id: string;
  conv: string;
  until?: number;
}

/** Ends a conversation's mute. */
export interface UnmuteFrame {
  type: 'unmute';
  id: string;
  conv: string;
}

/** Removes this device's push registration. */
export interface PushUnregisterFrame {
  type: 'push_unregister';
  id: string;
}

/** A signed prekey as uploaded and as handed out by `keys_claim`. */
export interface SignedPrekey {
  key_id: number;
  key: string;
  signature: string;
}

/** A one-time prekey as uploaded and as handed out (at most once) by `keys_claim`. */
export interface OneTimePrekey {
  key_id: number;
  key: string;
}

/** Uploads this device's public keys for end-to-end encryption (at least one field). */
export interface KeysUploadFrame {
  type: 'keys_upload';
  id: string;
  identity_key?: string;
  signed_prekey?: SignedPrekey;
  one_time_prekeys?: OneTimePrekey[];
}

/** Claims a key bundle for each device of a user. */
export interface KeysClaimFrame {
  type: 'keys_claim';
  id: string;
  user: string;
}

/** Asks how many one-time prekeys this device has left. */
export interface KeysCountFrame {
  type: 'keys_count';
  id: string;
}

/** Queues an opaque message for one device of a user (key exchange, E2E control messages). */
export interface ToDeviceFrame {
  type: 'to_device';
  id: string;
  user: string;
  device: string;
  body: string;
}

/** Acknowledges `to_device` messages with `qid <= upto`, deleting them from the queue. */
export interface ToDeviceAckFrame {
  type: 'to_device_ack';
  id?: string;
  upto: number;
}

/** Lists the user's devices. */
export interface DevicesFrame {
  type: 'devices';
  id: string;
}

/** Removes one of the user's devices: closes it, invalidates its tokens, deletes its keys. */
export interface RevokeDeviceFrame {
  type: 'revoke_device';
  id: string;
  device: string;
}

/** Asks for a short-lived upload URL for exactly `size` bytes. */
export interface MediaUploadFrame {
  type: 'media_upload';
  id: string;
  size: number;
  content_type: string;
}

/** Asks for a short-lived download URL of a media id. */
export interface MediaDownloadFrame {
  type: 'media_download';
  id: string;
  media: string;
}

/** Every client → server frame, discriminated by `type`, as returned by the validator. */
export type ClientFrame =
  | ConnectFrame
  | PingFrame
  | SendFrame
  | SyncFrame
  | HistoryFrame
  | ConversationsFrame
  | ReceiptFrame
  | ReceiptsFrame
  | CreateGroupFrame
  | AddMembersFrame
  | RemoveMembersFrame
  | LeaveFrame
  | UpdateGroupFrame
  | SetRoleFrame
  | GroupInfoFrame
  | PresenceSubFrame
  | PresenceUnsubFrame
  | TypingFrame
  | SettingsFrame
  | CreateInviteFrame
  | RevokeInviteFrame
  | JoinGroupFrame
  | BlockFrame
  | UnblockFrame
  | PushRegisterFrame
  | PushUnregisterFrame
  | KeysUploadFrame
  | KeysClaimFrame
  | KeysCountFrame
  | ToDeviceFrame
  | ToDeviceAckFrame
  | DevicesFrame
  | RevokeDeviceFrame
  | MuteFrame
  | UnmuteFrame
  | MediaUploadFrame
  | MediaDownloadFrame;

/** The `type` of a client frame (an "op"). */
export type ClientOp = ClientFrame['type'];

/** The client frame type of one op, e.g. `ClientFrameOf<'send'>` is {@link SendFrame}; for dispatch tables. */
export type ClientFrameOf<Op extends ClientOp> = Extract<ClientFrame, { type: Op }>;

/** A client frame as a client writes it: `limit` may be left out (the server fills in the default). */
export type ClientFrameInput<F extends ClientFrame = ClientFrame> = F extends { limit: number }
  ? Omit<F, 'limit'> & { limit?: number }
  : F;

// An object with every op as a key, so that adding an op to ClientFrame without listing it
// here is a compile error (and CLIENT_OPS can never miss one).
const OPS: { readonly [Op in ClientOp]: true } = {
  connect: true,
  ping: true,
  send: true,
  sync: true,
  history: true,
  conversations: true,
  receipt: true,
  receipts: true,
  create_group: true,
  add_members: true,
  remove_members: true,
  leave: true,
  update_group: true,
  set_role: true,
  group_info: true,
  presence_sub: true,
  presence_unsub: true,
  typing: true,
  settings: true,
  create_invite: true,
  revoke_invite: true,
  join_group: true,
  block: true,
  unblock: true,
  push_register: true,
  push_unregister: true,
  keys_upload: true,
  keys_claim: true,
  keys_count: true,
  to_device: true,
  to_device_ack: true,
  devices: true,
  revoke_device: true,
  mute: true,
  unmute: true,
  media_upload: true,
  media_download: true,
};

/** Every client op, for dispatch tables, docs, metrics labels and exhaustive tests. */
export const CLIENT_OPS: readonly ClientOp[] = Object.freeze(Object.keys(OPS) as ClientOp[]);

/** Ops whose `id` may be left out (then no reply is sent); every other op requires an `id`. */
export const OPTIONAL_ID_OPS: readonly ClientOp[] = Object.freeze([
  'ping',
  'receipt',
  'typing',
  'to_device_ack',
] as ClientOp[]);

// ---------------------------------------------------------------------------------------------
// Server → client frames

/** A stored message, as `history` returns it and as the `message` event carries it. */
export interface MessageObject {
  conv: string;
  seq: number;
  ts: number;
  from: string;
  from_device: string;
  cmid: string;
  kind: string;
  body: string;
  reply_to?: number;
  media?: string[];
}

/** A new message in one of the user's conversations (an inbox event). */
export type MessageEvent = { type: 'message'; inbox: number } & MessageObject;

/** Another member's (or the user's own, for `read`) watermark moved (an inbox event). */
export interface ReceiptEvent {
  type: 'receipt';
  inbox: number;
  conv: string;
  user: string;
  kind: ReceiptKind;
  seq: number;
  ts: number;
}

/** Events stored in a user's inbox and numbered by `inbox`; what `sync` returns. */
export type InboxEvent = MessageEvent | ReceiptEvent;

/** A subscribed user's presence changed. `last_seen` only when offline and visible. */
export interface PresenceEvent {
  type: 'presence';
  user: string;
  status: PresenceStatus;
  last_seen?: number;
}

/** A member started or stopped typing. Never stored. */
export interface TypingEvent {
  type: 'typing';
  conv: string;
  user: string;
  state: TypingState;
}

/** The server is draining: reconnect (to any server) after `after_ms`. */
export interface ReconnectEvent {
  type: 'reconnect';
  after_ms: number;
  reason: string;
}

/** A queued `to_device` message; acknowledge with `to_device_ack`. */
export interface ToDeviceEvent {
  type: 'to_device';
  qid: number;
  from: string;
  from_device: string;
  body: string;
}

/**
 * An event the app's own backend published to this user's live devices (the server API's
 * PublishEvent): never stored, not delivered to devices that are offline. `name` and `data` are
 * the app's own (data is often JSON).
 */
export interface AppEvent {
  type: 'app_event';
  name: string;
  data: string;
}

/** The `error` of a failed reply. `retry_after_ms` comes with `rate_limited`. */
export interface ReplyErrorBody {
  code: ErrorCode;
  message: string;
  retry_after_ms?: number;
}

/** A failed reply. No `id` when the request's own `id` was missing or malformed. */
export interface ReplyError {
  type: 'reply';
  id?: string;
  ok: false;
  error: ReplyErrorBody;
}

/** A successful reply; the result fields sit beside `type`, `id` and `ok`. */
export type ReplyOk = { type: 'reply'; id: string; ok: true; [k: string]: unknown };

/** A successful reply with a known result shape, e.g. `Reply<SendResult>`. */
export type Reply<R> = { type: 'reply'; id: string; ok: true } & R;

/** Every server → client frame. Discriminate on `type`, then on `ok` for replies. */
export type ServerFrame =
  | ReplyOk
  | ReplyError
  | MessageEvent
  | ReceiptEvent
  | PresenceEvent
  | TypingEvent
  | ReconnectEvent
  | ToDeviceEvent
  | AppEvent;

/** The `type` of a server event (any server frame but a reply). */
export type ServerEventType = Exclude<ServerFrame['type'], 'reply'>;

// ---------------------------------------------------------------------------------------------
// Reply results (the fields of a successful reply besides type, id and ok)

/** Result of `connect`. `inbox_head` is the user's newest inbox number: sync up to it. */
export interface ConnectResult {
  user: string;
  device: string;
  session: string;
  heartbeat_ms: number;
  inbox_head: number;
  server_time: number;
  /** The server's VAPID public key (base64url), for Web Push subscriptions; absent when push is off. */
  vapid_public_key?: string;
}

/** One of the user's devices in `devices`. */
export interface DeviceInfo {
  device: string;
  /** When it last connected or disconnected. */
  last_seen: number;
  /** Whether it has a live connection now. */
  online: boolean;
  /** Its push platform, when it registered for push. */
  push?: PushPlatform;
  /** Whether it uploaded end-to-end encryption keys. */
  keys: boolean;
}

/** Result of `devices`: the user's devices, most recently seen first. */
export interface DevicesResult {
  devices: DeviceInfo[];
}

/** Result of `send`: where the message was stored. `dup` when the `cmid` was seen before. */
export interface SendResult {
  conv: string;
  seq: number;
  ts: number;
  dup?: true;
}

/** Result of `sync`: the next inbox events; call again while `more`. */
export interface SyncResult {
  events: InboxEvent[];
  inbox_head: number;
  more: boolean;
}

/** Result of `history`: messages in ascending `seq`; `more` when older (or newer, for `after`) exist. */
export interface HistoryResult {
  messages: MessageObject[];
  more: boolean;
}

/** One entry of `conversations`: enough to draw a conversation list with unread counts. */
export interface ConversationSummary {
  conv: string;
  kind: 'direct' | 'group';
  name?: string;
  members: number;
  last_seq: number;
  last_ts: number;
  read: number;
  delivered: number;
  unread: number;
}

/** Result of `conversations`. */
export interface ConversationsResult {
  conversations: ConversationSummary[];
  more: boolean;
}

/** One member's watermarks in `receipts`. */
export interface MemberReceipts {
  user: string;
  delivered: number;
  read: number;
}

/** Result of `receipts`: what a "message info" screen shows. */
export interface ReceiptsResult {
  members: MemberReceipts[];
}

/** Result of `create_group`. */
export interface CreateGroupResult {
  conv: string;
}

/** One member in `group_info`. A member sees the conversation from `joined_seq` on. */
export interface GroupMember {
  user: string;
  role: GroupRole;
  joined_seq: number;
}

/** Result of `group_info`. */
export interface GroupInfoResult {
  conv: string;
  name: string;
  created_ts: number;
  members: GroupMember[];
}

/** A user's presence as listed in `presence_sub` replies (a presence event without `type`). */
export type PresenceInfo = Omit<PresenceEvent, 'type'>;

/** Result of `presence_sub`: the current presence of each subscribed user. */
export interface PresenceSubResult {
  presence: PresenceInfo[];
}

/** Result of `settings`: the settings after the change. */
export interface SettingsResult {
  read_receipts: boolean;
  last_seen: LastSeenVisibility;
  group_add: GroupAddPolicy;
}

/** Result of `create_invite`: the code to share (it is shown once; the server keeps only its hash). */
export interface CreateInviteResult {
  code: string;
  expires_ts: number;
}

/** Result of `join_group`: the system message that added the joiner (no `seq` when already a member). */
export interface JoinGroupResult {
  conv: string;
  seq?: number;
  ts?: number;
}

/** Result of `ping`. */
export interface PingResult {
  server_time: number;
}

/** One device's bundle in `keys_claim`; `one_time_prekey` is absent when the device has none left. */
export interface DeviceKeyBundle {
  device: string;
  identity_key: string;
  signed_prekey: SignedPrekey;
  one_time_prekey?: OneTimePrekey;
}

/** Result of `keys_claim`. */
export interface KeysClaimResult {
  devices: DeviceKeyBundle[];
}

/** Result of `keys_count`: one-time prekeys left for this device (upload more when low). */
export interface KeysCountResult {
  one_time_prekeys: number;
}

/** Result of `media_upload`: PUT exactly `size` bytes to `url` with `headers` before `expires_ts`. */
export interface MediaUploadResult {
  media: string;
  url: string;
  method: string;
  headers: Record<string, string>;
  expires_ts: number;
}

/** Result of `media_download`. */
export interface MediaDownloadResult {
  url: string;
  expires_ts: number;
}
