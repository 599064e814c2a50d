/**
 * X3DH key agreement (Signal's specification, revision 1): one device starts a session with
 * another that may be offline, from the bundle `keys_claim` returned. DH1 = DH(IKa, SPKb),
 * DH2 = DH(EKa, IKb), DH3 = DH(EKa, SPKb), DH4 = DH(EKa, OPKb) when a one-time prekey was handed
 * out; SK = HKDF-SHA256(F ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4]) with F = 32 0xFF bytes; AD = IKa ‖ IKb.
 *
 * @module
 */

import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, fromBase64, randomBytes, toBase64, utf8, wipe } from './bytes.js';
import { E2eeError } from './errors.js';
import {
  type DeviceIdentity,
  KEY_BYTES,
  type PrekeyBundle,
  parseIdentityKey,
  verifySignedPrekey,
} from './identity.js';

/** X3DH's F: 32 0xFF bytes, so the KDF input never starts like an X25519 output (the spec's domain separation). */
const F = new Uint8Array(32).fill(0xff);
/** HKDF salt: the spec asks for a hash-length string of zero bytes. */
const SALT = new Uint8Array(32);
/** HKDF info: the application's name for this use of X3DH. */
const INFO = utf8('Parley E2EE v1 X3DH');

/** What the initiator sends with its first messages so that the responder can derive the same key. */
export interface X3dhHeader {
  /** The initiator's published identity key. */
  identity_key: string;
  /** The initiator's ephemeral X25519 public key (base64). */
  ephemeral_key: string;
  /** Which of the responder's signed prekeys was used. */
  signed_prekey_id: number;
  /** Which one-time prekey was used, when `keys_claim` handed one out. */
  one_time_prekey_id?: number;
}

/** The outcome of X3DH on either side. */
export interface X3dhResult {
  /** SK: 32 bytes both sides share; the caller wipes it once its chains are derived. */
  sharedKey: Uint8Array;
  /** AD = IKa ‖ IKb (published identity keys, initiator first): bound into every message. */
  associatedData: Uint8Array;
}

/** The HKDF step shared by both sides; wipes the DH outputs it was given. */
function deriveSharedKey(dhOutputs: Uint8Array[]): Uint8Array {
  const ikm = concat(F, ...dhOutputs);
  const sharedKey = hkdf(sha256, ikm, SALT, INFO, 32);
  wipe(ikm, ...dhOutputs);
  return sharedKey;
}

/**
 * Starts a session with the device of `bundle`. Refuses (`bad_signature`) a signed prekey that
 * the bundle's identity key did not sign: the server must not be able to substitute its own.
 */
export function initiateX3dh(
  identity: DeviceIdentity,
  bundle: PrekeyBundle,
): X3dhResult & { header: X3dhHeader } {
  if (!verifySignedPrekey(bundle.identity_key, bundle.signed_prekey)) {
    throw new E2eeError(
      'bad_signature',
      `signed prekey of device ${bundle.device} is not signed by its identity key`,
    );
  }
  const remote = parseIdentityKey(bundle.identity_key);
  const signedPrekey = fromBase64(bundle.signed_prekey.key, KEY_BYTES, 'signed_prekey.key');
  const oneTime = bundle.one_time_prekey;
  const oneTimeKey = oneTime ? fromBase64(oneTime.key, KEY_BYTES, 'one_time_prekey.key') : undefined;
  const ephemeral = randomBytes(KEY_BYTES);
  const dh = [
    identity.agree(signedPrekey),
    x25519.getSharedSecret(ephemeral, remote.dh),
    x25519.getSharedSecret(ephemeral, signedPrekey),
  ];
  if (oneTimeKey) dh.push(x25519.getSharedSecret(ephemeral, oneTimeKey));
  const header: X3dhHeader = {
    identity_key: identity.identityKey,
    ephemeral_key: toBase64(x25519.getPublicKey(ephemeral)),
    signed_prekey_id: bundle.signed_prekey.key_id,
  };
  if (oneTime) header.one_time_prekey_id = oneTime.key_id;
  wipe(ephemeral);
  const associatedData = concat(identity.identityKeyBytes, fromBase64(bundle.identity_key));
  return { sharedKey: deriveSharedKey(dh), associatedData, header };
}

/**
 * The responder's half, without side effects: the caller consumes the one-time prekey only once
 * the first message authenticates (else anyone could burn prekeys with forged headers). Throws
 * `unknown_prekey` for a prekey this device no longer has (a replayed start, or a stale bundle).
 */
export function deriveResponderSecret(identity: DeviceIdentity, header: X3dhHeader): X3dhResult {
  const remote = parseIdentityKey(header.identity_key);
  const ephemeral = fromBase64(header.ephemeral_key, KEY_BYTES, 'ephemeral_key');
  const dh = [
    identity.agreeSignedPrekey(header.signed_prekey_id, remote.dh),
    identity.agree(ephemeral),
    identity.agreeSignedPrekey(header.signed_prekey_id, ephemeral),
  ];
  if (header.one_time_prekey_id !== undefined) {
    dh.push(identity.agreeOneTimePrekey(header.one_time_prekey_id, ephemeral));
  }
  const associatedData = concat(fromBase64(header.identity_key), identity.identityKeyBytes);
  return { sharedKey: deriveSharedKey(dh), associatedData };
}

/** The responder's half, consuming (deleting) the one-time private key it used. */
export function respondX3dh(identity: DeviceIdentity, header: X3dhHeader): X3dhResult {
  const result = deriveResponderSecret(identity, header);
  if (header.one_time_prekey_id !== undefined) identity.consumeOneTimePrekey(header.one_time_prekey_id);
  return result;
}
