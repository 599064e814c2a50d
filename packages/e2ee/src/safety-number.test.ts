import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hexToBytes } from '@noble/hashes/utils.js';
import { toBase64 } from './bytes.js';
import { DeviceIdentity } from './identity.js';
import { fingerprintDigits, safetyNumber } from './safety-number.js';

test("Signal's displayable fingerprint test vector", () => {
  // libsignal's NumericFingerprintGenerator test: two 33-byte identity keys, phone numbers as ids.
  const alice = hexToBytes('0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868');
  const bob = hexToBytes('05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b');
  const number = safetyNumber('+14152222222', toBase64(alice), '+14153333333', toBase64(bob));
  assert.equal(number, '300354477692869396892869876765458257569162576843440918079131');
  assert.equal(fingerprintDigits(alice, '+14152222222'), '300354477692869396892869876765');
});

test('both users see the same number; it changes with any key or user id; device order does not matter', () => {
  const [a1, a2, b1] = [DeviceIdentity.generate(), DeviceIdentity.generate(), DeviceIdentity.generate()];
  const fromAlice = safetyNumber('alice', [a1.identityKey, a2.identityKey], 'bob', b1.identityKey);
  const fromBob = safetyNumber('bob', b1.identityKey, 'alice', [a2.identityKey, a1.identityKey]);
  assert.match(fromAlice, /^\d{60}$/);
  assert.equal(fromAlice, fromBob);
  assert.notEqual(safetyNumber('alice', a1.identityKey, 'bob', b1.identityKey), fromAlice);
  assert.notEqual(
    safetyNumber('alice', [a1.identityKey, a2.identityKey], 'bobby', b1.identityKey),
    fromAlice,
  );
});
