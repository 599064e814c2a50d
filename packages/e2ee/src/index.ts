/**
 * `@parley/e2ee`: end-to-end encryption for Parley clients, in browsers and Node.js, on audited
 * primitives (@noble/curves, @noble/hashes, @noble/ciphers). X3DH-started pairwise sessions with
 * per-message keys carry sender keys over `to_device`; conversation messages are encrypted once
 * with the sender's key; attachments get their own keys; safety numbers let users check
 * identities. {@link SecureMessenger} ties it together over a Parley client. See the package
 * README and docs/e2ee.md.
 *
 * @module
 */

export {
  type AttachmentDescriptor,
  type AttachmentPointer,
  attachmentDescriptor,
  decryptAttachment,
  encryptAttachment,
  MAX_THUMBNAIL_BYTES,
  parseAttachmentDescriptor,
} from './attachments.js';
export { E2eeError, type E2eeErrorCode } from './errors.js';
export {
  DeviceIdentity,
  IDENTITY_KEY_BYTES,
  type IdentityPublicKeys,
  type KeysUpload,
  type OneTimePrekey,
  type PrekeyBundle,
  parseIdentityKey,
  type SignedPrekey,
  verifySignedPrekey,
} from './identity.js';
export { type Json, type KeyStorage, MemoryKeyStorage } from './key-storage.js';
export {
  decodePairwiseEnvelope,
  encodePairwiseEnvelope,
  PairwiseChannel,
  type PairwiseDecrypted,
  type PairwiseEnvelope,
  PairwiseSession,
} from './pairwise.js';
export { type ParleyClientLike, parleyClientTransport } from './parley-client.js';
export { fingerprintDigits, SAFETY_NUMBER_ITERATIONS, safetyNumber } from './safety-number.js';
export {
  type DecryptedMessage,
  type IncomingMessage,
  MAX_BODY_BYTES,
  SecureMessenger,
  type SecureMessengerOptions,
} from './secure-client.js';
export {
  decodeSenderKeyEnvelope,
  encodeSenderKeyEnvelope,
  parseSenderKeyDistribution,
  SenderKey,
  type SenderKeyDistribution,
  type SenderKeyEnvelope,
  SenderKeyRing,
} from './sender-keys.js';
export type { E2eeTransport, ToDeviceEvent } from './transport.js';
export {
  deriveResponderSecret,
  initiateX3dh,
  respondX3dh,
  type X3dhHeader,
  type X3dhResult,
} from './x3dh.js';
