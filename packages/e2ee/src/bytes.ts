/**
 * Byte helpers shared by every module: base64 (the protocol carries keys and ciphertexts as
 * base64 strings), UTF-8, randomness from `crypto.getRandomValues` (Node and browsers alike),
 * constant-time comparison and zeroing.
 *
 * @module
 */

import { equalBytes } from '@noble/ciphers/utils.js';
import { E2eeError } from './errors.js';

export { equalBytes };

/** Canonical standard base64 with padding: the only form accepted, so one value has one encoding. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Bytes → standard base64 (with padding). */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  // Chunked so that String.fromCharCode never gets more arguments than an engine allows.
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Standard base64 → bytes; throws `bad_input` on anything else, and on a length other than
 * `expectedLength` when given (a key of the wrong size is refused before it reaches a primitive).
 */
export function fromBase64(text: unknown, expectedLength?: number, what = 'value'): Uint8Array {
  if (typeof text !== 'string' || !BASE64.test(text)) throw new E2eeError('bad_input', `${what}: not base64`);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  if (expectedLength !== undefined && bytes.length !== expectedLength) {
    throw new E2eeError('bad_input', `${what}: expected ${expectedLength} bytes, got ${bytes.length}`);
  }
  return bytes;
}

const encoder = new TextEncoder();
// fatal: invalid UTF-8 inside an authenticated plaintext is a bug or an attack, never text.
const decoder = new TextDecoder('utf-8', { fatal: true });

/** String → UTF-8 bytes. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** UTF-8 bytes → string; throws `bad_input` on invalid UTF-8. */
export function fromUtf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new E2eeError('bad_input', 'invalid UTF-8');
  }
}

/** Most bytes `crypto.getRandomValues` fills in one call (the Web Crypto limit). */
const RANDOM_CHUNK = 65536;

/** `length` cryptographically random bytes from the platform's CSPRNG. */
export function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += RANDOM_CHUNK) crypto.getRandomValues(bytes.subarray(i, i + RANDOM_CHUNK));
  return bytes;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Overwrites secrets once they are no longer needed. JavaScript cannot promise that no copy
 * survives (the engine may have moved the buffer), but it removes the copies we hold.
 */
export function wipe(...arrays: (Uint8Array | undefined)[]): void {
  for (const a of arrays) a?.fill(0);
}

/** Parses JSON from untrusted text into `unknown`; throws `bad_input` instead of SyntaxError. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new E2eeError('bad_input', 'not JSON');
  }
}

/** Narrows an untrusted value to a plain object, or throws `bad_input` naming what it expected. */
export function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new E2eeError('bad_input', `${what}: expected an object`);
  }
  return value as Record<string, unknown>;
}

/** Reads a non-negative safe integer field of an untrusted object, or throws `bad_input`. */
export function intField(record: Record<string, unknown>, key: string, what: string): number {
  const value = record[key];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new E2eeError('bad_input', `${what}.${key}: expected a non-negative integer`);
  }
  return value;
}

/** Reads a string field of an untrusted object, or throws `bad_input`. */
export function stringField(record: Record<string, unknown>, key: string, what: string): string {
  const value = record[key];
  if (typeof value !== 'string') throw new E2eeError('bad_input', `${what}.${key}: expected a string`);
  return value;
}
