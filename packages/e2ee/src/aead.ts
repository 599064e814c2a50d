/**
 * AES-256-GCM, the one authenticated cipher of the package (messages, to_device payloads,
 * attachments). A failed authentication becomes `decrypt_failed`, whatever the library threw.
 *
 * @module
 */

import { gcm } from '@noble/ciphers/aes.js';
import { E2eeError } from './errors.js';

/** Bytes of an AES-GCM nonce. */
export const NONCE_BYTES = 12;

/** Encrypts and authenticates `plaintext` (and `aad`, which is not encrypted). */
export function seal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  return gcm(key, nonce, aad).encrypt(plaintext);
}

/** Decrypts `ciphertext`; throws `decrypt_failed` if it, the nonce or `aad` was altered or the key is wrong. */
export function open(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  try {
    return gcm(key, nonce, aad).decrypt(ciphertext);
  } catch {
    throw new E2eeError('decrypt_failed', 'ciphertext did not authenticate');
  }
}
