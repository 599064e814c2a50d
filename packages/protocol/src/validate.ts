/**
 * The client frame validator: turns untrusted JSON into a typed {@link ClientFrame} or a precise
 * `bad_request` / `too_large` error. It runs on every frame the server receives, so it is
 * hand-written: no schema library, no regexes on fields, no allocation but the result. Errors are recorded
 * in module state by the field checkers (which return null) and wrapped once at the end.
 *
 * Rules beyond protocol.md, decided here:
 * - a JSON `null` in an optional field means "absent"; in a required field it is "missing";
 * - `kind: "system"` is refused: only the server writes system messages;
 * - group ops (`add_members`, `remove_members`, `leave`, `update_group`, `set_role`,
 *   `group_info`) need a group conversation id;
 * - push endpoints (Web Push and UnifiedPush) must be `https://` URLs;
 * - `keys_upload` must carry at least one key; one-time prekey `key_id`s must be distinct;
 * - no string field may hold a lone surrogate (JSON `"\ud800"`): storage as UTF-8 would turn it
 *   into U+FFFD, so a message would read back differently from how it was acknowledged.
 *
 * @module
 */

import type {
  AddMembersFrame,
  BlockFrame,
  ClientFrame,
  ConnectFrame,
  ConversationsFrame,
  CreateGroupFrame,
  CreateInviteFrame,
  DevicesFrame,
  GroupInfoFrame,
  HistoryFrame,
  JoinGroupFrame,
  KeysClaimFrame,
  KeysCountFrame,
  KeysUploadFrame,
  LeaveFrame,
  MediaDownloadFrame,
  MediaUploadFrame,
  MuteFrame,
  OneTimePrekey,
  PingFrame,
  PresenceSubFrame,
  PresenceUnsubFrame,
  PushRegisterFrame,
  PushUnregisterFrame,
  ReceiptFrame,
  ReceiptsFrame,
  RemoveMembersFrame,
  RevokeDeviceFrame,
  RevokeInviteFrame,
  SendFrame,
  SetRoleFrame,
  SettingsFrame,
  SignedPrekey,
  SyncFrame,
  ToDeviceAckFrame,
  ToDeviceFrame,
  TypingFrame,
  UnblockFrame,
  UnmuteFrame,
  UpdateGroupFrame,
} from './frames.js';
import { MAX_INVITE_CODE_LENGTH, MAX_INVITE_EXPIRES_MS, MAX_INVITE_USES } from './frames.js';
import {
  isConvId,
  isDeviceId,
  isGroupConv,
  isMediaId,
  isReservedDevice,
  isUserId,
  utf8LengthExceeds,
} from './ids.js';
import {
  DEFAULT_CONVERSATIONS_LIMIT,
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_LIMITS,
  DEFAULT_SYNC_LIMIT,
  type Limits,
  MAX_CONTENT_TYPE_LENGTH,
  MAX_KEY_LENGTH,
  MAX_ONE_TIME_PREKEYS,
  MAX_PUSH_ENDPOINT_LENGTH,
  MAX_PUSH_KEY_LENGTH,
  MAX_PUSH_TOKEN_LENGTH,
  MAX_PUSH_TOPIC_LENGTH,
} from './limits.js';

/**
 * What the validator returns: the validated frame, or an error to send back as a failed reply.
 * `id` is set on failures whenever the frame's own `id` was valid, so the server can reply to it.
 */
export type FrameResult =
  | { ok: true; frame: ClientFrame }
  | { ok: false; id?: string; code: 'bad_request' | 'too_large'; message: string };

/** Message kinds that only the server may write (clients would otherwise forge system events). */
export const RESERVED_KINDS: readonly string[] = Object.freeze(['system']);

/** Client message ids starting with this are the server's own (system messages): refused in `send`. */
export const SYSTEM_CMID_PREFIX = 'system:';

type Obj = { readonly [key: string]: unknown };

// ---------------------------------------------------------------------------------------------
// Error state. Checkers record the error and return null; validateClientFrame wraps it.

let errCode: 'bad_request' | 'too_large' = 'bad_request';
let errMessage = '';

function bad(message: string): null {
  errCode = 'bad_request';
  errMessage = message;
  return null;
}

function tooLarge(message: string): null {
  errCode = 'too_large';
  errMessage = message;
  return null;
}

/** `"name" is required` when v is absent, else `"name" must be <what>`. */
function badField(name: string, v: unknown, what: string): null {
  return bad(v === undefined || v === null ? `"${name}" is required` : `"${name}" must be ${what}`);
}

function chars(max: number): string {
  return `a string of 1..${max} characters`;
}

// ---------------------------------------------------------------------------------------------
// Primitive checks (no allocation)

function absent(v: unknown): v is undefined | null {
  return v === undefined || v === null;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A string of 1..max UTF-16 code units. */
function isStr(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length !== 0 && v.length <= max;
}

/** A safe integer >= min (JSON numbers like 1.5, 1e300 or -1 fail). */
function isInt(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
}

/**
 * Whether s holds no lone surrogate (is well-formed UTF-16, so it survives UTF-8 storage as is).
 * Native `String.prototype.isWellFormed` where the engine has it (Node 20, browsers since 2023),
 * else {@link hasNoLoneSurrogate}.
 */
const isWellFormed: (s: string) => boolean = (() => {
  const native = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;
  return native ? (s: string) => native.call(s) : hasNoLoneSurrogate;
})();

/**
 * The fallback of {@link isWellFormed} for engines without `isWellFormed`. A loop, not the usual
 * lookbehind regex: lookbehind is itself a syntax error in the Safari versions (< 16.4) that lack
 * `isWellFormed`, and would break the whole module there. Exported for tests only.
 *
 * @internal
 */
export function hasNoLoneSurrogate(s: string): boolean {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c >= 0xdc00) return false; // a low surrogate not preceded by a high one
    const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
    if (d < 0xdc00 || d > 0xdfff) return false; // a high surrogate not followed by a low one
    i++;
  }
  return true;
}

/**
 * A `\uD800`..`\uDFFF` escape in JSON text (any case). JSON text that has none, and no literal
 * lone surrogate, cannot parse into a string holding a lone surrogate.
 */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * Whether strings parsed from this JSON text may hold lone surrogates, so the validated frame
 * must be checked for them. Text decoded from UTF-8 (as the server's WebSocket frames are) has no
 * literal lone surrogate, so for nearly every frame this is one failed regex search.
 */
function mayHoldLoneSurrogate(text: string): boolean {
  return SURROGATE_ESCAPE.test(text) || !isWellFormed(text);
}

/**
 * The path (`.body`, `.users[3]`, `.subscription.keys.auth`) of the first string in v holding a
 * lone surrogate, or null. Paths are built only on the way out of a hit.
 */
function loneSurrogatePath(v: unknown): string | null {
  if (typeof v === 'string') return isWellFormed(v) ? null : '';
  if (typeof v !== 'object' || v === null) return null;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = loneSurrogatePath(v[i]);
      if (p !== null) return `[${i}]${p}`;
    }
    return null;
  }
  for (const k in v) {
    const p = loneSurrogatePath((v as Obj)[k]);
    if (p !== null) return `.${k}${p}`;
  }
  return null;
}

// Char classes for the format checks below, indexed by char code < 128.
const B64 = 1; // [A-Za-z0-9+/_-]: standard and URL-safe base64 alphabets
const HEX = 2; // [0-9A-Fa-f]
const CLS = new Uint8Array(128);
for (let c = 48; c <= 57; c++) CLS[c] = B64 | HEX;
for (let c = 65; c <= 90; c++) CLS[c] = c <= 70 ? B64 | HEX : B64;
for (let c = 97; c <= 122; c++) CLS[c] = c <= 102 ? B64 | HEX : B64;
CLS[43] = B64; // +
CLS[47] = B64; // /
CLS[95] = B64; // _
CLS[45] = B64; // -

/** A string with no C0 control characters, DEL or C1 controls (names, kinds, client names). */
function noControls(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  }
  return true;
}

/** A string of printable ASCII without spaces (0x21..0x7e): tokens, topics, URLs. */
function isVisibleAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** Base64 (standard or URL-safe alphabet), at most two `=` of padding, 1..max chars. */
function isBase64(v: unknown, max: number): v is string {
  if (typeof v !== 'string') return false;
  const n = v.length;
  if (n === 0 || n > max) return false;
  let end = n;
  if (v.charCodeAt(end - 1) === 61) end--;
  if (end > 0 && end < n && v.charCodeAt(end - 1) === 61) end--;
  if (end === 0) return false;
  for (let i = 0; i < end; i++) {
    const c = v.charCodeAt(i);
    if (c > 127 || (CLS[c]! & B64) === 0) return false;
  }
  return true;
}

/** An even-length hex string of 2..max chars (an APNs device token). */
function isHex(v: unknown, max: number): v is string {
  if (typeof v !== 'string') return false;
  const n = v.length;
  if (n === 0 || n > max || (n & 1) !== 0) return false;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c > 127 || (CLS[c]! & HEX) === 0) return false;
  }
  return true;
}

/** An `https://` URL with a non-empty host, printable ASCII only, at most max chars. */
function isHttpsUrl(v: unknown, max: number): v is string {
  if (typeof v !== 'string') return false;
  const n = v.length;
  if (n < 9 || n > max || !v.startsWith('https://')) return false;
  const h = v.charCodeAt(8);
  if (h === 47 /* / */ || h === 63 /* ? */ || h === 35 /* # */ || h === 64 /* @ */) return false;
  return isVisibleAscii(v);
}

/** A message kind: 1..max chars, no control characters, not reserved for the server. */
function isKind(v: unknown, max: number): v is string {
  return isStr(v, max) && noControls(v) && v !== 'system';
}

/** A display name of 1..max code points, no control characters, not blank. */
function isName(v: unknown, max: number): v is string {
  if (typeof v !== 'string') return false;
  const n = v.length;
  if (n === 0 || n > 2 * max) return false;
  if (n > max) {
    // Count code points: a surrogate pair is one.
    let cps = n;
    for (let i = 0; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
        const p = v.charCodeAt(i - 1);
        if (p >= 0xd800 && p <= 0xdbff) cps--;
      }
    }
    if (cps > max) return false;
  }
  return noControls(v) && v.trim().length !== 0;
}

/** A media content type: `type/subtype[; params]`, printable ASCII, 3..255 chars. */
function isContentType(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  const n = v.length;
  if (n < 3 || n > MAX_CONTENT_TYPE_LENGTH) return false;
  const slash = v.indexOf('/');
  if (slash < 1 || slash === n - 1) return false;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return v.charCodeAt(0) !== 32;
}

// ---------------------------------------------------------------------------------------------
// Composite checks (allocate only the copy that goes into the result)

/** The first string that occurs twice in a list of strings, or undefined. */
function findDuplicate(list: readonly string[]): string | undefined {
  const n = list.length;
  if (n <= 16) {
    for (let i = 1; i < n; i++) {
      const s = list[i]!;
      for (let j = 0; j < i; j++) if (list[j] === s) return s;
    }
    return undefined;
  }
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const s = list[i]!;
    if (seen.has(s)) return s;
    seen.add(s);
  }
  return undefined;
}

/** A list of min..max distinct user ids; more than max is `too_large` (group and presence sizes). */
function userList(v: unknown, name: string, min: number, max: number): string[] | null {
  if (!Array.isArray(v)) return badField(name, v, 'an array of user ids');
  const list = v as readonly unknown[];
  const n = list.length;
  if (n > max) return tooLarge(`"${name}" has more than ${max} users`);
  if (n < min) return bad(`"${name}" must not be empty`);
  for (let i = 0; i < n; i++) {
    if (!isUserId(list[i])) return bad(`"${name}[${i}]" must be a user id`);
  }
  const dup = findDuplicate(list as readonly string[]);
  if (dup !== undefined) return bad(`"${name}" lists "${dup}" more than once`);
  return list.slice() as string[];
}

/** `send` `media`: up to maxMediaPerMessage distinct media ids. */
function mediaList(v: unknown, max: number): string[] | null {
  if (!Array.isArray(v)) return badField('media', v, 'an array of media ids');
  const list = v as readonly unknown[];
  const n = list.length;
  if (n > max) return bad(`"media" has more than ${max} entries`);
  for (let i = 0; i < n; i++) {
    if (!isMediaId(list[i])) return bad(`"media[${i}]" must be a media id`);
  }
  const dup = findDuplicate(list as readonly string[]);
  if (dup !== undefined) return bad(`"media" lists "${dup}" more than once`);
  return list.slice() as string[];
}

/** A `limit`: absent → the default (capped at max); else an integer 1..max. -1 when invalid. */
function limitOf(v: unknown, def: number, max: number): number {
  if (v === undefined || v === null) return Math.min(def, max);
  return isInt(v, 1) && v <= max ? v : -1;
}

// ---------------------------------------------------------------------------------------------
// One validator per op. Each reads the fields it knows by name and builds a new frame.

function vConnect(o: Obj, id: string, L: Limits): ConnectFrame | null {
  const token = o.token;
  if (!isStr(token, L.maxTokenLength)) return badField('token', token, chars(L.maxTokenLength));
  const device = o.device;
  if (!isDeviceId(device)) return badField('device', device, 'a device id');
  if (isReservedDevice(device)) return bad(`"device" "${device}" is reserved for the server API`);
  const frame: ConnectFrame = { type: 'connect', id, token, device };
  const client = o.client;
  if (!absent(client)) {
    if (!isStr(client, L.maxClientNameLength) || !noControls(client)) {
      return bad(`"client" must be ${chars(L.maxClientNameLength)} without control characters`);
    }
    frame.client = client;
  }
  return frame;
}

function vSend(o: Obj, id: string, L: Limits): SendFrame | null {
  const conv = o.conv;
  if (!isConvId(conv)) return badField('conv', conv, 'a conversation id');
  const cmid = o.cmid;
  if (!isStr(cmid, L.maxCmidLength)) return badField('cmid', cmid, chars(L.maxCmidLength));
  if (cmid.startsWith(SYSTEM_CMID_PREFIX))
    return bad(`"cmid" must not start with "${SYSTEM_CMID_PREFIX}" (reserved)`);
  const kind = o.kind;
  if (!isKind(kind, L.maxKindLength)) {
    if (kind === 'system') return bad('"kind" "system" is reserved for the server');
    return badField('kind', kind, `${chars(L.maxKindLength)} without control characters`);
  }
  const body = o.body;
  if (typeof body !== 'string') return badField('body', body, 'a string');
  if (utf8LengthExceeds(body, L.maxBodyBytes)) return tooLarge(`"body" exceeds ${L.maxBodyBytes} bytes`);
  const frame: SendFrame = { type: 'send', id, conv, cmid, kind, body };
  const replyTo = o.reply_to;
  if (!absent(replyTo)) {
    if (!isInt(replyTo, 1)) return bad('"reply_to" must be an integer >= 1');
    frame.reply_to = replyTo;
  }
  const media = o.media;
  if (!absent(media)) {
    const list = mediaList(media, L.maxMediaPerMessage);
    if (list === null) return null;
    frame.media = list;
  }
  return frame;
}

function vSync(o: Obj, id: string, L: Limits): SyncFrame | null {
  const after = o.after;
  if (!isInt(after, 0)) return badField('after', after, 'an integer >= 0');
  const limit = limitOf(o.limit, DEFAULT_SYNC_LIMIT, L.maxSyncLimit);
  if (limit < 0) return bad(`"limit" must be an integer 1..${L.maxSyncLimit}`);
  return { type: 'sync', id, after, limit };
}

function vHistory(o: Obj, id: string, L: Limits): HistoryFrame | null {
  const conv = o.conv;
  if (!isConvId(conv)) return badField('conv', conv, 'a conversation id');
  const limit = limitOf(o.limit, DEFAULT_HISTORY_LIMIT, L.maxHistoryLimit);
  if (limit < 0) return bad(`"limit" must be an integer 1..${L.maxHistoryLimit}`);
  const frame: HistoryFrame = { type: 'history', id, conv, limit };
  const before = o.before;
  const after = o.after;
  if (!absent(before)) {
    if (!absent(after)) return bad('"before" and "after" cannot both be given');
    if (!isInt(before, 1)) return bad('"before" must be an integer >= 1');
    frame.before = before;
  } else if (!absent(after)) {
    if (!isInt(after, 0)) return bad('"after" must be an integer >= 0');
    frame.after = after;
  }
  return frame;
}

function vConversations(o: Obj, id: string, L: Limits): ConversationsFrame | null {
  const limit = limitOf(o.limit, DEFAULT_CONVERSATIONS_LIMIT, L.maxConversationsLimit);
  if (limit < 0) return bad(`"limit" must be an integer 1..${L.maxConversationsLimit}`);
  const frame: ConversationsFrame = { type: 'conversations', id, limit };
  const beforeTs = o.before_ts;
  if (!absent(beforeTs)) {
    if (!isInt(beforeTs, 0)) return bad('"before_ts" must be an integer >= 0');
    frame.before_ts = beforeTs;
  }
  return frame;
}

function vReceipt(o: Obj, id: string | undefined): ReceiptFrame | null {
  const conv = o.conv;
  if (!isConvId(conv)) return badField('conv', conv, 'a conversation id');
  const kind = o.kind;
  if (kind !== 'delivered' && kind !== 'read') return badField('kind', kind, '"delivered" or "read"');
  const seq = o.seq;
  if (!isInt(seq, 1)) return badField('seq', seq, 'an integer >= 1');
  return id === undefined ? { type: 'receipt', conv, kind, seq } : { type: 'receipt', id, conv, kind, seq };
}

function vTyping(o: Obj, id: string | undefined): TypingFrame | null {
  const conv = o.conv;
  if (!isConvId(conv)) return badField('conv', conv, 'a conversation id');
  const state = o.state;
  if (state !== 'start' && state !== 'stop') return badField('state', state, '"start" or "stop"');
  return id === undefined ? { type: 'typing', conv, state } : { type: 'typing', id, conv, state };
}

function vPing(id: string | undefined): PingFrame {
  return id === undefined ? { type: 'ping' } : { type: 'ping', id };
}

/** The `conv` of a group op: a group id; a direct id gets a message saying a group is needed. */
function groupConv(o: Obj): string | null {
  const conv = o.conv;
  if (!isGroupConv(conv)) {
    if (isConvId(conv)) return bad('"conv" must be a group conversation id');
    return badField('conv', conv, 'a group conversation id');
  }
  return conv;
}

function vReceipts(o: Obj, id: string): ReceiptsFrame | null {
  const conv = o.conv;
  if (!isConvId(conv)) return badField('conv', conv, 'a conversation id');
  return { type: 'receipts', id, conv };
}

function vCreateGroup(o: Obj, id: string, L: Limits): CreateGroupFrame | null {
  const name = o.name;
  if (!isName(name, L.maxGroupNameLength)) {
    return badField(
      'name',
      name,
      `1..${L.maxGroupNameLength} characters, not blank, without control characters`,
    );
  }
  const members = userList(o.members, 'members', 0, L.maxGroupSize);
  if (members === null) return null;
  return { type: 'create_group', id, name, members };
}

function vAddMembers(o: Obj, id: string, L: Limits): AddMembersFrame | null {
  const conv = groupConv(o);
  if (conv === null) return null;
  const users = userList(o.users, 'users', 1, L.maxGroupSize);
  if (users === null) return null;
  return { type: 'add_members', id, conv, users };
}

function vRemoveMembers(o: Obj, id: string, L: Limits): RemoveMembersFrame | null {
  const conv = groupConv(o);
  if (conv === null) return null;
  const users = userList(o.users, 'users', 1, L.maxGroupSize);
  if (users === null) return null;
  return { type: 'remove_members', id, conv, users };
}

function vLeave(o: Obj, id: string): LeaveFrame | null {
  const conv = groupConv(o);
  return conv === null ? null : { type: 'leave', id, conv };
}

function vUpdateGroup(o: Obj, id: string, L: Limits): UpdateGroupFrame | null {
  const conv = groupConv(o);
  if (conv === null) return null;
  const name = o.name;
  if (!isName(name, L.maxGroupNameLength)) {
    return badField(
      'name',
      name,
      `1..${L.maxGroupNameLength} characters, not blank, without control characters`,
    );
  }
  return { type: 'update_group', id, conv, name };
}

function vSetRole(o: Obj, id: string): SetRoleFrame | null {
  const conv = groupConv(o);
  if (conv === null) return null;
  const user = o.user;
  if (!isUserId(user)) return badField('user', user, 'a user id');
  const role = o.role;
  if (role !== 'admin' && role !== 'member') return badField('role', role, '"admin" or "member"');
  return { type: 'set_role', id, conv, user, role };
}

function vGroupInfo(o: Obj, id: string): GroupInfoFrame | null {
  const conv = groupConv(o);
  return conv === null ? null : { type: 'group_info', id, conv };
}

function vPresenceSub(o: Obj, id: string, L: Limits): PresenceSubFrame | null {
  const users = userList(o.users, 'users', 1, L.maxPresenceUsers);
  return users === null ? null : { type: 'presence_sub', id, users };
}

function vPresenceUnsub(o: Obj, id: string, L: Limits): PresenceUnsubFrame | null {
  const users = userList(o.users, 'users', 1, L.maxPresenceUsers);
  return users === null ? null : { type: 'presence_unsub', id, users };
}

function vSettings(o: Obj, id: string): SettingsFrame | null {
  const frame: SettingsFrame = { type: 'settings', id };
  const readReceipts = o.read_receipts;
  if (!absent(readReceipts)) {
    if (typeof readReceipts !== 'boolean') return bad('"read_receipts" must be true or false');
    frame.read_receipts = readReceipts;
  }
  const lastSeen = o.last_seen;
  if (!absent(lastSeen)) {
    if (lastSeen !== 'everyone' && lastSeen !== 'nobody') {
      return bad('"last_seen" must be "everyone" or "nobody"');
    }
    frame.last_seen = lastSeen;
  }
  const groupAdd = o.group_add;
  if (!absent(groupAdd)) {
    if (groupAdd !== 'everyone' && groupAdd !== 'nobody') {
      return bad('"group_add" must be "everyone" or "nobody"');
    }
    frame.group_add = groupAdd;
  }
  return frame;
}

/** An invite code: 1..MAX_INVITE_CODE_LENGTH chars of the base64url alphabet, no padding. */
function isInviteCode(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  const n = v.length;
  if (n === 0 || n > MAX_INVITE_CODE_LENGTH) return false;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c > 127 || (CLS[c]! & B64) === 0 || c === 43 /* + */ || c === 47 /* / */) return false;
  }
  return true;
}

function vCreateInvite(o: Obj, id: string): CreateInviteFrame | null {
  const conv = groupConv(o);
  if (conv === null) return null;
  const frame: CreateInviteFrame = { type: 'create_invite', id, conv };
  const expiresIn = o.expires_in_ms;
  if (!absent(expiresIn)) {
    if (!isInt(expiresIn, 1) || expiresIn > MAX_INVITE_EXPIRES_MS) {
      return bad(`"expires_in_ms" must be an integer 1..${MAX_INVITE_EXPIRES_MS}`);
    }
    frame.expires_in_ms = expiresIn;
  }
  const maxUses = o.max_uses;
  if (!absent(maxUses)) {
    if (!isInt(maxUses, 1) || maxUses > MAX_INVITE_USES) {
      return bad(`"max_uses" must be an integer 1..${MAX_INVITE_USES}`);
    }
    frame.max_uses = maxUses;
  }
  return frame;
}

function vRevokeInvite(o: Obj, id: string): RevokeInviteFrame | null {
  const conv = groupConv(o);
  if (conv === null) return null;
  const code = o.code;
  if (!isInviteCode(code)) return badField('code', code, 'an invite code');
  return { type: 'revoke_invite', id, conv, code };
}

function vJoinGroup(o: Obj, id: string): JoinGroupFrame | null {
  const code = o.code;
  return isInviteCode(code) ? { type: 'join_group', id, code } : badField('code', code, 'an invite code');
}

function vBlock(o: Obj, id: string): BlockFrame | null {
  const user = o.user;
  return isUserId(user) ? { type: 'block', id, user } : badField('user', user, 'a user id');
}

function vUnblock(o: Obj, id: string): UnblockFrame | null {
  const user = o.user;
  return isUserId(user) ? { type: 'unblock', id, user } : badField('user', user, 'a user id');
}

function vPushRegister(o: Obj, id: string): PushRegisterFrame | null {
  const platform = o.platform;
  switch (platform) {
    case 'apns': {
      const token = o.token;
      if (!isHex(token, MAX_PUSH_TOKEN_LENGTH)) {
        return badField('token', token, `a hex string of 2..${MAX_PUSH_TOKEN_LENGTH} characters`);
      }
      const topic = o.topic;
      if (!isStr(topic, MAX_PUSH_TOPIC_LENGTH) || !isVisibleAscii(topic)) {
        return badField('topic', topic, `${chars(MAX_PUSH_TOPIC_LENGTH)} of printable ASCII`);
      }
      return { type: 'push_register', id, platform, token, topic };
    }
    case 'fcm': {
      const token = o.token;
      if (!isStr(token, MAX_PUSH_TOKEN_LENGTH) || !isVisibleAscii(token)) {
        return badField('token', token, `${chars(MAX_PUSH_TOKEN_LENGTH)} of printable ASCII`);
      }
      return { type: 'push_register', id, platform, token };
    }
    case 'webpush': {
      const sub = o.subscription;
      if (!isObj(sub)) return badField('subscription', sub, 'a push subscription object');
      const endpoint = sub.endpoint;
      if (!isHttpsUrl(endpoint, MAX_PUSH_ENDPOINT_LENGTH)) {
        return badField(
          'subscription.endpoint',
          endpoint,
          `an https URL of at most ${MAX_PUSH_ENDPOINT_LENGTH} characters`,
        );
      }
      const keys = vPushKeys(sub.keys, 'subscription.keys');
      if (!keys) return null;
      return { type: 'push_register', id, platform, subscription: { endpoint, keys } };
    }
    case 'unifiedpush': {
      const endpoint = o.endpoint;
      if (!isHttpsUrl(endpoint, MAX_PUSH_ENDPOINT_LENGTH)) {
        return badField(
          'endpoint',
          endpoint,
          `an https URL of at most ${MAX_PUSH_ENDPOINT_LENGTH} characters`,
        );
      }
      if (absent(o.keys)) return { type: 'push_register', id, platform, endpoint };
      // Distributors that speak UnifiedPush's Web Push profile hand out keys: the message is then
      // encrypted as for Web Push.
      const keys = vPushKeys(o.keys, 'keys');
      return keys ? { type: 'push_register', id, platform, endpoint, keys } : null;
    }
    default:
      return badField('platform', platform, '"apns", "fcm", "webpush" or "unifiedpush"');
  }
}

/** A push subscription's browser-side keys (`p256dh`, `auth`), or null after reporting what is wrong. */
function vPushKeys(keys: unknown, field: string): { p256dh: string; auth: string } | null {
  if (!isObj(keys)) return badField(field, keys, 'an object');
  const p256dh = keys.p256dh;
  if (!isBase64(p256dh, MAX_PUSH_KEY_LENGTH)) {
    return badField(`${field}.p256dh`, p256dh, `base64url of at most ${MAX_PUSH_KEY_LENGTH} characters`);
  }
  const auth = keys.auth;
  if (!isBase64(auth, MAX_PUSH_KEY_LENGTH)) {
    return badField(`${field}.auth`, auth, `base64url of at most ${MAX_PUSH_KEY_LENGTH} characters`);
  }
  return { p256dh, auth };
}

function vKeysUpload(o: Obj, id: string): KeysUploadFrame | null {
  const frame: KeysUploadFrame = { type: 'keys_upload', id };
  const identityKey = o.identity_key;
  if (!absent(identityKey)) {
    if (!isBase64(identityKey, MAX_KEY_LENGTH)) {
      return bad(`"identity_key" must be base64 of 1..${MAX_KEY_LENGTH} characters`);
    }
    frame.identity_key = identityKey;
  }
  const spk = o.signed_prekey;
  if (!absent(spk)) {
    if (!isObj(spk)) return bad('"signed_prekey" must be an object');
    const keyId = spk.key_id;
    if (!isInt(keyId, 0)) return badField('signed_prekey.key_id', keyId, 'an integer >= 0');
    const key = spk.key;
    if (!isBase64(key, MAX_KEY_LENGTH)) {
      return badField('signed_prekey.key', key, `base64 of 1..${MAX_KEY_LENGTH} characters`);
    }
    const signature = spk.signature;
    if (!isBase64(signature, MAX_KEY_LENGTH)) {
      return badField('signed_prekey.signature', signature, `base64 of 1..${MAX_KEY_LENGTH} characters`);
    }
    const signed: SignedPrekey = { key_id: keyId, key, signature };
    frame.signed_prekey = signed;
  }
  const otks = o.one_time_prekeys;
  if (!absent(otks)) {
    if (!Array.isArray(otks)) return bad('"one_time_prekeys" must be an array');
    const list = otks as readonly unknown[];
    const n = list.length;
    if (n === 0 || n > MAX_ONE_TIME_PREKEYS) {
      return bad(`"one_time_prekeys" must have 1..${MAX_ONE_TIME_PREKEYS} entries`);
    }
    const out: OneTimePrekey[] = [];
    for (let i = 0; i < n; i++) {
      const k = list[i];
      if (!isObj(k)) return bad(`"one_time_prekeys[${i}]" must be an object`);
      const keyId = k.key_id;
      if (!isInt(keyId, 0)) return badField(`one_time_prekeys[${i}].key_id`, keyId, 'an integer >= 0');
      const key = k.key;
      if (!isBase64(key, MAX_KEY_LENGTH)) {
        return badField(`one_time_prekeys[${i}].key`, key, `base64 of 1..${MAX_KEY_LENGTH} characters`);
      }
      out.push({ key_id: keyId, key });
    }
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const keyId = out[i]!.key_id;
      if (seen.has(keyId)) return bad(`"one_time_prekeys" lists key_id ${keyId} more than once`);
      seen.add(keyId);
    }
    frame.one_time_prekeys = out;
  }
  if (
    frame.identity_key === undefined &&
    frame.signed_prekey === undefined &&
    frame.one_time_prekeys === undefined
  ) {
    return bad('"keys_upload" needs "identity_key", "signed_prekey" or "one_time_prekeys"');
  }
  return frame;
}

function vKeysClaim(o: Obj, id: string): KeysClaimFrame | null {
  const user = o.user;
  return isUserId(user) ? { type: 'keys_claim', id, user } : badField('user', user, 'a user id');
}

function vToDevice(o: Obj, id: string, L: Limits): ToDeviceFrame | null {
  const user = o.user;
  if (!isUserId(user)) return badField('user', user, 'a user id');
  const device = o.device;
  if (!isDeviceId(device)) return badField('device', device, 'a device id');
  const body = o.body;
  if (typeof body !== 'string') return badField('body', body, 'a string');
  if (utf8LengthExceeds(body, L.maxBodyBytes)) return tooLarge(`"body" exceeds ${L.maxBodyBytes} bytes`);
  return { type: 'to_device', id, user, device, body };
}

function vToDeviceAck(o: Obj, id: string | undefined): ToDeviceAckFrame | null {
  const upto = o.upto;
  if (!isInt(upto, 0)) return badField('upto', upto, 'an integer >= 0');
  return id === undefined ? { type: 'to_device_ack', upto } : { type: 'to_device_ack', id, upto };
}

function vMute(o: Obj, id: string): MuteFrame | null {
  const conv = o.conv;
  if (!isConvId(conv)) return badField('conv', conv, 'a conversation id');
  const until = o.until;
  if (until === undefined) return { type: 'mute', id, conv };
  return isInt(until, 1) ? { type: 'mute', id, conv, until } : badField('until', until, 'a time in ms >= 1');
}

function vUnmute(o: Obj, id: string): UnmuteFrame | null {
  const conv = o.conv;
  return isConvId(conv) ? { type: 'unmute', id, conv } : badField('conv', conv, 'a conversation id');
}

function vRevokeDevice(o: Obj, id: string): RevokeDeviceFrame | null {
  const device = o.device;
  return isDeviceId(device)
    ? { type: 'revoke_device', id, device }
    : badField('device', device, 'a device id');
}

function vMediaUpload(o: Obj, id: string): MediaUploadFrame | null {
  const size = o.size;
  if (!isInt(size, 1)) return badField('size', size, 'an integer >= 1');
  const contentType = o.content_type;
  if (!isContentType(contentType)) {
    return badField(
      'content_type',
      contentType,
      `a media type such as "image/png" of at most ${MAX_CONTENT_TYPE_LENGTH} characters`,
    );
  }
  return { type: 'media_upload', id, size, content_type: contentType };
}

function vMediaDownload(o: Obj, id: string): MediaDownloadFrame | null {
  const media = o.media;
  return isMediaId(media) ? { type: 'media_download', id, media } : badField('media', media, 'a media id');
}

function noId(): null {
  return bad('"id" is required');
}

// ---------------------------------------------------------------------------------------------
// Entry points

const NOT_OBJECT = 'frame must be a JSON object';

/** Echoes at most this many chars of an unknown `type` in the error message. */
const MAX_ECHOED_TYPE = 32;

/** Validators of the ops whose frames must carry an `id`. */
const WITH_ID = new Map<string, (o: Obj, id: string, L: Limits) => ClientFrame | null>([
  ['send', vSend],
  ['sync', vSync],
  ['history', vHistory],
  ['conversations', vConversations],
  ['presence_sub', vPresenceSub],
  ['presence_unsub', vPresenceUnsub],
  ['connect', vConnect],
  ['receipts', vReceipts],
  ['to_device', vToDevice],
  ['create_group', vCreateGroup],
  ['add_members', vAddMembers],
  ['remove_members', vRemoveMembers],
  ['leave', vLeave],
  ['update_group', vUpdateGroup],
  ['set_role', vSetRole],
  ['group_info', vGroupInfo],
  ['settings', vSettings],
  ['create_invite', vCreateInvite],
  ['revoke_invite', vRevokeInvite],
  ['join_group', vJoinGroup],
  ['block', vBlock],
  ['unblock', vUnblock],
  ['push_register', vPushRegister],
  ['push_unregister', (_o, id) => ({ type: 'push_unregister', id }) satisfies PushUnregisterFrame],
  ['keys_upload', vKeysUpload],
  ['keys_claim', vKeysClaim],
  ['keys_count', (_o, id) => ({ type: 'keys_count', id }) satisfies KeysCountFrame],
  ['devices', (_o, id) => ({ type: 'devices', id }) satisfies DevicesFrame],
  ['revoke_device', vRevokeDevice],
  ['mute', vMute],
  ['unmute', vUnmute],
  ['media_upload', vMediaUpload],
  ['media_download', vMediaDownload],
]);

/** Validators of the ops whose `id` may be left out (then no reply is sent). */
const OPTIONAL_ID = new Map<string, (o: Obj, id: string | undefined, L: Limits) => ClientFrame | null>([
  ['receipt', vReceipt],
  ['typing', vTyping],
  ['ping', (_o, id) => vPing(id)],
  ['to_device_ack', vToDeviceAck],
]);

/**
 * Validates an already-parsed client frame (e.g. from a binary codec, or JSON parsed elsewhere).
 * Returns a NEW frame holding only the known fields, with defaults filled in (`limit`), or an
 * error naming the offending field. Never throws on plain data (anything JSON.parse or a decoder
 * makes; a throwing getter or Proxy would throw through). Never copies `__proto__` or unknown keys.
 *
 * @example
 * const r = validateClientFrame({ type: 'receipt', conv: 'dm:alice:bob', kind: 'read', seq: 18 });
 * if (r.ok && r.frame.type === 'receipt') markRead(r.frame.conv, r.frame.seq);
 */
export function validateClientFrame(value: unknown, limits: Limits = DEFAULT_LIMITS): FrameResult {
  return validate(value, limits, true);
}

/**
 * {@link validateClientFrame}, with the lone-surrogate check left out when `checkSurrogates` is
 * false: {@link parseClientFrame} knows from the raw text when no string can hold one.
 */
function validate(value: unknown, limits: Limits, checkSurrogates: boolean): FrameResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'bad_request', message: NOT_OBJECT };
  }
  const o = value as Obj;
  const rawId = o.id;
  let id: string | undefined;
  if (!absent(rawId)) {
    if (!isStr(rawId, limits.maxRequestIdLength)) {
      return { ok: false, code: 'bad_request', message: `"id" must be ${chars(limits.maxRequestIdLength)}` };
    }
    // Checked before anything else: an id that is refused is not echoed in the error reply.
    if (checkSurrogates && !isWellFormed(rawId)) {
      return { ok: false, code: 'bad_request', message: loneSurrogateMessage('id') };
    }
    id = rawId;
  }
  const type = o.type;
  let frame: ClientFrame | null;
  const needsId = typeof type === 'string' ? WITH_ID.get(type) : undefined;
  const optionalId = needsId || typeof type !== 'string' ? undefined : OPTIONAL_ID.get(type);
  if (needsId) frame = id === undefined ? noId() : needsId(o, id, limits);
  else if (optionalId) frame = optionalId(o, id, limits);
  else {
    let message: string;
    if (typeof type === 'string') {
      const shown = type.length > MAX_ECHOED_TYPE ? `${type.slice(0, MAX_ECHOED_TYPE)}…` : type;
      message = `unknown type ${JSON.stringify(shown)}`;
    } else {
      message = absent(type) ? '"type" is required' : '"type" must be a string';
    }
    return id === undefined
      ? { ok: false, code: 'bad_request', message }
      : { ok: false, id, code: 'bad_request', message };
  }
  if (frame !== null && checkSurrogates) {
    // Checked on the validated frame: it holds every known string field, and no unknown one
    // (ignored fields are never stored, so they may hold anything).
    const path = loneSurrogatePath(frame);
    if (path !== null) frame = bad(loneSurrogateMessage(path.slice(1)));
  }
  if (frame === null) {
    return id === undefined
      ? { ok: false, code: errCode, message: errMessage }
      : { ok: false, id, code: errCode, message: errMessage };
  }
  return { ok: true, frame };
}

/** The error message for a string field holding a lone surrogate; `field` is a path like `users[2]`. */
function loneSurrogateMessage(field: string): string {
  return `"${field}" must be well-formed Unicode (it holds a lone surrogate)`;
}

/**
 * Parses and validates one text frame as received on the WebSocket. Frames over
 * `limits.maxFrameBytes` are `too_large` without being parsed; malformed JSON and non-objects
 * are `bad_request`. Never throws. Looks for lone surrogates only when the text holds a surrogate
 * escape (or a literal lone surrogate), so the check costs ordinary frames one regex search.
 *
 * @example
 * const r = parseClientFrame(text);
 * if (!r.ok) ws.send(encodeFrame({ type: 'reply', id: r.id, ok: false, error: { code: r.code, message: r.message } }));
 */
export function parseClientFrame(text: string, limits: Limits = DEFAULT_LIMITS): FrameResult {
  if (utf8LengthExceeds(text, limits.maxFrameBytes)) {
    return { ok: false, code: 'too_large', message: `frame exceeds ${limits.maxFrameBytes} bytes` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'bad_request', message: 'frame is not valid JSON' };
  }
  return validate(value, limits, mayHoldLoneSurrogate(text));
}
