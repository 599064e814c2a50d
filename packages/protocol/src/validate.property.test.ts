import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  CLIENT_OPS,
  type ClientOp,
  DEFAULT_CONVERSATIONS_LIMIT,
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_SYNC_LIMIT,
  directConv,
  encodeFrame,
  type FrameResult,
  isUserId,
  parseClientFrame,
  validateClientFrame,
} from './index.js';
import { hasNoLoneSurrogate } from './validate.js';

type Input = Record<string, unknown>;

/** Every field name any client frame has; random extra fields are drawn outside this set. */
const KNOWN_FIELDS = new Set([
  'type',
  'id',
  'token',
  'device',
  'client',
  'conv',
  'cmid',
  'kind',
  'body',
  'reply_to',
  'media',
  'after',
  'limit',
  'before',
  'before_ts',
  'seq',
  'name',
  'members',
  'users',
  'user',
  'role',
  'state',
  'read_receipts',
  'last_seen',
  'platform',
  'topic',
  'subscription',
  'endpoint',
  'identity_key',
  'signed_prekey',
  'one_time_prekeys',
  'upto',
  'size',
  'content_type',
]);

/** Every string in a value (array elements and object values, at any depth). */
function stringsOf(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (typeof v !== 'object' || v === null) return [];
  return Object.values(v).flatMap(stringsOf);
}

/** The paths (as the validator names them: `users[2]`, `subscription.keys.auth`) of the strings in v. */
function stringPaths(v: unknown, path = ''): string[] {
  if (typeof v === 'string') return [path];
  if (typeof v !== 'object' || v === null) return [];
  if (Array.isArray(v)) return v.flatMap((x, i) => stringPaths(x, `${path}[${i}]`));
  return Object.entries(v).flatMap(([k, x]) => stringPaths(x, path === '' ? k : `${path}.${k}`));
}

/** A copy of v with the string at `path` (as given by stringPaths) replaced by f of it. */
function mapAt(v: unknown, path: string, f: (s: string) => string, at = ''): unknown {
  if (typeof v === 'string') return at === path ? f(v) : v;
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map((x, i) => mapAt(x, path, f, `${at}[${i}]`));
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [k, mapAt(x, path, f, at === '' ? k : `${at}.${k}`)]),
  );
}

/** Checks the invariants every result must satisfy, whatever the input. */
function checkResult(input: unknown, r: FrameResult): void {
  assert.equal(typeof r, 'object');
  if (r.ok) {
    assert.ok(CLIENT_OPS.includes(r.frame.type));
    assert.equal(Object.getPrototypeOf(r.frame), Object.prototype);
    assert.notEqual(r.frame, input);
    for (const k of Object.keys(r.frame)) {
      assert.ok(KNOWN_FIELDS.has(k), `unexpected field ${k}`);
      assert.notEqual((r.frame as unknown as Input)[k], undefined, `field ${k} is present but undefined`);
    }
    assert.ok(stringsOf(r.frame).every(hasNoLoneSurrogate), 'an accepted frame holds no lone surrogate');
  } else {
    assert.ok(r.code === 'bad_request' || r.code === 'too_large');
    assert.equal(typeof r.message, 'string');
    assert.ok(r.message.length > 0 && r.message.length < 300, r.message);
    if ('id' in r) {
      assert.equal(typeof r.id, 'string');
      assert.equal((input as Input).id, r.id, 'only the frame’s own id is echoed');
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-';
const GROUP_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
const anyChar = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
/** Any code point but a surrogate: BMP (controls included) and astral, as valid frames may hold. */
const wellFormedChar = fc
  .oneof(
    fc.integer({ min: 0, max: 0xd7ff }),
    fc.integer({ min: 0xe000, max: 0xffff }),
    fc.integer({ min: 0x10000, max: 0x10ffff }),
  )
  .map((c) => String.fromCodePoint(c));
/** Strings of at most `max` UTF-16 code units (an astral character takes two). */
const wellFormed = (min: number, max: number) =>
  fc.string({ unit: wellFormedChar, minLength: min, maxLength: Math.floor(max / 2) });

const userId = fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 1, maxLength: 64 });
const groupConv = fc
  .string({ unit: fc.constantFrom(...GROUP_CHARS), minLength: 1, maxLength: 64 })
  .map((s) => `g:${s}`);
const conv = fc.oneof(
  fc.tuple(userId, userId).map(([a, b]) => directConv(a, b)),
  groupConv,
);
const reqId = wellFormed(1, 64);
const seq = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const nat = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const body = wellFormed(0, 600);
const noControls = (s: string) => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  }
  return true;
};
const kind = fc.string({ minLength: 1, maxLength: 32 }).filter((k) => k !== 'system' && noControls(k));
const name = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 64 })
  .filter((s) => noControls(s) && s.trim().length > 0);
const users = (max: number) => fc.uniqueArray(userId, { minLength: 1, maxLength: max });
const mediaId = fc.string({ unit: fc.constantFrom(...`${ID_CHARS}~`), minLength: 1, maxLength: 128 });
const b64 = fc.base64String({ minLength: 4, maxLength: 200 });
const b64url = fc
  .base64String({ minLength: 4, maxLength: 100 })
  .map((s) => s.replace(/\+/g, '-').replace(/\//g, '_'));
const hex = fc
  .string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: 1, maxLength: 200 })
  .map((s) => (s.length % 2 === 0 ? s : `${s}0`));
const visible = (min: number, max: number) =>
  fc.string({
    unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    minLength: min,
    maxLength: max,
  });
const httpsUrl = fc
  .tuple(fc.string({ unit: fc.constantFrom(...GROUP_CHARS), minLength: 1, maxLength: 30 }), visible(0, 100))
  .map(([host, path]) => `https://${host}.example/${path}`);

/** Arbitraries of valid input frames for every op, with optional fields sometimes present. */
const VALID_FRAMES: Record<ClientOp, fc.Arbitrary<Input>> = {
  connect: fc.record(
    {
      type: fc.constant('connect'),
      id: reqId,
      token: fc.string({ minLength: 1, maxLength: 8192 }),
      device: userId,
      client: fc.string({ minLength: 1, maxLength: 128 }).filter(noControls),
    },
    { requiredKeys: ['type', 'id', 'token', 'device'] },
  ),
  ping: fc.record({ type: fc.constant('ping'), id: reqId }, { requiredKeys: ['type'] }),
  send: fc.record(
    {
      type: fc.constant('send'),
      id: reqId,
      conv,
      cmid: wellFormed(1, 64),
      kind,
      body,
      reply_to: seq,
      media: fc.uniqueArray(mediaId, { maxLength: 16 }),
    },
    { requiredKeys: ['type', 'id', 'conv', 'cmid', 'kind', 'body'] },
  ),
  sync: fc.record(
    { type: fc.constant('sync'), id: reqId, after: nat, limit: fc.integer({ min: 1, max: 1000 }) },
    { requiredKeys: ['type', 'id', 'after'] },
  ),
  history: fc.oneof(
    fc.record(
      { type: fc.constant('history'), id: reqId, conv, before: seq, limit: fc.integer({ min: 1, max: 200 }) },
      { requiredKeys: ['type', 'id', 'conv'] },
    ),
    fc.record(
      { type: fc.constant('history'), id: reqId, conv, after: nat, limit: fc.integer({ min: 1, max: 200 }) },
      { requiredKeys: ['type', 'id', 'conv', 'after'] },
    ),
  ),
  conversations: fc.record(
    {
      type: fc.constant('conversations'),
      id: reqId,
      limit: fc.integer({ min: 1, max: 200 }),
      before_ts: nat,
    },
    { requiredKeys: ['type', 'id'] },
  ),
  receipt: fc.record(
    { type: fc.constant('receipt'), id: reqId, conv, kind: fc.constantFrom('delivered', 'read'), seq },
    { requiredKeys: ['type', 'conv', 'kind', 'seq'] },
  ),
  receipts: fc.record({ type: fc.constant('receipts'), id: reqId, conv }),
  create_group: fc.record({
    type: fc.constant('create_group'),
    id: reqId,
    name,
    members: fc.uniqueArray(userId, { maxLength: 40 }),
  }),
  add_members: fc.record({ type: fc.constant('add_members'), id: reqId, conv: groupConv, users: users(40) }),
  remove_members: fc.record({
    type: fc.constant('remove_members'),
    id: reqId,
    conv: groupConv,
    users: users(40),
  }),
  leave: fc.record({ type: fc.constant('leave'), id: reqId, conv: groupConv }),
  update_group: fc.record({ type: fc.constant('update_group'), id: reqId, conv: groupConv, name }),
  set_role: fc.record({
    type: fc.constant('set_role'),
    id: reqId,
    conv: groupConv,
    user: userId,
    role: fc.constantFrom('admin', 'member'),
  }),
  group_info: fc.record({ type: fc.constant('group_info'), id: reqId, conv: groupConv }),
  presence_sub: fc.record({ type: fc.constant('presence_sub'), id: reqId, users: users(60) }),
  presence_unsub: fc.record({ type: fc.constant('presence_unsub'), id: reqId, users: users(60) }),
  typing: fc.record(
    { type: fc.constant('typing'), id: reqId, conv, state: fc.constantFrom('start', 'stop') },
    { requiredKeys: ['type', 'conv', 'state'] },
  ),
  settings: fc.record(
    {
      type: fc.constant('settings'),
      id: reqId,
      read_receipts: fc.boolean(),
      last_seen: fc.constantFrom('everyone', 'nobody'),
      group_add: fc.constantFrom('everyone', 'nobody'),
    },
    { requiredKeys: ['type', 'id'] },
  ),
  create_invite: fc.record(
    {
      type: fc.constant('create_invite'),
      id: reqId,
      conv: groupConv,
      expires_in_ms: fc.integer({ min: 1, max: 30 * 24 * 3600 * 1000 }),
      max_uses: fc.integer({ min: 1, max: 100_000 }),
    },
    { requiredKeys: ['type', 'id', 'conv'] },
  ),
  revoke_invite: fc.record({
    type: fc.constant('revoke_invite'),
    id: reqId,
    conv: groupConv,
    code: b64url.map((s) => s.replace(/=/g, '').slice(0, 64)).filter((s) => s.length > 0),
  }),
  join_group: fc.record({
    type: fc.constant('join_group'),
    id: reqId,
    code: b64url.map((s) => s.replace(/=/g, '').slice(0, 64)).filter((s) => s.length > 0),
  }),
  block: fc.record({ type: fc.constant('block'), id: reqId, user: userId }),
  unblock: fc.record({ type: fc.constant('unblock'), id: reqId, user: userId }),
  push_register: fc.oneof(
    fc.record({
      type: fc.constant('push_register'),
      id: reqId,
      platform: fc.constant('apns'),
      token: hex,
      topic: visible(1, 255),
    }),
    fc.record({
      type: fc.constant('push_register'),
      id: reqId,
      platform: fc.constant('fcm'),
      token: visible(1, 4096),
    }),
    fc.record({
      type: fc.constant('push_register'),
      id: reqId,
      platform: fc.constant('webpush'),
      subscription: fc.record({ endpoint: httpsUrl, keys: fc.record({ p256dh: b64url, auth: b64url }) }),
    }),
    fc.record(
      {
        type: fc.constant('push_register'),
        id: reqId,
        platform: fc.constant('unifiedpush'),
        endpoint: httpsUrl,
        keys: fc.record({ p256dh: b64url, auth: b64url }),
      },
      { requiredKeys: ['type', 'id', 'platform', 'endpoint'] },
    ),
  ),
  push_unregister: fc.record({ type: fc.constant('push_unregister'), id: reqId }),
  keys_upload: fc
    .record(
      {
        type: fc.constant('keys_upload'),
        id: reqId,
        identity_key: b64,
        signed_prekey: fc.record({ key_id: nat, key: b64, signature: b64 }),
        one_time_prekeys: fc.uniqueArray(fc.record({ key_id: nat, key: b64 }), {
          minLength: 1,
          maxLength: 200,
          selector: (k) => k.key_id,
        }),
      },
      { requiredKeys: ['type', 'id'] },
    )
    .filter((f) => 'identity_key' in f || 'signed_prekey' in f || 'one_time_prekeys' in f),
  keys_claim: fc.record({ type: fc.constant('keys_claim'), id: reqId, user: userId }),
  keys_count: fc.record({ type: fc.constant('keys_count'), id: reqId }),
  to_device: fc.record({ type: fc.constant('to_device'), id: reqId, user: userId, device: userId, body }),
  to_device_ack: fc.record(
    { type: fc.constant('to_device_ack'), id: reqId, upto: nat },
    { requiredKeys: ['type', 'upto'] },
  ),
  devices: fc.record({ type: fc.constant('devices'), id: reqId }),
  revoke_device: fc.record({ type: fc.constant('revoke_device'), id: reqId, device: userId }),
  mute: fc.record(
    { type: fc.constant('mute'), id: reqId, conv, until: seq },
    { requiredKeys: ['type', 'id', 'conv'] },
  ),
  unmute: fc.record({ type: fc.constant('unmute'), id: reqId, conv }),
  media_upload: fc.record({
    type: fc.constant('media_upload'),
    id: reqId,
    size: seq,
    content_type: fc.constantFrom(
      'image/png',
      'application/octet-stream',
      'video/mp4; codecs="avc1"',
      'audio/ogg',
    ),
  }),
  media_download: fc.record({ type: fc.constant('media_download'), id: reqId, media: mediaId }),
};

const anyValidFrame = fc.oneof(...CLIENT_OPS.map((op) => VALID_FRAMES[op]));

/** What the validator must return for a valid input: the input with its defaults filled in. */
function expected(input: Input): Input {
  // JSON round trip: fast-check may build null-prototype objects; the validator's output is plain.
  const e = JSON.parse(JSON.stringify(input)) as Input;
  if (e.limit === undefined) {
    if (e.type === 'sync') e.limit = DEFAULT_SYNC_LIMIT;
    if (e.type === 'history') e.limit = DEFAULT_HISTORY_LIMIT;
    if (e.type === 'conversations') e.limit = DEFAULT_CONVERSATIONS_LIMIT;
  }
  return e;
}

const extraKey = fc.string({ maxLength: 12 }).filter((k) => !KNOWN_FIELDS.has(k));
const extras = fc.dictionary(
  fc.oneof(extraKey, fc.constantFrom('__proto__', 'constructor', 'prototype')),
  fc.jsonValue(),
  {
    maxKeys: 5,
  },
);

/** Values that are sometimes right and usually wrong for any field. */
const fieldValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  userId,
  conv,
  seq,
  fc.integer({ min: -5, max: 5 }),
  fc.double(),
  fc.constantFrom(
    'delivered',
    'read',
    'start',
    'stop',
    'admin',
    'apns',
    'fcm',
    'webpush',
    'unifiedpush',
    'system',
    '',
  ),
  fc.uniqueArray(userId, { maxLength: 5 }),
  fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 5 }),
);
/** Objects shaped like client frames: a known op and a random subset of known fields with random values. */
const frameLike = fc
  .tuple(
    fc.constantFrom(...CLIENT_OPS),
    fc.dictionary(fc.constantFrom(...KNOWN_FIELDS), fieldValue, { maxKeys: 10 }),
  )
  .map(([type, fields]) => ({ ...fields, type }));

// ---------------------------------------------------------------------------------------------

describe('validator properties', () => {
  it('random JSON values never throw and always return a well-formed result', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => checkResult(v, validateClientFrame(v))),
      { numRuns: 2000 },
    );
  });
  it('arbitrary JS values (null prototypes, symbols, getters-free objects) never throw', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withNullPrototype: true,
          withMap: true,
          withSet: true,
          withBigInt: true,
          withSparseArray: true,
        }),
        (v) => {
          const r = validateClientFrame(v);
          assert.equal(typeof r.ok, 'boolean');
        },
      ),
      { numRuns: 2000 },
    );
  });
  it('frame-like objects (known op, random known fields) never throw and results are well-formed', () => {
    fc.assert(
      fc.property(frameLike, (f) => {
        const r = validateClientFrame(f);
        checkResult(f, r);
        if (r.ok) assert.equal(r.frame.type, f.type);
        // Parsing the JSON text gives the same answer as validating the value.
        const text = JSON.stringify(f);
        assert.deepEqual(parseClientFrame(text), validateClientFrame(JSON.parse(text)));
      }),
      { numRuns: 5000 },
    );
  });
  it('random text never throws in parseClientFrame', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: anyChar }),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (t) => {
          const r = parseClientFrame(t);
          assert.equal(typeof r.ok, 'boolean');
        },
      ),
      { numRuns: 2000 },
    );
  });
  for (const op of CLIENT_OPS) {
    it(`valid ${op} frames always pass and round-trip their fields, unknown fields dropped`, () => {
      fc.assert(
        fc.property(VALID_FRAMES[op], extras, (input, extra) => {
          const want = expected(input);
          assert.deepEqual(validateClientFrame(input), { ok: true, frame: want });
          // Through the wire: extra fields (including __proto__) change nothing.
          const text = encodeFrame({ ...extra, ...input });
          assert.deepEqual(parseClientFrame(text), { ok: true, frame: want });
          // A "__proto__" key in the text (which JSON.parse makes an own property) changes nothing.
          const poisoned = `{"__proto__":${encodeFrame({ ...input, id: 'evil', extra })},${text.slice(1)}`;
          assert.deepEqual(parseClientFrame(poisoned), { ok: true, frame: want });
          assert.equal(({} as Input).extra, undefined);
        }),
        { numRuns: 200 },
      );
    });
  }
  it('breaking one required field of a valid frame fails and echoes its id', () => {
    // Fields that may be left out (keys_upload needs only one of its three keys).
    const optional = new Set([
      'id',
      'client',
      'reply_to',
      'media',
      'limit',
      'before',
      'after',
      'before_ts',
      'identity_key',
      'signed_prekey',
      'one_time_prekeys',
      'expires_in_ms',
      'max_uses',
      'until',
      'keys',
    ]);
    fc.assert(
      fc.property(
        anyValidFrame,
        fc.nat(),
        fc.constantFrom(undefined, -1, {}, [], 'not valid!'),
        (input, pick, bad) => {
          const required = Object.keys(input).filter(
            (k) => k !== 'type' && !optional.has(k) && !(input.type === 'settings'),
          );
          if (required.length === 0) return;
          const field = required[pick % required.length]!;
          // Strings pass as cmid/token/body/kind/topic/...: only use a value wrong for every field.
          let value: unknown = bad;
          if (bad === 'not valid!' && !['conv', 'user', 'device', 'media', 'platform'].includes(field)) {
            value = -1;
          }
          if (field === 'members' && Array.isArray(bad)) value = -1; // an empty members list is valid
          const broken = { ...input, [field]: value };
          if (value === undefined) delete broken[field];
          const r = validateClientFrame(broken);
          assert.equal(r.ok, false, `${input.type}.${field} = ${JSON.stringify(value)}`);
          if (!r.ok && typeof input.id === 'string') assert.equal(r.id, input.id);
        },
      ),
      { numRuns: 3000 },
    );
  });
  it('a lone surrogate anywhere in any string field is refused, naming the field', () => {
    // Every frame but an id-less ping or to_device_ack has a string field besides `type`.
    const frameAndPath = anyValidFrame
      .filter((f) => stringPaths(f).length > 1)
      .chain((input) => {
        const paths = stringPaths(input).filter((p) => p !== 'type');
        return fc.tuple(fc.constant(input), fc.constantFrom(...paths));
      });
    const lone = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));
    fc.assert(
      fc.property(frameAndPath, lone, fc.nat(), ([input, path], surrogate, at) => {
        // Inserting one surrogate into a well-formed string always leaves one unpaired.
        const insert = (s: string) => {
          const i = at % (s.length + 1);
          return s.slice(0, i) + surrogate + s.slice(i);
        };
        const broken = mapAt(input, path, insert);
        for (const r of [validateClientFrame(broken), parseClientFrame(JSON.stringify(broken))]) {
          assert.equal(r.ok, false, `${input.type}.${path}`);
          if (r.ok) continue;
          assert.ok(r.message.startsWith(`"${path}" `), r.message);
          assert.equal(r.id, path === 'id' ? undefined : input.id);
        }
      }),
      { numRuns: 3000 },
    );
  });
  it('the fallback lone-surrogate check agrees with String.prototype.isWellFormed', () => {
    const native = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', '\ud83d', '\ude00', '😀', '\uffff'), maxLength: 12 }),
        (s) => assert.equal(hasNoLoneSurrogate(s), native(s)),
      ),
      { numRuns: 2000 },
    );
  });
  it('user lists: any duplicate is refused', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(userId, { minLength: 1, maxLength: 100 }),
        fc.nat(),
        fc.nat(),
        (list, i, j) => {
          const withDup = [...list];
          withDup.splice(j % (list.length + 1), 0, list[i % list.length]!);
          const r = validateClientFrame({ type: 'presence_sub', id: 'p', users: withDup });
          assert.equal(r.ok, false);
          if (!r.ok) assert.match(r.message, /more than once/);
          assert.ok(withDup.every(isUserId));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
