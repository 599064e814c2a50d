import type { ClientFrame, ConnectFrame } from '@parley/protocol';
import type { AccountApi, ChatApi, KeysApi, MediaApi } from '../backend/api.js';
import { ParleyError } from '../domain/errors.js';
import type { Clock } from '../ports/clock.js';
import type { ChangeOutcome } from '../ports/conversation-writer.js';
import { pushRegistrationOf } from '../ports/push-provider.js';
import type { ConnectionRef, SessionsApi } from '../ports/sessions.js';
import type { Connection } from './connection.js';

/** What the op handlers need from the gateway. */
export interface DispatchContext {
  chat: ChatApi;
  sessions: SessionsApi;
  account: AccountApi;
  keys: KeysApi;
  media: MediaApi;
  /** How the backend addresses this connection. */
  ref(conn: Connection): ConnectionRef;
  clock: Clock;
  /** Authenticates and registers a connection; resolves to the connect reply's fields. */
  connect(conn: Connection, frame: ConnectFrame): Promise<Record<string, unknown>>;
  /** Records the send→reply latency. */
  observeSend(seconds: number): void;
}

/** Encodes a success reply; `result` fields sit beside `type`, `id` and `ok`. */
export function okReply(id: string, result: object): string {
  return JSON.stringify({ type: 'reply', id, ok: true, ...result });
}

/** Encodes an error reply; `id` is omitted when the request had none we could read. */
export function errorReply(id: string | undefined, err: ParleyError): string {
  const error: Record<string, unknown> = { code: err.code, message: err.message };
  if (err.retryAfterMs !== undefined) error.retry_after_ms = err.retryAfterMs;
  return JSON.stringify(
    id === undefined ? { type: 'reply', ok: false, error } : { type: 'reply', id, ok: false, error },
  );
}

/** The reply to a group change: the system message's seq, absent when nothing changed. */
function changed(id: string, conv: string, o: ChangeOutcome): string {
  return okReply(id, o.seq === null ? { conv } : { conv, seq: o.seq, ts: o.ts });
}

/**
 * Runs one validated frame of an authenticated (or, for `connect`, a fresh) connection and
 * returns its reply, or undefined for frames that get none. Throws ParleyError for failures.
 */
export async function dispatch(
  ctx: DispatchContext,
  conn: Connection,
  f: ClientFrame,
): Promise<string | undefined> {
  const user = conn.user!;
  switch (f.type) {
    case 'connect':
      return okReply(f.id, await ctx.connect(conn, f));
    case 'ping':
      return f.id === undefined ? undefined : okReply(f.id, { server_time: ctx.clock.now() });
    case 'send': {
      const started = performance.now();
      const req: Parameters<ChatApi['send']>[0] = {
        conv: f.conv,
        from: user,
        from_device: conn.device!,
        cmid: f.cmid,
        kind: f.kind,
        body: f.body,
      };
      if (f.reply_to !== undefined) req.reply_to = f.reply_to;
      if (f.media !== undefined) req.media = f.media;
      const o = await ctx.chat.send(req);
      ctx.observeSend((performance.now() - started) / 1000);
      return okReply(
        f.id,
        o.dup ? { conv: f.conv, seq: o.seq, ts: o.ts, dup: true } : { conv: f.conv, seq: o.seq, ts: o.ts },
      );
    }
    case 'sync':
      return okReply(f.id, await ctx.chat.sync(user, f.after, f.limit));
    case 'history': {
      const q: { before?: number; after?: number; limit: number } = { limit: f.limit };
      if (f.before !== undefined) q.before = f.before;
      if (f.after !== undefined) q.after = f.after;
      return okReply(f.id, await ctx.chat.history(user, f.conv, q));
    }
    case 'conversations':
      return okReply(f.id, await ctx.chat.conversations(user, f.limit, f.before_ts));
    case 'receipt':
      await ctx.chat.receipt(user, f.conv, f.kind, f.seq);
      return f.id === undefined ? undefined : okReply(f.id, {});
    case 'receipts':
      return okReply(f.id, await ctx.chat.receipts(user, f.conv));
    case 'create_group':
      return okReply(f.id, { conv: await ctx.chat.createGroup(user, conn.device!, f.name, f.members) });
    case 'add_members':
      return changed(
        f.id,
        f.conv,
        await ctx.chat.changeGroup(user, conn.device!, f.conv, { op: 'add', users: f.users }),
      );
    case 'remove_members':
      return changed(
        f.id,
        f.conv,
        await ctx.chat.changeGroup(user, conn.device!, f.conv, { op: 'remove', users: f.users }),
      );
    case 'leave':
      return changed(f.id, f.conv, await ctx.chat.changeGroup(user, conn.device!, f.conv, { op: 'leave' }));
    case 'update_group':
      return changed(
        f.id,
        f.conv,
        await ctx.chat.changeGroup(user, conn.device!, f.conv, { op: 'rename', name: f.name }),
      );
    case 'set_role':
      return changed(
        f.id,
        f.conv,
        await ctx.chat.changeGroup(user, conn.device!, f.conv, { op: 'role', user: f.user, role: f.role }),
      );
    case 'group_info':
      return okReply(f.id, await ctx.chat.groupInfo(user, f.conv));
    case 'presence_sub':
      return okReply(f.id, { presence: await ctx.sessions.subscribe(ctx.ref(conn), f.users) });
    case 'presence_unsub':
      await ctx.sessions.unsubscribe(ctx.ref(conn), f.users);
      return okReply(f.id, {});
    case 'typing':
      await ctx.chat.typing(user, f.conv, f.state);
      return f.id === undefined ? undefined : okReply(f.id, {});
    case 'settings': {
      const patch: Parameters<ChatApi['settings']>[1] = {};
      if (f.read_receipts !== undefined) patch.readReceipts = f.read_receipts;
      if (f.last_seen !== undefined) patch.lastSeen = f.last_seen;
      if (f.group_add !== undefined) patch.groupAdd = f.group_add;
      const s = await ctx.chat.settings(user, patch);
      return okReply(f.id, { read_receipts: s.readReceipts, last_seen: s.lastSeen, group_add: s.groupAdd });
    }
    case 'create_invite': {
      const options: Parameters<ChatApi['createInvite']>[2] = {};
      if (f.expires_in_ms !== undefined) options.expiresInMs = f.expires_in_ms;
      if (f.max_uses !== undefined) options.maxUses = f.max_uses;
      return okReply(f.id, await ctx.chat.createInvite(user, f.conv, options));
    }
    case 'revoke_invite':
      await ctx.chat.revokeInvite(user, f.conv, f.code);
      return okReply(f.id, {});
    case 'join_group': {
      const o = await ctx.chat.joinGroup(user, conn.device!, f.code);
      return changed(f.id, o.conv, o);
    }
    case 'block':
      await ctx.chat.block(user, f.user);
      return okReply(f.id, {});
    case 'unblock':
      await ctx.chat.unblock(user, f.user);
      return okReply(f.id, {});
    case 'devices':
      return okReply(f.id, await ctx.account.devices(user));
    case 'revoke_device':
      await ctx.account.revokeDevice(user, f.device);
      return okReply(f.id, {});
    case 'push_register':
      await ctx.account.pushRegister(user, conn.device!, pushRegistrationOf(f));
      return okReply(f.id, {});
    case 'push_unregister':
      await ctx.account.pushUnregister(user, conn.device!);
      return okReply(f.id, {});
    case 'mute':
      await ctx.account.mute(user, f.conv, f.until);
      return okReply(f.id, {});
    case 'unmute':
      await ctx.account.unmute(user, f.conv);
      return okReply(f.id, {});
    case 'keys_upload': {
      const { type: _type, id, ...keys } = f;
      return okReply(id, await ctx.keys.uploadKeys(user, conn.device!, keys));
    }
    case 'keys_claim':
      return okReply(f.id, await ctx.keys.claimKeys(user, f.user));
    case 'keys_count':
      return okReply(f.id, await ctx.keys.countKeys(user, conn.device!));
    case 'to_device':
      await ctx.keys.sendToDevice(user, conn.device!, f.user, f.device, f.body);
      return okReply(f.id, {});
    case 'to_device_ack':
      await ctx.keys.ackToDevice(user, conn.device!, f.upto);
      return f.id === undefined ? undefined : okReply(f.id, {});
    case 'media_upload':
      return okReply(f.id, await ctx.media.upload(user, f.size, f.content_type));
    case 'media_download':
      return okReply(f.id, await ctx.media.download(user, f.media));
    default:
      // Every op of the protocol is handled above; the validator lets no other type through.
      throw new ParleyError('bad_request', `"${(f as ClientFrame).type}" is not supported by this server`);
  }
}
