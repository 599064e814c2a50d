/**
 * A mutation-based generator of client frames for fuzzing the validator and the gateway. It starts
 * from a corpus of valid frames of every client op and breaks them at three levels: the parsed
 * value (fields dropped, renamed, retyped, huge, deeply nested, odd Unicode), the JSON text
 * (truncated, spliced, duplicate keys, odd number literals) and the UTF-8 bytes (bit flips,
 * invalid sequences); some frames are not JSON at all, binary, or sized around the frame limit.
 *
 * Frame `index` of a run is a pure function of `(seed, index, context)`: a failure is reproduced
 * from the seed and the index alone, without replaying the frames before it.
 *
 * @module
 */

import { CLIENT_OPS, type ClientOp } from '@parley/protocol';

/** What a frame is generated for: the sending user, and real conversations it may write to. */
export interface FuzzContext {
  user: string;
  device: string;
  /** Another user, for direct conversations, group members, blocks and presence. */
  peer: string;
  /** A group the user is an admin of, or any group id. */
  group: string;
  token: string;
  /** The server's frame limit in bytes (frames are generated just under and over it). */
  maxFrameBytes: number;
}

/** One generated frame: the bytes to send, as a text or a binary WebSocket message. */
export interface FuzzFrame {
  index: number;
  bytes: Uint8Array;
  binary: boolean;
  /** The mutations applied, in order, for the failure report. */
  mutations: string[];
}

// ---------------------------------------------------------------------------------------------
// A small seeded PRNG (mulberry32), seeded per frame from (seed, index) with a splitmix32 mix.

/** Uniform random numbers from one 32-bit seed; `next()` is in [0, 1). */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

function frameSeed(seed: number, index: number): number {
  let z = (seed ^ Math.imul(index, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// The corpus: one or more valid frames per op (ids are filled in per frame).

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const B64 = 'BdGhpcyBpcyBhIGtleQ==';

/**
 * Valid frames of every client op for this context, without their `id`. An op of `CLIENT_OPS`
 * that is missing here gets a bare `{type}` frame, so new ops are fuzzed from the day they exist.
 */
export function corpus(ctx: FuzzContext): Record<ClientOp, JsonObject> {
  const frames: Record<string, JsonObject> = knownFrames(ctx);
  for (const op of CLIENT_OPS) frames[op] ??= { type: op };
  return frames as Record<ClientOp, JsonObject>;
}

function knownFrames(ctx: FuzzContext): Record<string, JsonObject> {
  const dm = ctx.user < ctx.peer ? `dm:${ctx.user}:${ctx.peer}` : `dm:${ctx.peer}:${ctx.user}`;
  return {
    connect: { type: 'connect', token: ctx.token, device: ctx.device, client: 'fuzz/1' },
    ping: { type: 'ping' },
    send: { type: 'send', conv: dm, cmid: 'c-1', kind: 'text', body: 'hello 😀', reply_to: 1 },
    sync: { type: 'sync', after: 0, limit: 10 },
    history: { type: 'history', conv: dm, before: 5, limit: 10 },
    conversations: { type: 'conversations', limit: 10 },
    receipt: { type: 'receipt', conv: dm, kind: 'read', seq: 1 },
    receipts: { type: 'receipts', conv: dm },
    create_group: { type: 'create_group', name: 'Fuzz ☕', members: [ctx.peer] },
    add_members: { type: 'add_members', conv: ctx.group, users: [ctx.peer] },
    remove_members: { type: 'remove_members', conv: ctx.group, users: [ctx.peer] },
    leave: { type: 'leave', conv: 'g:doesnotexist' },
    update_group: { type: 'update_group', conv: ctx.group, name: 'Renamed' },
    set_role: { type: 'set_role', conv: ctx.group, user: ctx.peer, role: 'member' },
    group_info: { type: 'group_info', conv: ctx.group },
    presence_sub: { type: 'presence_sub', users: [ctx.peer] },
    presence_unsub: { type: 'presence_unsub', users: [ctx.peer] },
    typing: { type: 'typing', conv: dm, state: 'start' },
    settings: { type: 'settings', read_receipts: true, last_seen: 'everyone' },
    block: { type: 'block', user: 'fuzz-nobody' },
    unblock: { type: 'unblock', user: 'fuzz-nobody' },
    push_register: { type: 'push_register', platform: 'fcm', token: 'fcm-token-1' },
    push_unregister: { type: 'push_unregister' },
    keys_upload: {
      type: 'keys_upload',
      identity_key: B64,
      signed_prekey: { key_id: 1, key: B64, signature: B64 },
      one_time_prekeys: [{ key_id: 2, key: B64 }],
    },
    keys_claim: { type: 'keys_claim', user: ctx.peer },
    keys_count: { type: 'keys_count' },
    to_device: { type: 'to_device', user: ctx.peer, device: 'd1', body: B64 },
    to_device_ack: { type: 'to_device_ack', upto: 0 },
    devices: { type: 'devices' },
    revoke_device: { type: 'revoke_device', device: 'gone-1' },
    media_upload: { type: 'media_upload', size: 1024, content_type: 'image/png' },
    media_download: { type: 'media_download', media: 'm_1' },
    create_invite: { type: 'create_invite', conv: ctx.group, expires_in_ms: 60_000, max_uses: 2 },
    revoke_invite: { type: 'revoke_invite', conv: ctx.group, code: 'AAAAAAAAAAAAAAAAAAAAAAAA' },
    join_group: { type: 'join_group', code: 'AAAAAAAAAAAAAAAAAAAAAAAA' },
  };
}

/** Extra valid shapes of some ops (other platforms, other optional fields). */
const VARIANTS: readonly JsonObject[] = [
  { type: 'push_register', platform: 'apns', token: 'ab'.repeat(32), topic: 'com.example.app' },
  {
    type: 'push_register',
    platform: 'webpush',
    subscription: { endpoint: 'https://push.example/x', keys: { p256dh: 'BNc', auth: 'tBH' } },
  },
  { type: 'push_register', platform: 'unifiedpush', endpoint: 'https://up.example/x' },
  { type: 'history', conv: 'g:nope', after: 0 },
  { type: 'send', conv: 'g:nope', cmid: 'c-2', kind: 'image', body: '', media: ['m_1', 'm_2'] },
  { type: 'settings' },
];

// ---------------------------------------------------------------------------------------------
// Interesting values

const FIELD_NAMES = [
  'type',
  'id',
  'conv',
  'cmid',
  'kind',
  'body',
  'seq',
  'after',
  'before',
  'limit',
  'users',
  'members',
  'user',
  'device',
  'token',
  'name',
  'media',
  'platform',
  '__proto__',
  'constructor',
  'toString',
  'ID',
  'Type',
  '',
];

const WEIRD_STRINGS = [
  '',
  ' ',
  'NaN',
  'Infinity',
  '-1',
  '1e309',
  '0x10',
  'null',
  'true',
  '[]',
  '{}',
  'system',
  'system:1',
  'dm:a:b',
  'dm:b:a',
  'dm:a',
  'g:',
  'g:../../etc',
  '\u0000',
  'a\u0000b',
  '\u202eevil\u202c',
  'שלום',
  '\ufeff',
  '\u2028\u2029',
  '\uffff\ufffe',
  '😀',
  '👩‍👩‍👧‍👦',
  '\ud800',
  '\udfff',
  'x\ud83d',
  '\ude00\ud83d',
  'e\u0301\u0301\u0301',
  '%00',
  '<script>',
  "'; DROP TABLE messages; --",
  '../../../../etc/passwd',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a log-injection probe, meant literally
  '${jndi:ldap://x}',
];

const WEIRD_NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  1.5,
  -1.5,
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e21,
  1e308,
  -1e308,
  Number.MIN_VALUE,
  1000,
  1001,
  201,
];

/** A random JSON value of any type, numbers and strings from the interesting lists. */
function weirdValue(r: Rng, depth = 0): Json {
  switch (r.int(depth > 2 ? 4 : 7)) {
    case 0:
      return r.pick(WEIRD_NUMBERS);
    case 1:
      return r.pick(WEIRD_STRINGS);
    case 2:
      return r.pick([null, true, false]);
    case 3:
      return r.pick(['read', 'delivered', 'start', 'admin', 'apns', 'everyone']);
    case 4:
      return Array.from({ length: r.int(4) }, () => weirdValue(r, depth + 1));
    case 5:
      return { [r.pick(FIELD_NAMES)]: weirdValue(r, depth + 1) };
    default:
      return [r.pick(WEIRD_STRINGS), r.pick(WEIRD_STRINGS)];
  }
}

/** A value nested `depth` levels deep in arrays or objects. */
function deepValue(r: Rng, depth: number): Json {
  let v: Json = r.pick(WEIRD_STRINGS);
  const useArrays = r.chance(0.5);
  for (let i = 0; i < depth; i++) v = useArrays ? [v] : { a: v };
  return v;
}

/** A string of about `n` UTF-16 units of one kind: ASCII, multi-byte, astral, or lone surrogates. */
function hugeString(r: Rng, n: number): string {
  const unit = r.pick(['x', 'é', '€', '😀', '\ud800', '"', '\\', '\u0000']);
  return unit.repeat(Math.max(1, Math.floor(n / unit.length)));
}

// ---------------------------------------------------------------------------------------------
// Mutations of the value, the text and the bytes. Each returns a short name for the report.

type ValueMutation = (f: JsonObject, r: Rng, ctx: FuzzContext) => string;

function keyOf(f: JsonObject, r: Rng): string | undefined {
  const keys = Object.keys(f);
  return keys.length === 0 ? undefined : r.pick(keys);
}

const VALUE_MUTATIONS: readonly ValueMutation[] = [
  function dropField(f, r) {
    const k = keyOf(f, r);
    if (k !== undefined) delete f[k];
    return `drop ${k}`;
  },
  function renameField(f, r) {
    const k = keyOf(f, r);
    if (k === undefined) return 'rename none';
    const to = r.pick([...FIELD_NAMES, k.toUpperCase(), ` ${k}`, `${k}\u0000`, `${k}_`]);
    const v = f[k]!;
    delete f[k];
    f[to] = v;
    return `rename ${k}→${JSON.stringify(to)}`;
  },
  function retypeField(f, r) {
    const k = keyOf(f, r) ?? 'type';
    f[k] = weirdValue(r);
    return `retype ${k}`;
  },
  function addField(f, r) {
    const k = r.pick(FIELD_NAMES);
    f[k] = weirdValue(r);
    return `add ${JSON.stringify(k)}`;
  },
  function hugeField(f, r, ctx) {
    const k = keyOf(f, r) ?? 'body';
    // Mostly just over the field limits; now and then near the body and frame limits (costly).
    const sizes = r.chance(0.97) ? [33, 65, 129, 1025, 4097] : [65_537, ctx.maxFrameBytes / 4];
    f[k] = hugeString(r, r.pick(sizes));
    return `huge ${k}`;
  },
  function deepField(f, r) {
    const k = r.chance(0.5) ? (keyOf(f, r) ?? 'x') : 'unknown';
    // Deeper ones are made as text (JSON.stringify recurses); 1000 is rare as it is costly.
    const depth = r.chance(0.9) ? r.pick([10, 100]) : 1000;
    f[k] = deepValue(r, depth);
    return `deep ${k} ${depth}`;
  },
  function unicodeField(f, r) {
    const k = keyOf(f, r) ?? 'id';
    const v = f[k];
    const s = r.pick(WEIRD_STRINGS);
    f[k] = typeof v === 'string' ? insertAt(v, s, r.int(v.length + 1)) : s;
    return `unicode ${k}`;
  },
  function swapOp(f, r) {
    f.type = r.chance(0.8)
      ? r.pick(CLIENT_OPS)
      : r.pick(['SEND', 'send ', 'reply', 'message', 'x'.repeat(100)]);
    return `op ${String(f.type).slice(0, 20)}`;
  },
  function listField(f, r, ctx) {
    const k = r.pick(['users', 'members', 'media', 'one_time_prekeys']);
    const item = r.pick<Json>([ctx.peer, ctx.user, 'm_1', 1, null, { key_id: 1, key: B64 }]);
    const n = r.chance(0.9) ? r.pick([0, 2, 17, 201]) : r.pick([513, 1001]);
    f[k] = Array.from({ length: n }, (_, i) => (r.chance(0.9) ? item : `${ctx.peer}${i}`));
    return `list ${k} ${n}`;
  },
];

function insertAt(s: string, ins: string, at: number): string {
  return s.slice(0, at) + ins + s.slice(at);
}

type TextMutation = (t: string, r: Rng) => [string, string];

const JSON_TOKENS = ['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '\n', 'null', '\\u', '\\ud800', '"x":1'];

const TEXT_MUTATIONS: readonly TextMutation[] = [
  (t, r) => {
    const at = r.int(t.length);
    return [t.slice(0, at), `truncate ${at}`];
  },
  (t, r) => {
    const at = r.int(t.length + 1);
    return [insertAt(t, r.pick(JSON_TOKENS), at), `insert token at ${at}`];
  },
  (t, r) => {
    const at = r.int(t.length);
    const n = 1 + r.int(8);
    return [t.slice(0, at) + t.slice(at + n), `cut ${n} at ${at}`];
  },
  (t, r) => {
    const key = r.pick(['type', 'id', 'conv', 'body', '__proto__']);
    return [t.replace('{', `{"${key}":${JSON.stringify(weirdValue(r))},`), `duplicate key ${key}`];
  },
  (t, r) => {
    const lit = r.pick(['1e999', '-0', '0x10', 'NaN', '01', '1.', '.5', '-', 'Infinity', '9'.repeat(400)]);
    return [t.replace(/-?\d+(\.\d+)?/, lit), `number literal ${lit.slice(0, 10)}`];
  },
  (t, r) => {
    const depth = r.chance(0.97) ? 2000 : 50_000;
    const open = r.chance(0.5) ? '[' : '{"a":';
    const close = open === '[' ? ']' : '}';
    return [t.replace('{', `{"deep":${open.repeat(depth)}0${close.repeat(depth)},`), `deep text ${depth}`];
  },
  (t, r) => {
    const wrap = r.pick(['\ufeff%', ' \n\t%\n ', '%%', '[%]', '%garbage', '"%"']);
    return [wrap.replace('%', () => t), `wrap ${JSON.stringify(wrap)}`];
  },
];

type ByteMutation = (b: Uint8Array, r: Rng) => [Uint8Array, string];

const BAD_UTF8 = [
  [0xc0, 0x80], // overlong NUL
  [0xed, 0xa0, 0x80], // CESU-8 surrogate
  [0xff],
  [0xe2, 0x82], // truncated sequence
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0x80],
];

const BYTE_MUTATIONS: readonly ByteMutation[] = [
  (b, r) => {
    const out = b.slice();
    const flips = 1 + r.int(8);
    for (let i = 0; i < flips && out.length > 0; i++) out[r.int(out.length)]! ^= 1 << r.int(8);
    return [out, `flip ${flips} bits`];
  },
  (b, r) => {
    const at = r.int(b.length + 1);
    const ins = r.chance(0.5) ? r.pick(BAD_UTF8) : Array.from({ length: 1 + r.int(4) }, () => r.int(256));
    const out = new Uint8Array(b.length + ins.length);
    out.set(b.subarray(0, at), 0);
    out.set(ins, at);
    out.set(b.subarray(at), at + ins.length);
    return [out, `insert bytes at ${at}`];
  },
];

// ---------------------------------------------------------------------------------------------
// Whole frames

const corpora = new WeakMap<FuzzContext, Record<ClientOp, JsonObject>>();

/** The corpus of a context, built once (frames are cloned before they are mutated). */
function cachedCorpus(ctx: FuzzContext): Record<ClientOp, JsonObject> {
  let c = corpora.get(ctx);
  if (c === undefined) {
    c = corpus(ctx);
    corpora.set(ctx, c);
  }
  return c;
}

const encoder = new TextEncoder();

/** A frame padded with spaces (still valid JSON) to exactly `size` bytes, or cut to it. */
function sized(text: string, size: number): Uint8Array {
  const bytes = encoder.encode(text);
  if (bytes.length >= size) return bytes.subarray(0, size);
  const out = new Uint8Array(size).fill(0x20);
  out.set(bytes.subarray(0, bytes.length - 1), 0);
  out[size - 1] = bytes[bytes.length - 1]!;
  return out;
}

/**
 * Frame `index` of the run seeded `seed`. About 5% are left valid, 0.3% sized around the frame
 * limit, 2% binary, 2% not JSON; the rest get one to three value, text or byte mutations.
 */
export function fuzzFrame(seed: number, index: number, ctx: FuzzContext): FuzzFrame {
  const r = new Rng(frameSeed(seed, index));
  const f: JsonObject = structuredClone(
    r.chance(0.1) ? r.pick(VARIANTS) : cachedCorpus(ctx)[r.pick(CLIENT_OPS)],
  );
  f.id = `f${index}`;
  if (f.type === 'send') f.cmid = `c${index}`;
  const mutations: string[] = [];
  const roll = r.next();
  if (roll < 0.05) return text(index, JSON.stringify(f), ['valid']);
  if (roll < 0.053) {
    const size = r.pick([
      ctx.maxFrameBytes - 1,
      ctx.maxFrameBytes,
      ctx.maxFrameBytes + 1,
      2 * ctx.maxFrameBytes + 1,
    ]);
    return { index, bytes: sized(JSON.stringify(f), size), binary: false, mutations: [`sized ${size}`] };
  }
  if (roll < 0.075)
    return { index, bytes: encoder.encode(JSON.stringify(f)), binary: true, mutations: ['binary'] };
  if (roll < 0.095) {
    const junk = r.pick([
      '',
      ' ',
      'null',
      '[]',
      '"ping"',
      '42',
      'true',
      '{',
      '}{',
      '{"type":"ping"}{"type":"ping"}',
    ]);
    return text(index, junk, [`not an object ${JSON.stringify(junk)}`]);
  }
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) mutations.push(r.pick(VALUE_MUTATIONS)(f, r, ctx));
  let t = JSON.stringify(f);
  if (r.chance(0.3)) {
    const [out, name] = r.pick(TEXT_MUTATIONS)(t, r);
    t = out;
    mutations.push(name);
  }
  let bytes: Uint8Array = encoder.encode(t);
  if (r.chance(0.03)) {
    const [out, name] = r.pick(BYTE_MUTATIONS)(bytes, r);
    bytes = out;
    mutations.push(name);
  }
  return { index, bytes, binary: false, mutations };
}

function text(index: number, t: string, mutations: string[]): FuzzFrame {
  return { index, bytes: encoder.encode(t), binary: false, mutations };
}
