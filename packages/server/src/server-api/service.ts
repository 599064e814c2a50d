import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ServiceImpl } from '@connectrpc/connect';
import type { ClientFrame, ConversationSummary, Limits, MessageObject } from '@parley/protocol';
// Messages sent through the API carry SERVER_API_DEVICE as `from_device` (SERVICE_ACCOUNT_DEVICE
// for a service account's: no client connects as either), so every device of the user, none of
// which sent them, receives them, and clients can tell a bot's messages.
import {
  isUserId,
  SERVER_API_DEVICE,
  SERVICE_ACCOUNT_DEVICE,
  utf8LengthExceeds,
  validateClientFrame,
} from '@parley/protocol';
import {
  type ConversationSchema,
  type MessageSchema,
  Role,
  type ServerApiService,
  Visibility,
} from '@parley/server-client';
import type { BackendApi, OperatorApi } from '../backend/api.js';
import { ParleyError } from '../domain/errors.js';
import type { ChangeOutcome } from '../ports/conversation-writer.js';
import type { UserSettings } from '../ports/user-store.js';

/** What the calls need: the backend a gateway calls, and token minting when the server can sign. */
export interface ServerApiDeps {
  api: BackendApi;
  /** Presence of anyone, and closing a user's connections. */
  operator: OperatorApi;
  limits: Limits;
  /** Signs a client token; absent when the server only verifies tokens (public keys, JWKS). */
  mint?: (user: string, device: string, ttlSeconds: number) => Promise<string>;
  /** Token lifetime when a MintToken call gives none, in seconds. */
  tokenTtlSeconds: number;
  /** The longest lifetime a minted token may have, in seconds. */
  maxTokenTtlSeconds: number;
  /** Users that are bots of the app's backend: they act only here, marked `from_device: "bot"`. */
  serviceAccounts: ReadonlySet<string>;
}

type Frame<T extends ClientFrame['type']> = Extract<ClientFrame, { type: T }>;

/**
 * Validates a call's fields as the client protocol's frame of the same op: one validator for
 * every way in, with the same limits (ids, sizes, counts).
 */
function frame<T extends ClientFrame['type']>(
  limits: Limits,
  type: T,
  fields: Record<string, unknown>,
): Frame<T> {
  const present = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  const r = validateClientFrame({ ...present, type, id: 'api' }, limits);
  if (!r.ok) throw new ParleyError(r.code, r.message);
  return r.frame as Frame<T>;
}

/** A user id field of a call (the frame validators check the ids inside frames). */
function userField(name: string, value: string): string {
  if (!isUserId(value)) throw new ParleyError('bad_request', `"${name}" must be a user id`);
  return value;
}

/** What an app event's name may be. */
const APP_EVENT_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/** An int64 field as the number the domain uses; the validators check its range. */
const num = (v: bigint | undefined): number | undefined => (v === undefined ? undefined : Number(v));

const ROLES = { [Role.ADMIN]: 'admin', [Role.MEMBER]: 'member' } as const;
const VISIBILITY = { [Visibility.EVERYONE]: 'everyone', [Visibility.NOBODY]: 'nobody' } as const;
const visibilityOf = (v: 'everyone' | 'nobody'): Visibility =>
  v === 'everyone' ? Visibility.EVERYONE : Visibility.NOBODY;

function changed(conv: string, o: ChangeOutcome) {
  return o.seq === null ? { conv } : { conv, seq: BigInt(o.seq), ts: BigInt(o.ts) };
}

function message(m: MessageObject): MessageInitShape<typeof MessageSchema> {
  return {
    conv: m.conv,
    seq: BigInt(m.seq),
    ts: BigInt(m.ts),
    from: m.from,
    fromDevice: m.from_device,
    cmid: m.cmid,
    kind: m.kind,
    body: m.body,
    ...(m.reply_to === undefined ? {} : { replyTo: BigInt(m.reply_to) }),
    media: m.media ?? [],
  };
}

function conversation(c: ConversationSummary): MessageInitShape<typeof ConversationSchema> {
  return {
    conv: c.conv,
    kind: c.kind,
    ...(c.name === undefined ? {} : { name: c.name }),
    members: BigInt(c.members),
    lastSeq: BigInt(c.last_seq),
    lastTs: BigInt(c.last_ts),
    read: BigInt(c.read),
    delivered: BigInt(c.delivered),
    unread: BigInt(c.unread),
  };
}

/**
 * The server API's calls, each on the same backend operations a client's frame runs: the acting
 * user's authorization, budgets and limits apply unchanged.
 */
export function serverApiHandlers(d: ServerApiDeps): ServiceImpl<typeof ServerApiService> {
  const { chat, account } = d.api;
  const L = d.limits;
  /** The `from_device` of what a user does through the API. */
  const actingDevice = (user: string) =>
    d.serviceAccounts.has(user) ? SERVICE_ACCOUNT_DEVICE : SERVER_API_DEVICE;
  return {
    async sendMessage(r) {
      const user = userField('as_user', r.asUser);
      const f = frame(L, 'send', {
        conv: r.conv,
        cmid: r.cmid,
        kind: r.kind === '' ? 'text' : r.kind,
        body: r.body,
        reply_to: num(r.replyTo),
      });
      const o = await chat.send({
        conv: f.conv,
        from: user,
        from_device: actingDevice(user),
        cmid: f.cmid,
        kind: f.kind,
        body: f.body,
        ...(f.reply_to === undefined ? {} : { reply_to: f.reply_to }),
      });
      return { conv: f.conv, seq: BigInt(o.seq), ts: BigInt(o.ts), dup: o.dup };
    },
    async createGroup(r) {
      const user = userField('as_user', r.asUser);
      const f = frame(L, 'create_group', { name: r.name, members: r.members });
      return { conv: await chat.createGroup(user, actingDevice(user), f.name, f.members) };
    },
    async addMembers(r) {
      const user = userField('as_user', r.asUser);
      const f = frame(L, 'add_members', { conv: r.conv, users: r.users });
      return changed(
        f.conv,
        await chat.changeGroup(user, actingDevice(user), f.conv, { op: 'add', users: f.users }),
      );
    },
    async removeMembers(r) {
      const user = userField('as_user', r.asUser);
      const f = frame(L, 'remove_members', { conv: r.conv, users: r.users });
      return changed(
        f.conv,
        await chat.changeGroup(user, actingDevice(user), f.conv, { op: 'remove', users: f.users }),
      );
    },
    async renameGroup(r) {
      const user = userField('as_user', r.asUser);
      const f = frame(L, 'update_group', { conv: r.conv, name: r.name });
      return changed(
        f.conv,
        await chat.changeGroup(user, actingDevice(user), f.conv, { op: 'rename', name: f.name }),
      );
    },
    async setRole(r) {
      const user = userField('as_user', r.asUser);
      const role = ROLES[r.role as keyof typeof ROLES];
      const f = frame(L, 'set_role', { conv: r.conv, user: r.user, role });
      return changed(
        f.conv,
        await chat.changeGroup(user, actingDevice(user), f.conv, { op: 'role', user: f.user, role: f.role }),
      );
    },
    async leaveGroup(r) {
      const user = userField('as_user', r.asUser);
      const f = frame(L, 'leave', { conv: r.conv });
      return changed(f.conv, await chat.changeGroup(user, actingDevice(user), f.conv, { op: 'leave' }));
    },
    async deleteGroup(r) {
      const user = userField('as_user', r.asUser);
      // Validated as a `leave` frame: no client op deletes a group, and the fields are the same.
      const f = frame(L, 'leave', { conv: r.conv });
      return changed(f.conv, await chat.changeGroup(user, actingDevice(user), f.conv, { op: 'delete' }));
    },
    async getGroup(r) {
      const user = userField('as_user', r.asUser);
      const f = frame(L, 'group_info', { conv: r.conv });
      const g = await chat.groupInfo(user, f.conv);
      return {
        conv: g.conv,
        name: g.name,
        createdTs: BigInt(g.created_ts),
        members: g.members.map((m) => ({
          user: m.user,
          role: m.role === 'admin' ? Role.ADMIN : Role.MEMBER,
          joinedSeq: BigInt(m.joined_seq),
        })),
      };
    },
    async getHistory(r) {
      const user = userField('as_user', r.asUser);
      const f = frame(L, 'history', {
        conv: r.conv,
        before: num(r.before),
        after: num(r.after),
        limit: r.limit,
      });
      const q: { before?: number; after?: number; limit: number } = { limit: f.limit };
      if (f.before !== undefined) q.before = f.before;
      if (f.after !== undefined) q.after = f.after;
      const page = await chat.history(user, f.conv, q);
      return { messages: page.messages.map(message), more: page.more };
    },
    async listConversations(r) {
      const user = userField('user', r.user);
      const f = frame(L, 'conversations', { limit: r.limit, before_ts: num(r.beforeTs) });
      const page = await chat.conversations(user, f.limit, f.before_ts);
      return { conversations: page.conversations.map(conversation), more: page.more };
    },
    async updateSettings(r) {
      const user = userField('user', r.user);
      const f = frame(L, 'settings', {
        read_receipts: r.readReceipts,
        last_seen: VISIBILITY[r.lastSeen as keyof typeof VISIBILITY],
        group_add: VISIBILITY[r.groupAdd as keyof typeof VISIBILITY],
      });
      const patch: Partial<UserSettings> = {};
      if (f.read_receipts !== undefined) patch.readReceipts = f.read_receipts;
      if (f.last_seen !== undefined) patch.lastSeen = f.last_seen;
      if (f.group_add !== undefined) patch.groupAdd = f.group_add;
      const s = await chat.settings(user, patch);
      return {
        readReceipts: s.readReceipts,
        lastSeen: visibilityOf(s.lastSeen),
        groupAdd: visibilityOf(s.groupAdd),
      };
    },
    async block(r) {
      const user = userField('user', r.user);
      await chat.block(user, frame(L, 'block', { user: r.other }).user);
      return {};
    },
    async unblock(r) {
      const user = userField('user', r.user);
      await chat.unblock(user, frame(L, 'unblock', { user: r.other }).user);
      return {};
    },
    async listDevices(r) {
      const { devices } = await account.devices(userField('user', r.user));
      return {
        devices: devices.map((x) => ({
          device: x.device,
          lastSeen: BigInt(x.last_seen),
          online: x.online,
          push: x.push ?? '',
          keys: x.keys,
        })),
      };
    },
    async revokeDevice(r) {
      const user = userField('user', r.user);
      await account.revokeDevice(user, frame(L, 'revoke_device', { device: r.device }).device);
      return {};
    },
    async disconnectUser(r) {
      return { connections: await d.operator.disconnectUser(userField('user', r.user)) };
    },
    async publishEvent(r) {
      const user = userField('user', r.user);
      if (!APP_EVENT_NAME.test(r.name))
        throw new ParleyError('bad_request', '"name" must be 1..64 of [A-Za-z0-9_.:-]');
      if (utf8LengthExceeds(r.data, L.maxBodyBytes))
        throw new ParleyError('too_large', `"data" must be at most ${L.maxBodyBytes} bytes`);
      return {
        devices: await d.operator.publishEvent(user, { type: 'app_event', name: r.name, data: r.data }),
      };
    },
    async getPresence(r) {
      const users = frame(L, 'presence_sub', { users: r.users }).users;
      const presence = await d.operator.presenceOf(users);
      return {
        presence: presence.map((p) => ({
          user: p.user,
          online: p.online,
          ...(p.lastSeen === undefined ? {} : { lastSeen: BigInt(p.lastSeen) }),
        })),
      };
    },
    async mintToken(r) {
      const user = userField('user', r.user);
      const device = frame(L, 'revoke_device', { device: r.device }).device;
      if (d.serviceAccounts.has(user))
        throw new ParleyError('forbidden', `${user} is a service account: it signs in nowhere`);
      if (!d.mint)
        throw new ParleyError('conflict', 'this server verifies tokens but holds no key to sign them');
      const ttl = r.ttlSeconds === undefined ? d.tokenTtlSeconds : Number(r.ttlSeconds);
      if (!(ttl >= 1 && ttl <= d.maxTokenTtlSeconds))
        throw new ParleyError('bad_request', `ttl_seconds must be 1..${d.maxTokenTtlSeconds}`);
      const token = await d.mint(user, device, ttl);
      return { token, expiresAt: BigInt(Math.floor(Date.now() / 1000) + ttl) };
    },
  };
}
