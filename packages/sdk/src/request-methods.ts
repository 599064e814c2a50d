/**
 * The request helpers of {@link ParleyClient} that are nothing but a typed request and its
 * typed result (history, conversations, groups, invites, settings, blocking): kept apart from
 * the client's machinery so that file holds only what has state. {@link RequestMethods} is the
 * client's base class; every method here is part of `ParleyClient`'s public API.
 *
 * @module
 */

import type {
  ConversationsResult,
  CreateGroupResult,
  CreateInviteResult,
  DeviceInfo,
  DeviceKeyBundle,
  DevicesResult,
  GroupAddPolicy,
  GroupInfoResult,
  GroupRole,
  HistoryResult,
  KeysClaimResult,
  KeysCountResult,
  KeysUploadFrame,
  LastSeenVisibility,
  MediaDownloadResult,
  MediaUploadResult,
  PingResult,
  ReceiptsResult,
  SettingsResult,
  WebPushSubscription,
} from '@parley/protocol';
import { TypedEmitter } from './emitter.js';
import type { ParleyClientEvents } from './events.js';
import type { Frame } from './util.js';

/**
 * This device's push registration, per platform (see {@link ParleyClient.registerPush}):
 * APNs device token (hex) and the app's bundle id; FCM registration token; a browser's
 * `PushSubscription.toJSON()`; a UnifiedPush distributor's endpoint (and its keys, if it gives
 * them).
 */
export type PushRegistrationParams =
  | { platform: 'apns'; token: string; topic: string }
  | { platform: 'fcm'; token: string }
  | { platform: 'webpush'; subscription: WebPushSubscription }
  | { platform: 'unifiedpush'; endpoint: string; keys?: WebPushSubscription['keys'] };

/** Parameters of {@link ParleyClient.uploadKeys}: the protocol's `keys_upload` fields. */
export type KeysUploadParams = Omit<KeysUploadFrame, 'type' | 'id'>;

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

/**
 * The one-request methods of {@link ParleyClient}, written against its `request`. Abstract: only
 * `ParleyClient` implements `request` (queueing while offline, timeouts, reply correlation).
 */
export abstract class RequestMethods extends TypedEmitter<ParleyClientEvents> {
  /** Sends any request and resolves with its result fields; see `ParleyClient.request`. */
  abstract request<T = Frame>(type: string, params?: Frame): Promise<T>;

  /** A page of a conversation's messages, ascending by `seq`. */
  history(conv: string, params: HistoryParams = {}): Promise<HistoryResult> {
    return this.request<HistoryResult>('history', { conv, ...params });
  }

  /** The user's conversations, most recent first, with unread counts. */
  conversations(params: ConversationsParams = {}): Promise<ConversationsResult> {
    return this.request<ConversationsResult>('conversations', { ...params });
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
    // Only the settings fields, and only those the server sent (one without `group_add` predates it).
    const result = {} as SettingsResult;
    if (r.read_receipts !== undefined) result.read_receipts = r.read_receipts;
    if (r.last_seen !== undefined) result.last_seen = r.last_seen;
    if (r.group_add !== undefined) result.group_add = r.group_add;
    return result;
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

  /** This user's devices, most recently seen first: last seen, online, push platform, keys. */
  async devices(): Promise<DeviceInfo[]> {
    return (await this.request<DevicesResult>('devices', {})).devices;
  }

  /**
   * Revokes one of this user's devices: its connection closes (4401), tokens issued for it
   * before now stop working, and its push registration is deleted. Unknown: `not_found`.
   */
  async revokeDevice(device: string): Promise<void> {
    await this.request('revoke_device', { device });
  }

  /**
   * Registers this device for push notifications (replacing an earlier registration). The
   * server then wakes it when a message arrives while it is not connected; the notification
   * names the message (`conv`, `seq`, `from`, `kind`, `inbox`, `unread`), never its text.
   */
  async registerPush(registration: PushRegistrationParams): Promise<void> {
    await this.request('push_register', { ...registration });
  }

  /** Removes this device's push registration. */
  async unregisterPush(): Promise<void> {
    await this.request('push_unregister', {});
  }

  /** Mutes a conversation for all of this user's devices: no push until `until` (ms), or for good. */
  async mute(conv: string, until?: number): Promise<void> {
    await this.request('mute', until === undefined ? { conv } : { conv, until });
  }

  /** Ends a conversation's mute. */
  async unmute(conv: string): Promise<void> {
    await this.request('unmute', { conv });
  }

  /**
   * Publishes this device's public keys for end-to-end encryption (any of: identity key, signed
   * prekey, one-time prekeys, ≤ 200 per call); resolves with the one-time prekeys now stored.
   */
  async uploadKeys(keys: KeysUploadParams): Promise<number> {
    return (await this.request<KeysCountResult>('keys_upload', { ...keys })).one_time_prekeys;
  }

  /** A key bundle for each device of `user` (each one-time prekey is handed out once, ever). */
  async claimKeys(user: string): Promise<DeviceKeyBundle[]> {
    return (await this.request<KeysClaimResult>('keys_claim', { user })).devices;
  }

  /** How many one-time prekeys this device has left on the server (upload more when low). */
  async countKeys(): Promise<number> {
    return (await this.request<KeysCountResult>('keys_count', {})).one_time_prekeys;
  }

  /** Queues an opaque message for one device of `user`; it arrives there as a `to_device` event. */
  async sendToDevice(user: string, device: string, body: string): Promise<void> {
    await this.request('to_device', { user, device, body });
  }

  /** Deletes this device's queued `to_device` messages up to `upto` (the client has handled them). */
  async ackToDevice(upto: number): Promise<void> {
    await this.request('to_device_ack', { upto });
  }

  /**
   * Uploads bytes as a media object (encrypt them first: the SDK's `@parley/e2ee` does) and
   * resolves with its id, to list in a message's `media`. The bytes go straight to the object
   * store with the short-lived URL the server hands out.
   */
  async uploadMedia(bytes: Uint8Array, contentType = 'application/octet-stream'): Promise<string> {
    const r = await this.request<MediaUploadResult>('media_upload', {
      size: bytes.byteLength,
      content_type: contentType,
    });
    const res = await fetch(r.url, { method: r.method, headers: r.headers, body: new Uint8Array(bytes) });
    if (!res.ok) throw new Error(`media upload failed: HTTP ${res.status} ${await res.text()}`);
    await res.arrayBuffer().catch(() => {});
    return r.media;
  }

  /** Downloads a media object this user may read (its uploader, or a member of a conversation that listed it). */
  async downloadMedia(media: string): Promise<Uint8Array> {
    const r = await this.request<MediaDownloadResult>('media_download', { media });
    const res = await fetch(r.url);
    if (!res.ok) throw new Error(`media download failed: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }

  /** A group change request; its result with `seq`/`ts` only when the change recorded a system message. */
  async #groupChange(type: string, params: Frame): Promise<GroupChangeResult> {
    const r = await this.request<GroupChangeResult>(type, params);
    const result: GroupChangeResult = { conv: r.conv };
    if (typeof r.seq === 'number') result.seq = r.seq;
    if (typeof r.ts === 'number') result.ts = r.ts;
    return result;
  }
}
