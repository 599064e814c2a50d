/**
 * Encrypted attachments. Media travels as opaque bytes (`media_upload`, `media_download`), so
 * each file is encrypted with its own random key before upload; the key, nonce and a digest of
 * the ciphertext go inside the (end-to-end encrypted) message that lists the media id.
 *
 * @module
 */

import { sha256 } from '@noble/hashes/sha2.js';
import { NONCE_BYTES, open, seal } from './aead.js';
import {
  asRecord,
  equalBytes,
  fromBase64,
  intField,
  randomBytes,
  stringField,
  toBase64,
  wipe,
} from './bytes.js';
import { E2eeError } from './errors.js';

/** Largest inline thumbnail accepted in a descriptor: it must leave room in a 64 KiB message body. */
export const MAX_THUMBNAIL_BYTES = 16 * 1024;

/** How to decrypt one uploaded ciphertext; travels only inside an encrypted message. */
export type AttachmentPointer = {
  /** AES-256 key (base64, 32 random bytes), used for this file only. */
  key: string;
  /** AES-GCM nonce (base64). */
  nonce: string;
  /** SHA-256 of the ciphertext (base64): checked before decrypting what the server returned. */
  digest: string;
  /** Plaintext size in bytes. */
  size: number;
};

/**
 * What goes in a message body to describe an attachment. (Type aliases rather than interfaces,
 * so that a descriptor is assignable to `Json` and can go straight into `sendMessage` content.)
 */
export type AttachmentDescriptor = AttachmentPointer & {
  /** The media id from `media_upload`. */
  media: string;
  content_type: string;
  /**
   * A small preview (base64), inline so that it shows before the download. It is not encrypted
   * separately: the descriptor exists only inside an end-to-end encrypted message body.
   */
  thumbnail?: string;
};

/** Encrypts a file for upload with a fresh key; keep the pointer for the message. */
export function encryptAttachment(bytes: Uint8Array): { ciphertext: Uint8Array; pointer: AttachmentPointer } {
  const key = randomBytes(32);
  const nonce = randomBytes(NONCE_BYTES);
  const ciphertext = seal(key, nonce, bytes);
  const pointer = {
    key: toBase64(key),
    nonce: toBase64(nonce),
    digest: toBase64(sha256(ciphertext)),
    size: bytes.length,
  };
  wipe(key);
  return { ciphertext, pointer };
}

/**
 * Decrypts a downloaded file. The digest is checked first (`digest_mismatch`): a server that
 * swaps or truncates the file is caught before any decryption; then AES-GCM authenticates it.
 */
export function decryptAttachment(ciphertext: Uint8Array, pointer: AttachmentPointer): Uint8Array {
  if (!equalBytes(sha256(ciphertext), fromBase64(pointer.digest, 32, 'digest'))) {
    throw new E2eeError('digest_mismatch', 'attachment does not match its digest');
  }
  const key = fromBase64(pointer.key, 32, 'key');
  const plaintext = open(key, fromBase64(pointer.nonce, NONCE_BYTES, 'nonce'), ciphertext);
  wipe(key);
  if (plaintext.length !== pointer.size) throw new E2eeError('digest_mismatch', 'attachment size differs');
  return plaintext;
}

/** The descriptor to put in a message body for an uploaded attachment. */
export function attachmentDescriptor(
  media: string,
  pointer: AttachmentPointer,
  contentType: string,
  thumbnail?: Uint8Array,
): AttachmentDescriptor {
  const descriptor: AttachmentDescriptor = { media, ...pointer, content_type: contentType };
  if (thumbnail !== undefined) {
    if (thumbnail.length > MAX_THUMBNAIL_BYTES) throw new E2eeError('too_large', 'thumbnail is too large');
    descriptor.thumbnail = toBase64(thumbnail);
  }
  return descriptor;
}

/** Checks a descriptor read from a decrypted message (its sender may still be buggy or hostile). */
export function parseAttachmentDescriptor(value: unknown): AttachmentDescriptor {
  const r = asRecord(value, 'attachment');
  const descriptor: AttachmentDescriptor = {
    media: stringField(r, 'media', 'attachment'),
    key: stringField(r, 'key', 'attachment'),
    nonce: stringField(r, 'nonce', 'attachment'),
    digest: stringField(r, 'digest', 'attachment'),
    size: intField(r, 'size', 'attachment'),
    content_type: stringField(r, 'content_type', 'attachment'),
  };
  fromBase64(descriptor.key, 32, 'attachment.key');
  fromBase64(descriptor.nonce, NONCE_BYTES, 'attachment.nonce');
  fromBase64(descriptor.digest, 32, 'attachment.digest');
  if (r.thumbnail !== undefined) {
    descriptor.thumbnail = stringField(r, 'thumbnail', 'attachment');
    fromBase64(descriptor.thumbnail, undefined, 'attachment.thumbnail');
  }
  return descriptor;
}
