import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CLIENT_OPS,
  type ClientFrame,
  type ClientOp,
  DEFAULT_LIMITS,
  type FrameResult,
  type Limits,
  OPTIONAL_ID_OPS,
  parseClientFrame,
  validateClientFrame,
} from './index.js';
import { hasNoLoneSurrogate } from './validate.js';

type Input = Record<string, unknown>;

const G = 'g:01HZXYZ';
const B64 = 'BdGhpcyBpcyBhIGtleQ==';
const HEX = '0a1b2c3d4e5f'.repeat(4);

/** One valid input frame per op, with every optional field present where there is one. */
const VALID: Record<ClientOp, Input> = {
  connect: { type: 'connect', id: 'r1', token: 'eyJ.eyJ.sig', device: 'laptop-1', client: 'parley-js/0.1' },
  ping: { type: 'ping', id: 'r1' },
  send: {
    type: 'send',
    id: 'r1',
    conv: 'dm:alice:bob',
    cmid: '0192f6c4-7d5e-7a40-9c1b-3f1e2d3c4b5a',
    kind: 'text',
    body: 'hi bob',
    reply_to: 17,
    media: ['m_8f3c', 'm_9a01'],
  },
  sync: { type: 'sync', id: 'r1', after: 300, limit: 500 },
  history: { type: 'history', id: 'r1', conv: G, before: 976, limit: 50 },
  conversations: { type: 'conversations', id: 'r1', limit: 50, before_ts: 1795000000000 },
  receipt: { type: 'receipt', id: 'r1', conv: 'dm:alice:bob', kind: 'read', seq: 18 },
  receipts: { type: 'receipts', id: 'r1', conv: G },
  create_group: { type: 'create_group', id: 'r1', name: 'Climbing', members: ['bob', 'carol'] },
  add_members: { type: 'add_members', id: 'r1', conv: G, users: ['dave'] },
  remove_members: { type: 'remove_members', id: 'r1', conv: G, users: ['carol'] },
  leave: { type: 'leave', id: 'r1', conv: G },
  update_group: { type: 'update_group', id: 'r1', conv: G, name: 'Climbing 2027' },
  set_role: { type: 'set_role', id: 'r1', conv: G, user: 'bob', role: 'admin' },
  group_info: { type: 'group_info', id: 'r1', conv: G },
  presence_sub: { type: 'presence_sub', id: 'r1', users: ['bob', 'carol'] },
  presence_unsub: { type: 'presence_unsub', id: 'r1', users: ['carol'] },
  typing: { type: 'typing', id: 'r1', conv: G, state: 'start' },
  settings: { type: 'settings', id: 'r1', read_receipts: false, last_seen: 'nobody', group_add: 'nobody' },
  create_invite: { type: 'create_invite', id: 'r1', conv: G, expires_in_ms: 3_600_000, max_uses: 10 },
  revoke_invite: { type: 'revoke_invite', id: 'r1', conv: G, code: 'q3Xb_-9aZk0L8mN2pQ4rS6tU' },
  join_group: { type: 'join_group', id: 'r1', code: 'q3Xb_-9aZk0L8mN2pQ4rS6tU' },
  block: { type: 'block', id: 'r1', user: 'mallory' },
  unblock: { type: 'unblock', id: 'r1', user: 'mallory' },
  push_register: { type: 'push_register', id: 'r1', platform: 'apns', token: HEX, topic: 'com.example.app' },
  push_unregister: { type: 'push_unregister', id: 'r1' },
  keys_upload: {
    type: 'keys_upload',
    id: 'r1',
    identity_key: B64,
    signed_prekey: { key_id: 1, key: B64, signature: B64 },
    one_time_prekeys: [
      { key_id: 100, key: B64 },
      { key_id: 101, key: B64 },
    ],
  },
  keys_claim: { type: 'keys_claim', id: 'r1', user: 'bob' },
  keys_count: { type: 'keys_count', id: 'r1' },
  to_device: { type: 'to_device', id: 'r1', user: 'bob', device: 'phone-1', body: B64 },
  to_device_ack: { type: 'to_device_ack', id: 'r1', upto: 9 },
  devices: { type: 'devices', id: 'r1' },
  revoke_device: { type: 'revoke_device', id: 'r1', device: 'phone-1' },
  mute: { type: 'mute', id: 'r1', conv: 'dm:alice:bob', until: 1_900_000_000_000 },
  unmute: { type: 'unmute', id: 'r1', conv: 'dm:alice:bob' },
  media_upload: { type: 'media_upload', id: 'r1', size: 183224, content_type: 'application/octet-stream' },
  media_download: { type: 'media_download', id: 'r1', media: 'm_8f3c' },
};

function ok(input: unknown, limits?: Limits): ClientFrame {
  const r = validateClientFrame(input, limits);
  if (!r.ok) assert.fail(`expected ok for ${JSON.stringify(input)}, got ${r.code}: ${r.message}`);
  return r.frame;
}

function fail(input: unknown, limits?: Limits): Extract<FrameResult, { ok: false }> {
  const r = validateClientFrame(input, limits);
  if (r.ok) assert.fail(`expected failure for ${JSON.stringify(input)?.slice(0, 200)}`);
  return r;
}

const MISSING = Symbol('missing');

/** The valid frame of op with field replaced (or removed, for MISSING). */
function withField(op: ClientOp, field: string, value: unknown): Input {
  const f: Input = structuredClone(VALID[op]);
  if (value === MISSING) delete f[field];
  else f[field] = value;
  return f;
}

describe('happy paths', () => {
  it('CLIENT_OPS lists every op once, and each has a valid sample here', () => {
    assert.equal(CLIENT_OPS.length, 37);
    assert.equal(new Set(CLIENT_OPS).size, CLIENT_OPS.length);
    assert.deepEqual([...CLIENT_OPS].sort(), Object.keys(VALID).sort());
    assert.deepEqual([...OPTIONAL_ID_OPS].sort(), ['ping', 'receipt', 'to_device_ack', 'typing']);
  });
  for (const op of Object.keys(VALID) as ClientOp[]) {
    it(`${op}: a valid frame passes and keeps every field`, () => {
      const input = VALID[op];
      const frame = ok(input);
      assert.deepEqual(frame, input);
      assert.notEqual(frame, input, 'the result is a new object');
      // parse + validate gives the same frame
      const parsed = parseClientFrame(JSON.stringify(input));
      assert.deepEqual(parsed, { ok: true, frame: input });
    });
  }
});

describe('request id', () => {
  const required = CLIENT_OPS.filter((op) => !OPTIONAL_ID_OPS.includes(op));
  for (const op of required) {
    it(`${op}: id is required`, () => {
      const r = fail(withField(op, 'id', MISSING));
      assert.deepEqual(r, { ok: false, code: 'bad_request', message: '"id" is required' });
      const r2 = fail(withField(op, 'id', null));
      assert.deepEqual(r2, { ok: false, code: 'bad_request', message: '"id" is required' });
    });
  }
  for (const op of OPTIONAL_ID_OPS) {
    it(`${op}: id is optional, and absent from the frame when not given`, () => {
      const input = withField(op, 'id', MISSING);
      const frame = ok(input);
      assert.deepEqual(frame, input);
      assert.equal(Object.hasOwn(frame, 'id'), false);
      assert.equal(Object.hasOwn(ok(withField(op, 'id', null)), 'id'), false);
    });
  }
  for (const op of CLIENT_OPS) {
    it(`${op}: a malformed id fails without being echoed`, () => {
      const message = '"id" must be a string of 1..64 characters';
      for (const id of [7, '', 'x'.repeat(65), true, ['r1'], { id: 'r1' }]) {
        assert.deepEqual(fail(withField(op, 'id', id)), { ok: false, code: 'bad_request', message });
      }
      assert.equal(ok(withField(op, 'id', 'x'.repeat(64))).type, op);
    });
  }
  it('honours limits.maxRequestIdLength', () => {
    const limits = { ...DEFAULT_LIMITS, maxRequestIdLength: 4 };
    assert.equal(ok({ type: 'ping', id: 'abcd' }, limits).type, 'ping');
    assert.equal(
      fail({ type: 'ping', id: 'abcde' }, limits).message,
      '"id" must be a string of 1..4 characters',
    );
  });
});

describe('frame shape and type', () => {
  it('non-objects are bad_request', () => {
    for (const v of [null, undefined, 5, 'send', true, [], [VALID.ping]]) {
      assert.deepEqual(fail(v), { ok: false, code: 'bad_request', message: 'frame must be a JSON object' });
    }
    for (const t of ['null', '5', '"x"', 'true', '[]', '[{"type":"ping"}]']) {
      assert.deepEqual(parseClientFrame(t), {
        ok: false,
        code: 'bad_request',
        message: 'frame must be a JSON object',
      });
    }
  });
  it('invalid JSON is bad_request', () => {
    for (const t of ['', '{', '{"type":"ping",}', "{'type':'ping'}", 'undefined', '{"type":"ping"} x']) {
      assert.deepEqual(parseClientFrame(t), {
        ok: false,
        code: 'bad_request',
        message: 'frame is not valid JSON',
      });
    }
  });
  it('a missing or non-string type is bad_request, echoing a valid id', () => {
    assert.deepEqual(fail({ id: 'r1' }), {
      ok: false,
      id: 'r1',
      code: 'bad_request',
      message: '"type" is required',
    });
    assert.deepEqual(fail({ id: 'r1', type: 5 }), {
      ok: false,
      id: 'r1',
      code: 'bad_request',
      message: '"type" must be a string',
    });
    assert.deepEqual(fail({}), { ok: false, code: 'bad_request', message: '"type" is required' });
  });
  it('an unknown type is bad_request naming it, echoing a valid id', () => {
    assert.deepEqual(fail({ type: 'x', id: 'r9' }), {
      ok: false,
      id: 'r9',
      code: 'bad_request',
      message: 'unknown type "x"',
    });
    for (const t of [
      '',
      'Send',
      'reply',
      'message',
      '__proto__',
      'toString',
      'constructor',
      'hasOwnProperty',
    ]) {
      assert.equal(fail({ type: t }).message, `unknown type ${JSON.stringify(t)}`);
    }
    // A long type is cut short in the message.
    const r = fail({ type: 'y'.repeat(10_000) });
    assert.equal(r.message, `unknown type "${'y'.repeat(32)}…"`);
  });
  it('frames over maxFrameBytes are too_large before parsing; exactly at the limit they are parsed', () => {
    const base = JSON.stringify({ type: 'ping', id: 'r1', pad: '' });
    const at = JSON.stringify({ type: 'ping', id: 'r1', pad: 'x'.repeat(131072 - base.length) });
    assert.equal(at.length, 131072);
    assert.deepEqual(parseClientFrame(at), { ok: true, frame: { type: 'ping', id: 'r1' } });
    assert.deepEqual(parseClientFrame(`${at} `), {
      ok: false,
      code: 'too_large',
      message: 'frame exceeds 131072 bytes',
    });
    // Counted in UTF-8 bytes: 'é' is 2 bytes.
    const multi = JSON.stringify({ type: 'ping', id: 'r1', pad: 'é'.repeat((131072 - base.length) / 2 + 1) });
    assert.equal(parseClientFrame(multi).ok, false);
    const limits = { ...DEFAULT_LIMITS, maxFrameBytes: 20 };
    assert.equal(parseClientFrame('{"type":"ping"}', limits).ok, true);
    assert.equal(parseClientFrame('{"type":"ping","x":1234}', limits).ok, false);
  });
});

describe('unknown fields and prototype safety', () => {
  for (const op of CLIENT_OPS) {
    it(`${op}: unknown fields are dropped`, () => {
      const input = {
        ...VALID[op],
        extra: 1,
        hasOwnProperty: 'x',
        constructor: { prototype: { a: 1 } },
        toString: 5,
      };
      assert.deepEqual(ok(input), VALID[op]);
      const text = JSON.stringify(input).replace(
        '"extra":1',
        '"__proto__":{"polluted":true,"reply_to":5,"limit":7}',
      );
      const r = parseClientFrame(text);
      assert.deepEqual(r, { ok: true, frame: VALID[op] });
      if (r.ok) assert.equal(Object.getPrototypeOf(r.frame), Object.prototype);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });
  }
  it('__proto__ in JSON neither pollutes Object.prototype nor supplies fields', () => {
    const text =
      '{"type":"send","id":"r1","__proto__":{"conv":"dm:a:b","cmid":"c","kind":"text","body":"x"}}';
    const r = parseClientFrame(text);
    assert.deepEqual(r, { ok: false, id: 'r1', code: 'bad_request', message: '"conv" is required' });
    const r2 = parseClientFrame('{"__proto__":{"type":"ping"}}');
    assert.deepEqual(r2, { ok: false, code: 'bad_request', message: '"type" is required' });
    assert.equal(({} as Record<string, unknown>).type, undefined);
  });
  it('nested objects are rebuilt from known fields only', () => {
    const text =
      '{"type":"push_register","id":"r1","platform":"webpush","subscription":{"endpoint":"https://push.example/x",' +
      '"expirationTime":null,"__proto__":{"x":1},"keys":{"p256dh":"BNcR","auth":"tBHI","__proto__":{"y":2},"z":3}}}';
    const r = parseClientFrame(text);
    assert.deepEqual(r, {
      ok: true,
      frame: {
        type: 'push_register',
        id: 'r1',
        platform: 'webpush',
        subscription: { endpoint: 'https://push.example/x', keys: { p256dh: 'BNcR', auth: 'tBHI' } },
      },
    });
  });
  it('arrays in the result are copies', () => {
    const input = { type: 'presence_sub', id: 'r1', users: ['bob'] };
    const frame = ok(input);
    input.users.push('carol');
    assert.deepEqual(frame, { type: 'presence_sub', id: 'r1', users: ['bob'] });
  });
  it('optional fields given as null are absent in the frame', () => {
    const frame = ok({ ...VALID.send, reply_to: null, media: null });
    assert.equal(Object.hasOwn(frame, 'reply_to'), false);
    assert.equal(Object.hasOwn(frame, 'media'), false);
    assert.deepEqual(ok({ type: 'settings', id: 'r1', read_receipts: null, last_seen: null }), {
      type: 'settings',
      id: 'r1',
    });
  });
});

/** [op, field, value (MISSING to remove it), expected code, expected message]. */
type Case = [ClientOp, string, unknown, 'bad_request' | 'too_large', string];

const CONV_MSG = '"conv" must be a conversation id';
const GROUP_MSG = '"conv" must be a group conversation id';
const USER_MSG = '"user" must be a user id';
const DEVICE_MSG = '"device" must be a device id';
const NAME_MSG = '"name" must be 1..128 characters, not blank, without control characters';
const B = 'bad_request';
const L = 'too_large';
const many = (n: number, prefix = 'u') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

const CASES: Case[] = [
  // connect
  ['connect', 'token', MISSING, B, '"token" is required'],
  ['connect', 'token', '', B, '"token" must be a string of 1..8192 characters'],
  ['connect', 'token', 'x'.repeat(8193), B, '"token" must be a string of 1..8192 characters'],
  ['connect', 'token', 12, B, '"token" must be a string of 1..8192 characters'],
  ['connect', 'device', MISSING, B, '"device" is required'],
  ['connect', 'device', 'laptop 1', B, DEVICE_MSG],
  ['connect', 'device', 'd'.repeat(65), B, DEVICE_MSG],
  ['connect', 'device', 3, B, DEVICE_MSG],
  ['connect', 'device', 'server-api', B, '"device" "server-api" is reserved for the server API'],
  ['connect', 'client', '', B, '"client" must be a string of 1..128 characters without control characters'],
  [
    'connect',
    'client',
    'c'.repeat(129),
    B,
    '"client" must be a string of 1..128 characters without control characters',
  ],
  [
    'connect',
    'client',
    'a\nb',
    B,
    '"client" must be a string of 1..128 characters without control characters',
  ],
  ['connect', 'client', 1, B, '"client" must be a string of 1..128 characters without control characters'],
  // send
  ['send', 'conv', MISSING, B, '"conv" is required'],
  ['send', 'conv', 5, B, CONV_MSG],
  ['send', 'conv', 'dm:bob:alice', B, CONV_MSG],
  ['send', 'conv', 'dm:alice', B, CONV_MSG],
  ['send', 'conv', 'g:', B, CONV_MSG],
  ['send', 'conv', `g:${'x'.repeat(65)}`, B, CONV_MSG],
  ['send', 'conv', 'room:1', B, CONV_MSG],
  ['send', 'cmid', MISSING, B, '"cmid" is required'],
  ['send', 'cmid', '', B, '"cmid" must be a string of 1..64 characters'],
  ['send', 'cmid', 'c'.repeat(65), B, '"cmid" must be a string of 1..64 characters'],
  ['send', 'cmid', 42, B, '"cmid" must be a string of 1..64 characters'],
  ['send', 'kind', MISSING, B, '"kind" is required'],
  ['send', 'kind', '', B, '"kind" must be a string of 1..32 characters without control characters'],
  [
    'send',
    'kind',
    'k'.repeat(33),
    B,
    '"kind" must be a string of 1..32 characters without control characters',
  ],
  ['send', 'kind', 'te\u0000xt', B, '"kind" must be a string of 1..32 characters without control characters'],
  ['send', 'kind', ['text'], B, '"kind" must be a string of 1..32 characters without control characters'],
  ['send', 'kind', 'system', B, '"kind" "system" is reserved for the server'],
  ['send', 'body', MISSING, B, '"body" is required'],
  ['send', 'body', null, B, '"body" is required'],
  ['send', 'body', 5, B, '"body" must be a string'],
  ['send', 'body', { text: 'hi' }, B, '"body" must be a string'],
  ['send', 'body', 'x'.repeat(65537), L, '"body" exceeds 65536 bytes'],
  ['send', 'body', `${'é'.repeat(32768)}x`, L, '"body" exceeds 65536 bytes'],
  ['send', 'body', `${'😀'.repeat(16384)}x`, L, '"body" exceeds 65536 bytes'],
  ['send', 'body', `${'€'.repeat(21845)}xy`, L, '"body" exceeds 65536 bytes'],
  ['send', 'reply_to', 0, B, '"reply_to" must be an integer >= 1'],
  ['send', 'reply_to', -1, B, '"reply_to" must be an integer >= 1'],
  ['send', 'reply_to', 1.5, B, '"reply_to" must be an integer >= 1'],
  ['send', 'reply_to', '17', B, '"reply_to" must be an integer >= 1'],
  ['send', 'reply_to', 2 ** 53, B, '"reply_to" must be an integer >= 1'],
  ['send', 'reply_to', Number.NaN, B, '"reply_to" must be an integer >= 1'],
  ['send', 'reply_to', Number.POSITIVE_INFINITY, B, '"reply_to" must be an integer >= 1'],
  ['send', 'media', 'm_1', B, '"media" must be an array of media ids'],
  ['send', 'media', { 0: 'm_1' }, B, '"media" must be an array of media ids'],
  ['send', 'media', ['m 1'], B, '"media[0]" must be a media id'],
  ['send', 'media', ['m_1', 7], B, '"media[1]" must be a media id'],
  ['send', 'media', ['m_1', 'm_1'], B, '"media" lists "m_1" more than once'],
  ['send', 'media', many(17, 'm'), B, '"media" has more than 16 entries'],
  // sync
  ['sync', 'after', MISSING, B, '"after" is required'],
  ['sync', 'after', -1, B, '"after" must be an integer >= 0'],
  ['sync', 'after', 0.5, B, '"after" must be an integer >= 0'],
  ['sync', 'after', '300', B, '"after" must be an integer >= 0'],
  ['sync', 'limit', 0, B, '"limit" must be an integer 1..1000'],
  ['sync', 'limit', 1001, B, '"limit" must be an integer 1..1000'],
  ['sync', 'limit', 2.5, B, '"limit" must be an integer 1..1000'],
  ['sync', 'limit', '10', B, '"limit" must be an integer 1..1000'],
  // history
  ['history', 'conv', MISSING, B, '"conv" is required'],
  ['history', 'conv', 'dm:b:a', B, CONV_MSG],
  ['history', 'before', 0, B, '"before" must be an integer >= 1'],
  ['history', 'before', '5', B, '"before" must be an integer >= 1'],
  ['history', 'after', 5, B, '"before" and "after" cannot both be given'],
  ['history', 'limit', 201, B, '"limit" must be an integer 1..200'],
  ['history', 'limit', 0, B, '"limit" must be an integer 1..200'],
  // conversations
  ['conversations', 'limit', 201, B, '"limit" must be an integer 1..200'],
  ['conversations', 'limit', -5, B, '"limit" must be an integer 1..200'],
  ['conversations', 'before_ts', -1, B, '"before_ts" must be an integer >= 0'],
  ['conversations', 'before_ts', '1795000000000', B, '"before_ts" must be an integer >= 0'],
  // receipt
  ['receipt', 'conv', MISSING, B, '"conv" is required'],
  ['receipt', 'conv', 'dm:alice:Bob', B, CONV_MSG],
  ['receipt', 'kind', MISSING, B, '"kind" is required'],
  ['receipt', 'kind', 'seen', B, '"kind" must be "delivered" or "read"'],
  ['receipt', 'kind', 'READ', B, '"kind" must be "delivered" or "read"'],
  ['receipt', 'seq', MISSING, B, '"seq" is required'],
  ['receipt', 'seq', 0, B, '"seq" must be an integer >= 1'],
  ['receipt', 'seq', '18', B, '"seq" must be an integer >= 1'],
  ['receipt', 'seq', 9007199254740992, B, '"seq" must be an integer >= 1'],
  // receipts
  ['receipts', 'conv', MISSING, B, '"conv" is required'],
  ['receipts', 'conv', 'g:a b', B, CONV_MSG],
  // create_group
  ['create_group', 'name', MISSING, B, '"name" is required'],
  ['create_group', 'name', '', B, NAME_MSG],
  ['create_group', 'name', 'n'.repeat(129), B, NAME_MSG],
  ['create_group', 'name', '😀'.repeat(129), B, NAME_MSG],
  ['create_group', 'name', '   ', B, NAME_MSG],
  ['create_group', 'name', 'a\tb', B, NAME_MSG],
  ['create_group', 'name', 'a\u0085b', B, NAME_MSG],
  ['create_group', 'name', 12, B, NAME_MSG],
  ['create_group', 'members', MISSING, B, '"members" is required'],
  ['create_group', 'members', 'bob', B, '"members" must be an array of user ids'],
  ['create_group', 'members', ['bob', 'c d'], B, '"members[1]" must be a user id'],
  ['create_group', 'members', [null], B, '"members[0]" must be a user id'],
  ['create_group', 'members', ['bob', 'bob'], B, '"members" lists "bob" more than once'],
  ['create_group', 'members', many(513), L, '"members" has more than 512 users'],
  // add_members / remove_members
  ['add_members', 'conv', MISSING, B, '"conv" is required'],
  ['add_members', 'conv', 'dm:alice:bob', B, GROUP_MSG],
  ['add_members', 'conv', 'garbage', B, GROUP_MSG],
  ['add_members', 'users', MISSING, B, '"users" is required'],
  ['add_members', 'users', [], B, '"users" must not be empty'],
  ['add_members', 'users', ['dave', 'dave'], B, '"users" lists "dave" more than once'],
  ['add_members', 'users', many(513), L, '"users" has more than 512 users'],
  ['add_members', 'users', [...many(20), 'u3'], B, '"users" lists "u3" more than once'],
  ['remove_members', 'conv', 'dm:alice:bob', B, GROUP_MSG],
  ['remove_members', 'users', [], B, '"users" must not be empty'],
  ['remove_members', 'users', ['x y'], B, '"users[0]" must be a user id'],
  ['remove_members', 'users', many(513), L, '"users" has more than 512 users'],
  // leave, group_info, update_group, set_role
  ['leave', 'conv', MISSING, B, '"conv" is required'],
  ['leave', 'conv', 'dm:alice:bob', B, GROUP_MSG],
  ['group_info', 'conv', 'dm:alice:bob', B, GROUP_MSG],
  ['group_info', 'conv', 5, B, GROUP_MSG],
  ['update_group', 'conv', 'dm:alice:bob', B, GROUP_MSG],
  ['update_group', 'name', MISSING, B, '"name" is required'],
  ['update_group', 'name', 'n'.repeat(129), B, NAME_MSG],
  ['set_role', 'conv', 'dm:alice:bob', B, GROUP_MSG],
  ['set_role', 'user', MISSING, B, '"user" is required'],
  ['set_role', 'user', 'b:ob', B, USER_MSG],
  ['set_role', 'role', MISSING, B, '"role" is required'],
  ['set_role', 'role', 'owner', B, '"role" must be "admin" or "member"'],
  // presence
  ['presence_sub', 'users', MISSING, B, '"users" is required'],
  ['presence_sub', 'users', [], B, '"users" must not be empty'],
  ['presence_sub', 'users', 'bob', B, '"users" must be an array of user ids'],
  ['presence_sub', 'users', many(1001), L, '"users" has more than 1000 users'],
  ['presence_sub', 'users', ['bob', 'é'], B, '"users[1]" must be a user id'],
  ['presence_unsub', 'users', many(1001), L, '"users" has more than 1000 users'],
  ['presence_unsub', 'users', ['carol', 'carol'], B, '"users" lists "carol" more than once'],
  // typing
  ['typing', 'conv', MISSING, B, '"conv" is required'],
  ['typing', 'conv', 'g:', B, CONV_MSG],
  ['typing', 'state', MISSING, B, '"state" is required'],
  ['typing', 'state', 'typing', B, '"state" must be "start" or "stop"'],
  // settings
  ['settings', 'read_receipts', 'no', B, '"read_receipts" must be true or false'],
  ['settings', 'read_receipts', 0, B, '"read_receipts" must be true or false'],
  ['settings', 'last_seen', 'friends', B, '"last_seen" must be "everyone" or "nobody"'],
  ['settings', 'last_seen', true, B, '"last_seen" must be "everyone" or "nobody"'],
  // block, unblock, keys_claim
  ['block', 'user', MISSING, B, '"user" is required'],
  ['block', 'user', 'mal lory', B, USER_MSG],
  ['block', 'user', 'm'.repeat(65), B, USER_MSG],
  ['unblock', 'user', MISSING, B, '"user" is required'],
  ['unblock', 'user', 7, B, USER_MSG],
  ['keys_claim', 'user', MISSING, B, '"user" is required'],
  ['keys_claim', 'user', '', B, USER_MSG],
  // push_register (apns sample)
  ['push_register', 'platform', MISSING, B, '"platform" is required'],
  ['push_register', 'platform', 'gcm', B, '"platform" must be "apns", "fcm", "webpush" or "unifiedpush"'],
  ['push_register', 'token', MISSING, B, '"token" is required'],
  ['push_register', 'token', 'xyz123', B, '"token" must be a hex string of 2..4096 characters'],
  ['push_register', 'token', 'abc', B, '"token" must be a hex string of 2..4096 characters'],
  ['push_register', 'token', 'ab'.repeat(2049), B, '"token" must be a hex string of 2..4096 characters'],
  ['push_register', 'topic', MISSING, B, '"topic" is required'],
  [
    'push_register',
    'topic',
    'com example',
    B,
    '"topic" must be a string of 1..255 characters of printable ASCII',
  ],
  [
    'push_register',
    'topic',
    't'.repeat(256),
    B,
    '"topic" must be a string of 1..255 characters of printable ASCII',
  ],
  // keys_upload
  ['keys_upload', 'identity_key', '!!', B, '"identity_key" must be base64 of 1..1024 characters'],
  ['keys_upload', 'identity_key', 'A'.repeat(1025), B, '"identity_key" must be base64 of 1..1024 characters'],
  ['keys_upload', 'identity_key', '===', B, '"identity_key" must be base64 of 1..1024 characters'],
  ['keys_upload', 'identity_key', 'AB=C', B, '"identity_key" must be base64 of 1..1024 characters'],
  ['keys_upload', 'identity_key', 5, B, '"identity_key" must be base64 of 1..1024 characters'],
  ['keys_upload', 'signed_prekey', 'key', B, '"signed_prekey" must be an object'],
  ['keys_upload', 'signed_prekey', [], B, '"signed_prekey" must be an object'],
  ['keys_upload', 'signed_prekey', { key: B64, signature: B64 }, B, '"signed_prekey.key_id" is required'],
  [
    'keys_upload',
    'signed_prekey',
    { key_id: -1, key: B64, signature: B64 },
    B,
    '"signed_prekey.key_id" must be an integer >= 0',
  ],
  ['keys_upload', 'signed_prekey', { key_id: 1, signature: B64 }, B, '"signed_prekey.key" is required'],
  [
    'keys_upload',
    'signed_prekey',
    { key_id: 1, key: 'a b', signature: B64 },
    B,
    '"signed_prekey.key" must be base64 of 1..1024 characters',
  ],
  ['keys_upload', 'signed_prekey', { key_id: 1, key: B64 }, B, '"signed_prekey.signature" is required'],
  ['keys_upload', 'one_time_prekeys', {}, B, '"one_time_prekeys" must be an array'],
  ['keys_upload', 'one_time_prekeys', [], B, '"one_time_prekeys" must have 1..200 entries'],
  [
    'keys_upload',
    'one_time_prekeys',
    Array.from({ length: 201 }, (_, i) => ({ key_id: i, key: B64 })),
    B,
    '"one_time_prekeys" must have 1..200 entries',
  ],
  ['keys_upload', 'one_time_prekeys', [B64], B, '"one_time_prekeys[0]" must be an object'],
  [
    'keys_upload',
    'one_time_prekeys',
    [{ key_id: 1, key: B64 }, { key: B64 }],
    B,
    '"one_time_prekeys[1].key_id" is required',
  ],
  [
    'keys_upload',
    'one_time_prekeys',
    [{ key_id: 1.5, key: B64 }],
    B,
    '"one_time_prekeys[0].key_id" must be an integer >= 0',
  ],
  ['keys_upload', 'one_time_prekeys', [{ key_id: 1 }], B, '"one_time_prekeys[0].key" is required'],
  [
    'keys_upload',
    'one_time_prekeys',
    [
      { key_id: 1, key: B64 },
      { key_id: 1, key: B64 },
    ],
    B,
    '"one_time_prekeys" lists key_id 1 more than once',
  ],
  // to_device, to_device_ack
  ['to_device', 'user', MISSING, B, '"user" is required'],
  ['to_device', 'user', 'b ob', B, USER_MSG],
  ['to_device', 'device', MISSING, B, '"device" is required'],
  ['to_device', 'device', 'phone:1', B, DEVICE_MSG],
  ['to_device', 'body', MISSING, B, '"body" is required'],
  ['to_device', 'body', 1, B, '"body" must be a string'],
  ['to_device', 'body', 'x'.repeat(65537), L, '"body" exceeds 65536 bytes'],
  ['to_device_ack', 'upto', MISSING, B, '"upto" is required'],
  ['to_device_ack', 'upto', -1, B, '"upto" must be an integer >= 0'],
  ['to_device_ack', 'upto', '9', B, '"upto" must be an integer >= 0'],
  // revoke_device
  ['revoke_device', 'device', MISSING, B, '"device" is required'],
  ['revoke_device', 'device', 'a/b', B, DEVICE_MSG],
  // mute
  ['mute', 'conv', MISSING, B, '"conv" is required'],
  ['mute', 'until', 0, B, '"until" must be a time in ms >= 1'],
  ['mute', 'until', '1', B, '"until" must be a time in ms >= 1'],
  ['unmute', 'conv', 'nope', B, '"conv" must be a conversation id'],
  // media
  ['media_upload', 'size', MISSING, B, '"size" is required'],
  ['media_upload', 'size', 0, B, '"size" must be an integer >= 1'],
  ['media_upload', 'size', '183224', B, '"size" must be an integer >= 1'],
  ['media_upload', 'size', 1e300, B, '"size" must be an integer >= 1'],
  ['media_upload', 'content_type', MISSING, B, '"content_type" is required'],
  ...[
    'png',
    '/png',
    'image/',
    ' image/png',
    'image/png\r\nX-Evil: 1',
    'imagé/png',
    `image/${'x'.repeat(250)}`,
  ].map(
    (v): Case => [
      'media_upload',
      'content_type',
      v,
      B,
      '"content_type" must be a media type such as "image/png" of at most 255 characters',
    ],
  ),
  ['media_download', 'media', MISSING, B, '"media" is required'],
  ['media_download', 'media', 'm/../x', B, '"media" must be a media id'],
  ['media_download', 'media', 'm'.repeat(129), B, '"media" must be a media id'],
];

describe('field errors (wrong type, missing, too long, bad format, over limits)', () => {
  for (const [op, field, value, code, message] of CASES) {
    const shown = value === MISSING ? 'missing' : JSON.stringify(value)?.slice(0, 40);
    it(`${op}.${field} = ${shown} → ${code}`, () => {
      const r = fail(withField(op, field, value));
      assert.deepEqual(r, { ok: false, id: 'r1', code, message });
    });
  }
});

describe('limits exactly at the boundary pass', () => {
  const at: [ClientOp, string, unknown][] = [
    ['connect', 'token', 't'.repeat(8192)],
    ['connect', 'client', 'c'.repeat(128)],
    ['send', 'conv', 'dm:alice:alice'],
    ['send', 'conv', `dm:${'a'.repeat(64)}:${'b'.repeat(64)}`],
    ['send', 'conv', `g:${'x'.repeat(64)}`],
    ['send', 'cmid', 'c'.repeat(64)],
    ['send', 'kind', 'k'.repeat(32)],
    ['send', 'kind', 'system-ish'],
    ['send', 'body', ''],
    ['send', 'body', 'x'.repeat(65536)],
    ['send', 'body', 'é'.repeat(32768)],
    ['send', 'body', '😀'.repeat(16384)],
    ['send', 'body', `${'€'.repeat(21845)}x`],
    ['send', 'reply_to', 1],
    ['send', 'reply_to', Number.MAX_SAFE_INTEGER],
    ['send', 'media', []],
    ['send', 'media', many(16, 'm')],
    ['sync', 'after', 0],
    ['sync', 'limit', 1],
    ['sync', 'limit', 1000],
    ['history', 'before', 1],
    ['history', 'limit', 200],
    ['conversations', 'limit', 200],
    ['conversations', 'before_ts', 0],
    ['receipt', 'seq', 1],
    ['receipt', 'kind', 'delivered'],
    ['create_group', 'name', 'n'.repeat(128)],
    ['create_group', 'name', '😀'.repeat(128)],
    ['create_group', 'name', 'Ĉambro ☕'],
    ['create_group', 'members', []],
    ['create_group', 'members', many(512)],
    ['add_members', 'users', many(512)],
    ['remove_members', 'users', many(512)],
    ['update_group', 'name', 'n'.repeat(128)],
    ['set_role', 'role', 'member'],
    ['presence_sub', 'users', many(1000)],
    ['presence_unsub', 'users', many(1000)],
    ['typing', 'state', 'stop'],
    ['settings', 'read_receipts', true],
    ['settings', 'last_seen', 'everyone'],
    ['push_register', 'token', 'ab'.repeat(2048)],
    ['push_register', 'token', 'AB'],
    ['push_register', 'topic', 'com.example.app.voip'],
    ['keys_upload', 'identity_key', 'A'.repeat(1024)],
    ['keys_upload', 'identity_key', 'ab-_'],
    ['keys_upload', 'identity_key', 'AB=='],
    ['keys_upload', 'signed_prekey', { key_id: 0, key: B64, signature: B64 }],
    ['keys_upload', 'one_time_prekeys', Array.from({ length: 200 }, (_, i) => ({ key_id: i, key: B64 }))],
    ['keys_upload', 'one_time_prekeys', Array.from({ length: 40 }, (_, i) => ({ key_id: i * 7, key: B64 }))],
    ['to_device', 'body', '😀'.repeat(16384)],
    ['to_device_ack', 'upto', 0],
    ['media_upload', 'size', 1],
    ['media_upload', 'size', Number.MAX_SAFE_INTEGER],
    ['media_upload', 'content_type', 'video/mp4; codecs="avc1.42E01E"'],
    ['media_download', 'media', 'm'.repeat(128)],
  ];
  for (const [op, field, value] of at) {
    it(`${op}.${field} = ${JSON.stringify(value).slice(0, 40)} passes`, () => {
      const input = withField(op, field, value);
      assert.deepEqual(ok(input), input);
    });
  }
});

describe('defaults and op-specific rules', () => {
  it('sync, history and conversations default limit, capped by the configured maximum', () => {
    assert.deepEqual(ok({ type: 'sync', id: 'a', after: 0 }), {
      type: 'sync',
      id: 'a',
      after: 0,
      limit: 500,
    });
    assert.deepEqual(ok({ type: 'sync', id: 'a', after: 0, limit: null }), {
      type: 'sync',
      id: 'a',
      after: 0,
      limit: 500,
    });
    assert.deepEqual(ok({ type: 'history', id: 'a', conv: G }), {
      type: 'history',
      id: 'a',
      conv: G,
      limit: 50,
    });
    assert.deepEqual(ok({ type: 'conversations', id: 'a' }), { type: 'conversations', id: 'a', limit: 50 });
    const small = { ...DEFAULT_LIMITS, maxSyncLimit: 100, maxHistoryLimit: 10, maxConversationsLimit: 20 };
    assert.equal((ok({ type: 'sync', id: 'a', after: 0 }, small) as { limit: number }).limit, 100);
    assert.equal((ok({ type: 'history', id: 'a', conv: G }, small) as { limit: number }).limit, 10);
    assert.equal((ok({ type: 'conversations', id: 'a' }, small) as { limit: number }).limit, 20);
    assert.equal(
      fail({ type: 'sync', id: 'a', after: 0, limit: 101 }, small).message,
      '"limit" must be an integer 1..100',
    );
  });
  it('history takes before, after, or neither', () => {
    assert.deepEqual(ok({ type: 'history', id: 'a', conv: G, after: 0, limit: 5 }), {
      type: 'history',
      id: 'a',
      conv: G,
      after: 0,
      limit: 5,
    });
    assert.equal(
      fail({ type: 'history', id: 'a', conv: G, after: -1 }).message,
      '"after" must be an integer >= 0',
    );
    assert.equal(
      fail({ type: 'history', id: 'a', conv: G, after: 1, before: 5 }).message,
      '"before" and "after" cannot both be given',
    );
    assert.deepEqual(ok({ type: 'history', id: 'a', conv: G, after: null, before: 5 }), {
      type: 'history',
      id: 'a',
      conv: G,
      before: 5,
      limit: 50,
    });
  });
  it('settings with no fields is a read', () => {
    assert.deepEqual(ok({ type: 'settings', id: 's' }), { type: 'settings', id: 's' });
  });
  it('push_register keeps only the fields of its platform', () => {
    const all = {
      type: 'push_register',
      id: 'p',
      token: HEX,
      topic: 'com.example.app',
      endpoint: 'https://up.example/abc',
      subscription: {
        endpoint: 'https://fcm.googleapis.com/fcm/send/x',
        keys: { p256dh: 'BNcR_-', auth: 'tBHI' },
      },
    };
    assert.deepEqual(ok({ ...all, platform: 'apns' }), {
      type: 'push_register',
      id: 'p',
      platform: 'apns',
      token: HEX,
      topic: 'com.example.app',
    });
    assert.deepEqual(ok({ ...all, platform: 'fcm', token: 'fcm:APA91b_x-y' }), {
      type: 'push_register',
      id: 'p',
      platform: 'fcm',
      token: 'fcm:APA91b_x-y',
    });
    assert.deepEqual(ok({ ...all, platform: 'webpush' }), {
      type: 'push_register',
      id: 'p',
      platform: 'webpush',
      subscription: all.subscription,
    });
    assert.deepEqual(ok({ ...all, platform: 'unifiedpush' }), {
      type: 'push_register',
      id: 'p',
      platform: 'unifiedpush',
      endpoint: 'https://up.example/abc',
    });
    const keys = {
      p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM',
      auth: 'tBHItJI5svbpez7KI4CCXg',
    };
    assert.deepEqual(ok({ ...all, platform: 'unifiedpush', keys }), {
      type: 'push_register',
      id: 'p',
      platform: 'unifiedpush',
      endpoint: 'https://up.example/abc',
      keys,
    });
  });
  it('push_register rejects what each platform cannot use', () => {
    const e = (input: Input) => fail({ type: 'push_register', id: 'p', ...input }).message;
    assert.equal(e({ platform: 'fcm' }), '"token" is required');
    assert.equal(
      e({ platform: 'fcm', token: 'a b' }),
      '"token" must be a string of 1..4096 characters of printable ASCII',
    );
    assert.equal(
      e({ platform: 'fcm', token: 't'.repeat(4097) }),
      '"token" must be a string of 1..4096 characters of printable ASCII',
    );
    assert.equal(e({ platform: 'webpush' }), '"subscription" is required');
    assert.equal(
      e({ platform: 'webpush', subscription: 'x' }),
      '"subscription" must be a push subscription object',
    );
    const keys = { p256dh: 'BNcR', auth: 'tBHI' };
    const urlMsg = '"subscription.endpoint" must be an https URL of at most 2048 characters';
    for (const endpoint of [
      'http://push.example/x',
      'https://',
      'https:///x',
      'https://@evil',
      'https://a b',
      'ftp://x.example',
      `https://x.example/${'p'.repeat(2031)}`,
      5,
    ]) {
      assert.equal(e({ platform: 'webpush', subscription: { endpoint, keys } }), urlMsg, String(endpoint));
    }
    const longest = `https://x.example/${'p'.repeat(2030)}`;
    assert.equal(longest.length, 2048);
    assert.equal(
      ok({ type: 'push_register', id: 'p', platform: 'webpush', subscription: { endpoint: longest, keys } })
        .type,
      'push_register',
    );
    assert.equal(e({ platform: 'webpush', subscription: { keys } }), '"subscription.endpoint" is required');
    const endpoint = 'https://push.example/x';
    assert.equal(e({ platform: 'webpush', subscription: { endpoint } }), '"subscription.keys" is required');
    assert.equal(
      e({ platform: 'webpush', subscription: { endpoint, keys: [] } }),
      '"subscription.keys" must be an object',
    );
    assert.equal(
      e({ platform: 'webpush', subscription: { endpoint, keys: { auth: 'tBHI' } } }),
      '"subscription.keys.p256dh" is required',
    );
    assert.equal(
      e({ platform: 'webpush', subscription: { endpoint, keys: { p256dh: 'a+b?', auth: 'tBHI' } } }),
      '"subscription.keys.p256dh" must be base64url of at most 256 characters',
    );
    assert.equal(
      e({ platform: 'webpush', subscription: { endpoint, keys: { p256dh: 'BNcR', auth: 'x'.repeat(257) } } }),
      '"subscription.keys.auth" must be base64url of at most 256 characters',
    );
    assert.equal(e({ platform: 'unifiedpush' }), '"endpoint" is required');
    assert.equal(
      e({ platform: 'unifiedpush', endpoint: 'http://up.example/x' }),
      '"endpoint" must be an https URL of at most 2048 characters',
    );
    assert.equal(
      e({ platform: 'unifiedpush', endpoint: 'https://up.example/x', keys: { p256dh: 'a b', auth: 'x' } }),
      '"keys.p256dh" must be base64url of at most 256 characters',
    );
    assert.equal(
      e({ platform: 'unifiedpush', endpoint: 'https://up.example/x', keys: 'k' }),
      '"keys" must be an object',
    );
  });
  it('keys_upload needs at least one key, and each part alone is enough', () => {
    assert.equal(
      fail({ type: 'keys_upload', id: 'k' }).message,
      '"keys_upload" needs "identity_key", "signed_prekey" or "one_time_prekeys"',
    );
    assert.equal(fail({ type: 'keys_upload', id: 'k', identity_key: null }).ok, false);
    const parts: Input[] = [
      { identity_key: B64 },
      { signed_prekey: { key_id: 3, key: B64, signature: B64, extra: 1 } },
      { one_time_prekeys: [{ key_id: 9, key: B64, extra: 1 }] },
    ];
    for (const p of parts) {
      const frame = ok({ type: 'keys_upload', id: 'k', ...p }) as unknown as Record<string, unknown>;
      const key = Object.keys(p)[0]!;
      assert.deepEqual(Object.keys(frame).sort(), ['id', key, 'type'].sort());
      assert.equal(JSON.stringify(frame).includes('extra'), false);
    }
  });
  it('body limits honour limits.maxBodyBytes', () => {
    const limits = { ...DEFAULT_LIMITS, maxBodyBytes: 4 };
    assert.equal(ok({ ...VALID.send, body: '😀' }, limits).type, 'send');
    assert.equal(fail({ ...VALID.send, body: '😀x' }, limits).code, 'too_large');
    assert.equal(fail({ ...VALID.send, body: 'ééé' }, limits).code, 'too_large');
    assert.equal(fail({ ...VALID.to_device, body: 'abcde' }, limits).message, '"body" exceeds 4 bytes');
  });
  it('the id is echoed on every failure when it is valid, for every op', () => {
    for (const op of CLIENT_OPS) {
      // Break the frame with a field every failing op reads: drop all fields but type and id
      // (ops with no required fields fail through a wrong type on an optional field instead).
      const broken: Input = { type: op, id: 'echo-me', limit: -1, read_receipts: 'x', identity_key: '!' };
      const r = validateClientFrame(broken);
      if (['ping', 'push_unregister', 'keys_count', 'devices'].includes(op)) {
        assert.equal(r.ok, true, op);
        continue;
      }
      assert.equal(r.ok, false, op);
      if (!r.ok) assert.equal(r.id, 'echo-me', op);
    }
  });
  it('never mutates its input', () => {
    for (const op of CLIENT_OPS) {
      const input = structuredClone(VALID[op]);
      const before = JSON.stringify(input);
      validateClientFrame(input);
      validateClientFrame({ ...input, limit: undefined });
      assert.equal(JSON.stringify(input), before);
    }
  });
});

describe('lone surrogates (they would read back as U+FFFD from UTF-8 storage)', () => {
  const LONE = ['\ud800', '\udbff', '\udc00', '\udfff', 'a\ud83d', '\ude00b', '\ude00\ud83d'];
  const message = (field: string) => `"${field}" must be well-formed Unicode (it holds a lone surrogate)`;
  /** The free-text fields: the only ones whose own format allows non-ASCII characters. */
  const FREE_TEXT: [ClientOp, string][] = [
    ['connect', 'token'],
    ['connect', 'client'],
    ['send', 'cmid'],
    ['send', 'kind'],
    ['send', 'body'],
    ['create_group', 'name'],
    ['update_group', 'name'],
    ['to_device', 'body'],
  ];
  for (const [op, field] of FREE_TEXT) {
    it(`${op}.${field}: refused with bad_request naming the field, as a value and as JSON text`, () => {
      for (const lone of LONE) {
        const input = withField(op, field, `ok ${lone} ok`);
        assert.deepEqual(fail(input), { ok: false, id: 'r1', code: 'bad_request', message: message(field) });
        // The wire form: JSON.stringify writes a lone surrogate as a \udXXX escape.
        const text = JSON.stringify(input);
        assert.match(text, /\\ud[89a-f]/);
        assert.deepEqual(parseClientFrame(text), {
          ok: false,
          id: 'r1',
          code: 'bad_request',
          message: message(field),
        });
        // Upper-case hex escapes are the same string.
        const upper = text.replace(
          /\\ud([89a-f])([0-9a-f]{2})/g,
          (_, a: string, b: string) => `\\uD${a.toUpperCase()}${b.toUpperCase()}`,
        );
        assert.notEqual(upper, text);
        assert.equal(parseClientFrame(upper).ok, false);
      }
    });
  }
  for (const op of CLIENT_OPS) {
    it(`${op}: a lone surrogate in the id is refused without echoing the id`, () => {
      const expected = { ok: false, code: 'bad_request', message: message('id') };
      assert.deepEqual(fail(withField(op, 'id', 'r\ud800')), expected);
      assert.deepEqual(parseClientFrame(JSON.stringify(withField(op, 'id', '\udfffr'))), expected);
    });
  }
  it('every other string field is refused too (by its format), naming the field', () => {
    const cases: [Input, string][] = [
      [withField('send', 'conv', 'dm:alice:b\ud800'), 'conv'],
      [withField('send', 'media', ['m_1', 'm\udc00']), 'media[1]'],
      [withField('presence_sub', 'users', ['bob', '\ud800']), 'users[1]'],
      [withField('set_role', 'role', 'admin\ud800'), 'role'],
      [withField('push_register', 'topic', 'com.example\ud800'), 'topic'],
      [
        withField('keys_upload', 'signed_prekey', { key_id: 1, key: `${B64}\ud800`, signature: B64 }),
        'signed_prekey.key',
      ],
      [withField('revoke_device', 'device', 'phone\udfff'), 'device'],
    ];
    for (const [input, field] of cases) {
      const r = parseClientFrame(JSON.stringify(input));
      assert.equal(r.ok, false, field);
      if (!r.ok) assert.ok(r.message.startsWith(`"${field}" `), r.message);
    }
  });
  it('surrogate pairs and other non-BMP text pass unchanged, escaped or not, in any case', () => {
    const body = 'emoji 😀👍🏽, clef 𝄞, CJK ext-B 𠀀, U+10FFFF \u{10ffff}, RTL שלום, NUL \u0000';
    const input = withField('send', 'body', body);
    assert.deepEqual(ok(input), input);
    assert.deepEqual(parseClientFrame(JSON.stringify(input)), { ok: true, frame: input });
    for (const hexCase of ['toUpperCase', 'toLowerCase'] as const) {
      const escaped = JSON.stringify(input).replace(
        /[\ud800-\udfff]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16)[hexCase]()}`,
      );
      assert.match(escaped, /\\ud83d\\ude00/i);
      assert.deepEqual(parseClientFrame(escaped), { ok: true, frame: input });
    }
  });
  it('a literal lone surrogate in the text (not only an escape) is refused', () => {
    const text = `{"type":"send","id":"r1","conv":"dm:alice:bob","cmid":"c\ud800","kind":"text","body":"x"}`;
    assert.deepEqual(parseClientFrame(text), {
      ok: false,
      id: 'r1',
      code: 'bad_request',
      message: message('cmid'),
    });
  });
  it('an escaped backslash before "ud800" is not a surrogate escape', () => {
    const text = String.raw`{"type":"send","id":"r1","conv":"dm:alice:bob","cmid":"c1","kind":"text","body":"\\ud800"}`;
    const r = parseClientFrame(text);
    assert.ok(r.ok && r.frame.type === 'send' && r.frame.body === '\\ud800');
  });
  it('unknown fields are ignored, lone surrogates and all (they are never stored)', () => {
    const input = { ...VALID.send, note: '\ud800', '\udc00': 1 };
    assert.equal(validateClientFrame(input).ok, true);
    assert.equal(parseClientFrame(JSON.stringify(input)).ok, true);
  });
  it('the fallback check agrees with String.prototype.isWellFormed', () => {
    const samples = [
      '',
      'abc',
      '😀',
      'a😀b',
      '\ud83d\ude00\ud83d',
      ...LONE,
      '\udc00\ud800',
      '\ud800\ud800\udc00',
    ];
    // Node 20 has the native method; the ES2023 lib this project compiles with does not declare it.
    const native = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
    for (const s of samples) assert.equal(hasNoLoneSurrogate(s), native(s), JSON.stringify(s));
  });
});
