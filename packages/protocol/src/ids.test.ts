import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  directConv,
  directMembers,
  GROUP_CONV_RE,
  isConvId,
  isDeviceId,
  isGroupConv,
  isMediaId,
  isUserId,
  MEDIA_ID_RE,
  parseConv,
  USER_ID_RE,
  utf8Length,
  utf8LengthExceeds,
} from './ids.js';

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-';
const userIdArb = fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 1, maxLength: 64 });
/** Strings near the id formats: id chars plus the separators and some non-ASCII. */
const nearIdArb = fc.string({ unit: fc.constantFrom(...`${ID_CHARS}:g dm~é\u0000`), maxLength: 140 });
/** Any UTF-16 string, lone surrogates included. */
const utf16Arb = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) });

describe('isUserId / isDeviceId', () => {
  it('accepts 1..64 chars of [A-Za-z0-9_.-]', () => {
    for (const id of ['a', 'alice', 'Bob_2', 'x.y-z', '0', '_', '.', '-', 'a'.repeat(64)]) {
      assert.equal(isUserId(id), true, id);
      assert.equal(isDeviceId(id), true, id);
    }
  });
  it('rejects empty, too long, other chars and non-strings', () => {
    for (const id of ['', 'a'.repeat(65), 'a b', 'a:b', 'é', 'a/b', 'a\n', 'a@b', '~']) {
      assert.equal(isUserId(id), false, JSON.stringify(id));
      assert.equal(isDeviceId(id), false, JSON.stringify(id));
    }
    for (const v of [undefined, null, 5, {}, ['a'], true]) assert.equal(isUserId(v), false);
  });
  it('agrees with USER_ID_RE on random strings', () => {
    fc.assert(
      fc.property(fc.oneof(nearIdArb, utf16Arb, userIdArb), (s) => {
        assert.equal(isUserId(s), USER_ID_RE.test(s));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isGroupConv', () => {
  it('accepts g: + 1..64 of [A-Za-z0-9_-]', () => {
    for (const c of ['g:a', 'g:01HZABC', 'g:a_b-c', `g:${'x'.repeat(64)}`])
      assert.equal(isGroupConv(c), true, c);
  });
  it('rejects other forms', () => {
    for (const c of ['g:', 'g', 'G:a', 'g:a.b', 'g:a:b', `g:${'x'.repeat(65)}`, 'dm:a:b', ' g:a', 'g:é']) {
      assert.equal(isGroupConv(c), false, c);
    }
    assert.equal(isGroupConv(7), false);
  });
  it('agrees with GROUP_CONV_RE on random strings', () => {
    const arb = fc.oneof(
      nearIdArb,
      nearIdArb.map((s) => `g:${s}`),
    );
    fc.assert(
      fc.property(arb, (s) => assert.equal(isGroupConv(s), GROUP_CONV_RE.test(s))),
      { numRuns: 2000 },
    );
  });
});

describe('isMediaId', () => {
  it('accepts URL-safe ids up to 128 chars and agrees with MEDIA_ID_RE', () => {
    assert.equal(isMediaId('m_8f3c.x~y-z'), true);
    assert.equal(isMediaId('m'.repeat(128)), true);
    assert.equal(isMediaId('m'.repeat(129)), false);
    assert.equal(isMediaId(''), false);
    assert.equal(isMediaId('m/1'), false);
    assert.equal(isMediaId(5), false);
    fc.assert(
      fc.property(nearIdArb, (s) => assert.equal(isMediaId(s), MEDIA_ID_RE.test(s))),
      { numRuns: 1000 },
    );
  });
});

describe('isConvId / parseConv', () => {
  it('parses sorted direct ids, note-to-self and groups', () => {
    assert.deepEqual(parseConv('dm:alice:bob'), { kind: 'direct', a: 'alice', b: 'bob' });
    assert.deepEqual(parseConv('dm:alice:alice'), { kind: 'direct', a: 'alice', b: 'alice' });
    assert.deepEqual(parseConv('dm:Bob:alice'), { kind: 'direct', a: 'Bob', b: 'alice' }); // 'B' < 'a' bytewise
    assert.deepEqual(parseConv('dm:al:alice'), { kind: 'direct', a: 'al', b: 'alice' }); // prefix sorts first
    assert.deepEqual(parseConv('g:01HZ'), { kind: 'group', id: '01HZ' });
    const long = 'z'.repeat(64);
    assert.deepEqual(parseConv(`dm:${long}:${long}`), { kind: 'direct', a: long, b: long });
    for (const c of ['dm:alice:bob', 'dm:alice:alice', 'g:01HZ', `dm:${long}:${long}`])
      assert.equal(isConvId(c), true);
  });
  it('rejects unsorted, malformed and non-string ids', () => {
    const bad = [
      'dm:bob:alice',
      'dm:alice:Bob',
      'dm:alice:al',
      'dm:alice',
      'dm:alice:',
      'dm::bob',
      'dm:a:b:c',
      'dm:a b:c',
      'dm:a:é',
      `dm:${'a'.repeat(65)}:b`,
      `dm:a:${'b'.repeat(65)}`,
      'DM:a:b',
      'd:a:b',
      'x:abc',
      '',
      'g:',
      'g:a.b',
    ];
    for (const c of bad) {
      assert.equal(parseConv(c), null, c);
      assert.equal(isConvId(c), false, c);
    }
    for (const v of [undefined, null, 1, {}, ['dm:a:b']]) assert.equal(isConvId(v), false);
  });
  it('isConvId(s) iff parseConv(s) is not null, and parseConv output rebuilds s', () => {
    const arb = fc.oneof(
      nearIdArb,
      fc.tuple(nearIdArb, nearIdArb).map(([a, b]) => `dm:${a}:${b}`),
      fc.tuple(userIdArb, userIdArb).map(([a, b]) => `dm:${a}:${b}`),
      nearIdArb.map((s) => `g:${s}`),
    );
    fc.assert(
      fc.property(arb, (s) => {
        const p = parseConv(s);
        assert.equal(isConvId(s), p !== null);
        if (p === null) return;
        if (p.kind === 'group') {
          assert.equal(`g:${p.id}`, s);
        } else {
          assert.equal(`dm:${p.a}:${p.b}`, s);
          assert.ok(isUserId(p.a) && isUserId(p.b) && p.a <= p.b);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('directMembers', () => {
  it('names the two users of a direct conversation, one for a note-to-self, none for a group', () => {
    assert.deepEqual(directMembers('dm:alice:bob'), ['alice', 'bob']);
    assert.deepEqual(directMembers('dm:alice:alice'), ['alice']);
    assert.equal(directMembers('g:01HZX3'), null);
    assert.equal(directMembers('dm:alice'), null);
  });
});

describe('directConv', () => {
  it('sorts the two user ids bytewise', () => {
    assert.equal(directConv('bob', 'alice'), 'dm:alice:bob');
    assert.equal(directConv('alice', 'bob'), 'dm:alice:bob');
    assert.equal(directConv('alice', 'alice'), 'dm:alice:alice');
    assert.equal(directConv('alice', 'Zed'), 'dm:Zed:alice');
  });
  it('throws on non-user ids', () => {
    assert.throws(() => directConv('a:b', 'c'), TypeError);
    assert.throws(() => directConv('a', ''), TypeError);
  });
  it('round-trips through parseConv, is symmetric and always valid', () => {
    fc.assert(
      fc.property(userIdArb, userIdArb, (u1, u2) => {
        const c = directConv(u1, u2);
        assert.equal(c, directConv(u2, u1));
        assert.equal(isConvId(c), true);
        const [lo, hi] = u1 <= u2 ? [u1, u2] : [u2, u1];
        assert.deepEqual(parseConv(c), { kind: 'direct', a: lo, b: hi });
      }),
      { numRuns: 2000 },
    );
  });
});

describe('utf8Length / utf8LengthExceeds', () => {
  const enc = new TextEncoder();
  it('counts bytes of each UTF-8 width and lone surrogates as 3', () => {
    assert.equal(utf8Length(''), 0);
    assert.equal(utf8Length('abc'), 3);
    assert.equal(utf8Length('é'), 2);
    assert.equal(utf8Length('€'), 3);
    assert.equal(utf8Length('😀'), 4);
    assert.equal(utf8Length('\ud800'), 3);
    assert.equal(utf8Length('\udc00'), 3);
    assert.equal(utf8Length('\udc00\ud800'), 6); // reversed pair: two lone surrogates
    assert.equal(utf8Length('a\ud83d'), 4); // high surrogate at the end
  });
  it('equals TextEncoder byte length for any UTF-16 string', () => {
    fc.assert(
      fc.property(fc.oneof(utf16Arb, fc.string({ unit: 'binary' }), fc.string()), (s) => {
        assert.equal(utf8Length(s), enc.encode(s).length);
      }),
      { numRuns: 3000 },
    );
  });
  it('utf8LengthExceeds(s, max) === utf8Length(s) > max, at and around every boundary', () => {
    fc.assert(
      fc.property(fc.oneof(utf16Arb, fc.string({ unit: 'binary' })), fc.nat(200), (s, max) => {
        assert.equal(utf8LengthExceeds(s, max), utf8Length(s) > max);
        const len = utf8Length(s);
        assert.equal(utf8LengthExceeds(s, len), false);
        if (len > 0) assert.equal(utf8LengthExceeds(s, len - 1), true);
      }),
      { numRuns: 3000 },
    );
  });
});
