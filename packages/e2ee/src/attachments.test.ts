import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  attachmentDescriptor,
  decryptAttachment,
  encryptAttachment,
  MAX_THUMBNAIL_BYTES,
  parseAttachmentDescriptor,
} from './attachments.js';
import { fromBase64, randomBytes, toBase64 } from './bytes.js';

test('an attachment round-trips; the pointer has a fresh key, the ciphertext digest and the size', () => {
  const file = randomBytes(100_000);
  const a = encryptAttachment(file);
  const b = encryptAttachment(file);
  assert.notEqual(a.pointer.key, b.pointer.key);
  assert.equal(fromBase64(a.pointer.key).length, 32);
  assert.equal(a.pointer.size, file.length);
  assert.equal(a.pointer.digest, toBase64(sha256(a.ciphertext)));
  assert.deepEqual(decryptAttachment(a.ciphertext, a.pointer), file);
  const empty = encryptAttachment(new Uint8Array());
  assert.equal(decryptAttachment(empty.ciphertext, empty.pointer).length, 0);
});

test('a changed ciphertext fails the digest check; a wrong key fails authentication', () => {
  const { ciphertext, pointer } = encryptAttachment(randomBytes(1000));
  const changed = ciphertext.slice();
  changed[500]! ^= 1;
  assert.throws(() => decryptAttachment(changed, pointer), { code: 'digest_mismatch' });
  assert.throws(() => decryptAttachment(ciphertext.subarray(1), pointer), { code: 'digest_mismatch' });
  assert.throws(() => decryptAttachment(ciphertext, { ...pointer, key: toBase64(randomBytes(32)) }), {
    code: 'decrypt_failed',
  });
  assert.throws(() => decryptAttachment(ciphertext, { ...pointer, size: 999 }), { code: 'digest_mismatch' });
});

test('the descriptor carries the media id, pointer, content type and an inline thumbnail', () => {
  const { pointer } = encryptAttachment(randomBytes(10));
  const descriptor = attachmentDescriptor('m_1', pointer, 'image/png', Uint8Array.of(7, 8));
  assert.deepEqual(descriptor, { media: 'm_1', ...pointer, content_type: 'image/png', thumbnail: 'Bwg=' });
  assert.deepEqual(parseAttachmentDescriptor(JSON.parse(JSON.stringify(descriptor))), descriptor);
  assert.throws(
    () => attachmentDescriptor('m_1', pointer, 'image/png', new Uint8Array(MAX_THUMBNAIL_BYTES + 1)),
    {
      code: 'too_large',
    },
  );
  assert.throws(() => parseAttachmentDescriptor({ ...descriptor, key: 'short' }), { code: 'bad_input' });
  assert.throws(() => parseAttachmentDescriptor({ ...descriptor, size: -1 }), { code: 'bad_input' });
});
