import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBase64, fromUtf8, randomBytes, toBase64, utf8 } from './bytes.js';
import { E2eeError } from './errors.js';

const isCode = (code: string) => (err: unknown) => err instanceof E2eeError && err.code === code;

test('base64 matches the standard encoding for every length, and round-trips', () => {
  for (let n = 0; n < 70; n++) {
    const bytes = crypto.getRandomValues(new Uint8Array(n));
    const text = toBase64(bytes);
    assert.equal(text, Buffer.from(bytes).toString('base64'));
    assert.deepEqual(fromBase64(text), bytes);
  }
  const big = randomBytes(200_000);
  assert.deepEqual(fromBase64(toBase64(big)), big);
});

test('randomBytes fills buffers larger than one getRandomValues call', () => {
  const bytes = randomBytes(3 * 65536 + 5);
  assert.equal(bytes.length, 3 * 65536 + 5);
  // The last chunk is filled too: 5 zero bytes by chance has probability 2^-40.
  assert.ok(bytes.subarray(-5).some((b) => b !== 0));
  assert.ok(bytes.subarray(65536, 65541).some((b) => b !== 0));
});

test('only canonical standard base64 is accepted, and lengths are checked', () => {
  for (const bad of ['YQ', 'YQ=', 'Y Q==', 'YQ==\n', '-_8=', 'YQ==YQ==', 42, null]) {
    assert.throws(() => fromBase64(bad), isCode('bad_input'), String(bad));
  }
  assert.deepEqual(fromBase64('YQ==', 1), Uint8Array.of(97));
  assert.throws(() => fromBase64('YQ==', 32), isCode('bad_input'));
});

test('UTF-8 decoding refuses invalid bytes instead of replacing them', () => {
  assert.equal(fromUtf8(utf8('héllo ✓')), 'héllo ✓');
  assert.throws(() => fromUtf8(Uint8Array.of(0xff, 0xfe)), isCode('bad_input'));
});
