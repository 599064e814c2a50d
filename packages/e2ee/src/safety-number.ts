/**
 * Safety numbers: 60 digits two users compare out of band (read aloud, or side by side) to check
 * that the server handed each of them the other's real identity keys. This is Signal's numeric
 * fingerprint: per side, SHA-512 iterated 5200 times over version ‖ identity key ‖ stable user
 * id (each round hashing the previous digest ‖ the key), 30 digits from the first 30 bytes; the
 * two halves sorted, so both users see the same number.
 *
 * @module
 */

import { sha512 } from '@noble/hashes/sha2.js';
import { concat, fromBase64, utf8 } from './bytes.js';

/** Rounds of SHA-512 per half: Signal's number, to make a collision search costly. */
export const SAFETY_NUMBER_ITERATIONS = 5200;
/** The fingerprint version, hashed in first (Signal's display fingerprint version 0). */
const VERSION = Uint8Array.of(0, 0);

/**
 * One side's 30 digits: `key` is the identity key bytes (or several keys concatenated), `id` the
 * stable user id. Exported for test vectors; applications use {@link safetyNumber}.
 */
export function fingerprintDigits(
  key: Uint8Array,
  id: string,
  iterations = SAFETY_NUMBER_ITERATIONS,
): string {
  let hash = concat(VERSION, key, utf8(id));
  for (let i = 0; i < iterations; i++) hash = sha512(concat(hash, key));
  let digits = '';
  for (let offset = 0; offset < 30; offset += 5) digits += chunkDigits(hash, offset);
  return digits;
}

/** Five digits from five bytes: a 40-bit big-endian number modulo 100000, zero-padded. */
function chunkDigits(hash: Uint8Array, offset: number): string {
  let value = 0;
  // 40 bits fit exactly in a double (53-bit mantissa), so no BigInt is needed.
  for (let i = 0; i < 5; i++) value = value * 256 + hash[offset + i]!;
  return String(value % 100000).padStart(5, '0');
}

/**
 * The bytes hashed for a user's identity: one published identity key, or, for a user with
 * several devices (each with its own identity), all of them sorted so that order does not matter.
 * A device added or replaced changes the number, which is the point: it may be an impostor.
 */
export function identityKeyMaterial(identityKeys: string | readonly string[]): Uint8Array {
  const keys = typeof identityKeys === 'string' ? [identityKeys] : [...identityKeys].sort();
  return concat(...keys.map((k) => fromBase64(k, undefined, 'identity key')));
}

/**
 * The safety number of a conversation between two users, as 60 digits (display it in 12 groups
 * of 5). Both users get the same string. Identity keys are published `identity_key` values.
 */
export function safetyNumber(
  localUser: string,
  localIdentityKey: string | readonly string[],
  remoteUser: string,
  remoteIdentityKey: string | readonly string[],
): string {
  const local = fingerprintDigits(identityKeyMaterial(localIdentityKey), localUser);
  const remote = fingerprintDigits(identityKeyMaterial(remoteIdentityKey), remoteUser);
  return local <= remote ? local + remote : remote + local;
}
