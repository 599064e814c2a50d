/**
 * Identifier formats: user, device, conversation and media ids, and UTF-8 length helpers.
 * These run on every frame, so they are char loops over lookup tables rather than regexes
 * (measured faster in `bench/validate.bench.ts`); the regexes are exported for documentation
 * and for code that is not on a hot path.
 *
 * @module
 */

/** The user id format of protocol.md (a token's `sub`). Device ids use the same format. */
export const USER_ID_RE = /^[A-Za-z0-9_.-]{1,64}$/;
/** The group conversation id format: `g:` followed by a server-made id. */
export const GROUP_CONV_RE = /^g:[A-Za-z0-9_-]{1,64}$/;
/** The media id format: URL-safe, because media ids go into upload and download URLs. */
export const MEDIA_ID_RE = /^[A-Za-z0-9._~-]{1,128}$/;

/** Longest user or device id. */
export const MAX_USER_ID_LENGTH = 64;
/** Longest server-made part of a group id (after `g:`). */
export const MAX_GROUP_ID_LENGTH = 64;

// Lookup tables indexed by char code (ASCII only; callers check c < 128 first).
// Bit 1: user/device id char [A-Za-z0-9_.-]. Bit 2: group id char [A-Za-z0-9_-].
// Bit 4: media id char [A-Za-z0-9._~-].
const CHAR = new Uint8Array(128);
for (let c = 48; c <= 57; c++) CHAR[c] = 7;
for (let c = 65; c <= 90; c++) CHAR[c] = 7;
for (let c = 97; c <= 122; c++) CHAR[c] = 7;
CHAR[95] = 7; // _
CHAR[45] = 7; // -
CHAR[46] = 1 | 4; // .
CHAR[126] = 4; // ~

const USER = 1;
const GROUP = 2;
const MEDIA = 4;

/** True when every char of s in [from, to) is ASCII and has `bit` set in the table. */
function allChars(s: string, from: number, to: number, bit: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || (CHAR[c]! & bit) === 0) return false;
  }
  return true;
}

/** Whether x is a user id (`^[A-Za-z0-9_.-]{1,64}$`): the check for every `user`/`users` field. */
export function isUserId(x: unknown): x is string {
  if (typeof x !== 'string') return false;
  const n = x.length;
  return n !== 0 && n <= MAX_USER_ID_LENGTH && allChars(x, 0, n, USER);
}

/** Whether x is a device id. Same format as user ids; a separate name so call sites say what they mean. */
export function isDeviceId(x: unknown): x is string {
  return isUserId(x);
}

/**
 * The device of messages an app's backend sent through the server API (`from_device`), reserved:
 * no client connects as it.
 */
export const SERVER_API_DEVICE = 'server-api';

/**
 * The device of messages a service account (a bot of the app's backend) sent through the server
 * API (`from_device`), reserved: no client connects as it, so it marks a bot's messages.
 */
export const SERVICE_ACCOUNT_DEVICE = 'bot';

/** Whether a device id is reserved for messages sent through the server API. */
export function isReservedDevice(device: string): boolean {
  return device === SERVER_API_DEVICE || device === SERVICE_ACCOUNT_DEVICE;
}

/** Whether x is a group conversation id: `g:` + 1..64 of `[A-Za-z0-9_-]`. */
export function isGroupConv(x: unknown): x is string {
  if (typeof x !== 'string') return false;
  const n = x.length;
  return (
    n >= 3 &&
    n <= 2 + MAX_GROUP_ID_LENGTH &&
    x.charCodeAt(0) === 103 /* g */ &&
    x.charCodeAt(1) === 58 /* : */ &&
    allChars(x, 2, n, GROUP)
  );
}

/**
 * Whether x is a valid direct conversation id `dm:<a>:<b>`: both user ids, a <= b. Returns the
 * index of the second colon, or -1. No allocation: the sort order is checked in place.
 */
function directSplit(x: string): number {
  const n = x.length;
  if (n < 6 || n > 4 + 2 * MAX_USER_ID_LENGTH) return -1;
  if (x.charCodeAt(0) !== 100 /* d */ || x.charCodeAt(1) !== 109 /* m */ || x.charCodeAt(2) !== 58) return -1;
  let colon = -1;
  for (let i = 3; i < n; i++) {
    const c = x.charCodeAt(i);
    if (c === 58) {
      if (colon !== -1) return -1;
      colon = i;
    } else if (c > 127 || (CHAR[c]! & USER) === 0) {
      return -1;
    }
  }
  const aLen = colon - 3;
  const bLen = n - colon - 1;
  if (colon === -1 || aLen === 0 || bLen === 0 || aLen > MAX_USER_ID_LENGTH || bLen > MAX_USER_ID_LENGTH) {
    return -1;
  }
  // a <= b, compared by code unit (ids are ASCII, so this is bytewise).
  const m = Math.min(aLen, bLen);
  for (let i = 0; i < m; i++) {
    const ca = x.charCodeAt(3 + i);
    const cb = x.charCodeAt(colon + 1 + i);
    if (ca !== cb) return ca < cb ? colon : -1;
  }
  return aLen <= bLen ? colon : -1;
}

/**
 * Whether x is a conversation id: a direct id `dm:<a>:<b>` with sorted user ids, or a group id.
 * An unsorted direct id is rejected so that one pair of users can never get two conversations.
 */
export function isConvId(x: unknown): x is string {
  if (typeof x !== 'string') return false;
  const c = x.charCodeAt(0);
  if (c === 103) return isGroupConv(x);
  return c === 100 && directSplit(x) !== -1;
}

/** A conversation id taken apart: the two members of a direct conversation, or a group's id. */
export type ParsedConv = { kind: 'direct'; a: string; b: string } | { kind: 'group'; id: string };

/**
 * Takes a conversation id apart, or returns null when it is not a valid one. For direct ids,
 * `a <= b`; `a === b` is a note-to-self. For groups, `id` is the part after `g:`.
 */
export function parseConv(conv: string): ParsedConv | null {
  if (typeof conv !== 'string') return null;
  const c = conv.charCodeAt(0);
  if (c === 103) return isGroupConv(conv) ? { kind: 'group', id: conv.slice(2) } : null;
  if (c !== 100) return null;
  const colon = directSplit(conv);
  return colon === -1 ? null : { kind: 'direct', a: conv.slice(3, colon), b: conv.slice(colon + 1) };
}

/**
 * The members of a direct conversation `dm:a:b`: exactly its two users (one for a note-to-self),
 * fixed by its id, so no lookup is needed. Null for any other conversation id.
 */
export function directMembers(conv: string): string[] | null {
  const p = parseConv(conv);
  if (p?.kind !== 'direct') return null;
  return p.a === p.b ? [p.a] : [p.a, p.b];
}

/**
 * The direct conversation id of two users, the same whichever side computes it (the ids are
 * sorted). `directConv(u, u)` is u's note-to-self. Throws a TypeError when either is not a user
 * id, because a malformed conversation id must never be made and stored.
 */
export function directConv(u1: string, u2: string): string {
  if (!isUserId(u1) || !isUserId(u2)) throw new TypeError('directConv: both arguments must be user ids');
  return u1 <= u2 ? `dm:${u1}:${u2}` : `dm:${u2}:${u1}`;
}

/** Whether x is a media id (`^[A-Za-z0-9._~-]{1,128}$`), as listed in `send` `media`. */
export function isMediaId(x: unknown): x is string {
  if (typeof x !== 'string') return false;
  const n = x.length;
  return n !== 0 && n <= 128 && allChars(x, 0, n, MEDIA);
}

/**
 * The exact number of bytes of s encoded as UTF-8, without encoding it (no TextEncoder, no
 * allocation). A lone surrogate counts 3 bytes, as TextEncoder writes U+FFFD for it. Used to
 * enforce byte limits such as `maxBodyBytes` that the server's storage and fan-out depend on.
 */
export function utf8Length(s: string): number {
  return countUtf8(s, Number.POSITIVE_INFINITY);
}

/**
 * Whether s takes more than max bytes as UTF-8; `utf8Length(s) > max`, but it counts only when
 * it must. A UTF-16 code unit takes 1 to 3 bytes, so `s.length > max` is already too long and
 * `s.length * 3 <= max` cannot be; only the range between is counted, stopping early.
 */
export function utf8LengthExceeds(s: string, max: number): boolean {
  const n = s.length;
  if (n > max) return true;
  if (n * 3 <= max) return false;
  // Most long texts are ASCII: one native scan settles them (counting in a loop costs ~30 ns a
  // character, which for a 64 KiB body is most of what validating a frame costs).
  if (!NON_ASCII.test(s)) return false;
  return countUtf8(s, max) > max;
}

/** Any character but printable ASCII, tab and newlines: non-ASCII takes more than one byte in UTF-8 (the rare control characters take the exact counting path too). */
const NON_ASCII = /[^\x20-\x7e\t\n\r]/;

/** UTF-8 bytes of s, counting stopped as soon as they pass `stopAbove`. */
function countUtf8(s: string, stopAbove: number): number {
  const n = s.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else {
      // 3 bytes, or a surrogate pair: 2 code units, 4 bytes. A lone surrogate is 3 bytes (U+FFFD).
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) i++;
      }
      bytes += 2;
    }
    if (bytes > stopAbove) return bytes;
  }
  return bytes;
}
