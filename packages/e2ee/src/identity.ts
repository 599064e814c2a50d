/**
 * A device's long-term identity and its prekeys. Each device has an Ed25519 key (signatures:
 * the signed prekey, sender-key messages) and an X25519 key (X3DH). Signal derives both from one
 * key with XEdDSA; two keys published together as one `identity_key` keep each primitive in its
 * standard form, and safety numbers cover both.
 *
 * @module
 */

import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { asRecord, concat, fromBase64, intField, randomBytes, toBase64, utf8, wipe } from './bytes.js';
import { E2eeError } from './errors.js';
import type { Json } from './key-storage.js';

/** Bytes of an Ed25519 or X25519 public or secret key. */
export const KEY_BYTES = 32;

/** Bytes of a published identity key: Ed25519 public key then X25519 public key. */
export const IDENTITY_KEY_BYTES = 2 * KEY_BYTES;

/**
 * Prefix of what a signed prekey's signature covers, so that no other signature made by the
 * identity key (a sender-key message, say) can be passed off as a prekey signature.
 */
const SIGNED_PREKEY_CONTEXT = utf8('parley-e2ee v1 signed prekey\0');

/** A signed prekey as published: `keys_upload.signed_prekey` and `keys_claim` replies. */
export interface SignedPrekey {
  key_id: number;
  key: string;
  signature: string;
}

/** A one-time prekey as published: an element of `keys_upload.one_time_prekeys`. */
export interface OneTimePrekey {
  key_id: number;
  key: string;
}

/** The fields of a `keys_upload` frame. */
export interface KeysUpload {
  identity_key: string;
  signed_prekey: SignedPrekey;
  one_time_prekeys: OneTimePrekey[];
}

/** What `keys_claim` returns for one device of a user. */
export interface PrekeyBundle {
  device: string;
  identity_key: string;
  signed_prekey: SignedPrekey;
  one_time_prekey?: OneTimePrekey;
}

/** The two public keys inside a published identity key. */
export interface IdentityPublicKeys {
  signing: Uint8Array;
  dh: Uint8Array;
}

/** A private X25519 prekey held by this device. */
interface PrekeySecret {
  keyId: number;
  secret: Uint8Array;
  publicKey: Uint8Array;
  signature?: Uint8Array;
}

/** Splits a published identity key into its Ed25519 and X25519 public keys (`bad_input` if malformed). */
export function parseIdentityKey(identityKey: string): IdentityPublicKeys {
  const bytes = fromBase64(identityKey, IDENTITY_KEY_BYTES, 'identity_key');
  return { signing: bytes.slice(0, KEY_BYTES), dh: bytes.slice(KEY_BYTES) };
}

/** What the identity key signs to vouch for a signed prekey. */
function signedPrekeyMessage(prekeyPublic: Uint8Array): Uint8Array {
  return concat(SIGNED_PREKEY_CONTEXT, prekeyPublic);
}

/** Whether `prekey`'s signature is valid under `identityKey` (false for anything malformed). */
export function verifySignedPrekey(identityKey: string, prekey: SignedPrekey): boolean {
  try {
    const { signing } = parseIdentityKey(identityKey);
    const key = fromBase64(prekey.key, KEY_BYTES, 'signed_prekey.key');
    const signature = fromBase64(prekey.signature, 64, 'signed_prekey.signature');
    return ed25519.verify(signature, signedPrekeyMessage(key), signing);
  } catch {
    return false;
  }
}

/** A fresh X25519 key pair. */
function x25519Pair(keyId: number): PrekeySecret {
  const secret = randomBytes(KEY_BYTES);
  return { keyId, secret, publicKey: x25519.getPublicKey(secret) };
}

/**
 * One device's identity and prekeys. Mutable (prekeys are generated, rotated and consumed):
 * persist {@link DeviceIdentity.toJSON} after every change.
 */
export class DeviceIdentity {
  readonly #signingSecret: Uint8Array;
  readonly #dhSecret: Uint8Array;
  /** This device's Ed25519 public key. */
  readonly signingPublicKey: Uint8Array;
  /** This device's X25519 public key. */
  readonly dhPublicKey: Uint8Array;
  #signedPrekey: PrekeySecret;
  // The previous signed prekey stays usable for a while: X3DH starts made from a bundle claimed
  // before a rotation are still in flight.
  #previousSignedPrekey: PrekeySecret | undefined;
  readonly #oneTimePrekeys = new Map<number, PrekeySecret>();
  #nextOneTimeId: number;

  private constructor(
    signingSecret: Uint8Array,
    dhSecret: Uint8Array,
    signedPrekey: PrekeySecret,
    nextId: number,
  ) {
    this.#signingSecret = signingSecret;
    this.#dhSecret = dhSecret;
    this.signingPublicKey = ed25519.getPublicKey(signingSecret);
    this.dhPublicKey = x25519.getPublicKey(dhSecret);
    this.#signedPrekey = signedPrekey;
    this.#nextOneTimeId = nextId;
  }

  /** A new identity with a signed prekey (id 1) and no one-time prekeys yet. */
  static generate(): DeviceIdentity {
    const identity = new DeviceIdentity(randomBytes(KEY_BYTES), randomBytes(KEY_BYTES), x25519Pair(1), 1);
    identity.#signedPrekey = identity.#sign(identity.#signedPrekey);
    return identity;
  }

  #sign(prekey: PrekeySecret): PrekeySecret {
    return { ...prekey, signature: this.sign(signedPrekeyMessage(prekey.publicKey)) };
  }

  /** The published identity key: base64 of Ed25519 public key ‖ X25519 public key. */
  get identityKey(): string {
    return toBase64(this.identityKeyBytes);
  }

  /** The published identity key as bytes (X3DH's associated data, safety numbers). */
  get identityKeyBytes(): Uint8Array {
    return concat(this.signingPublicKey, this.dhPublicKey);
  }

  /** An Ed25519 signature by this device's identity over `message`. */
  sign(message: Uint8Array): Uint8Array {
    return ed25519.sign(message, this.#signingSecret);
  }

  /** X25519 of this device's identity key with `publicKey` (X3DH's DH1 or DH2). */
  agree(publicKey: Uint8Array): Uint8Array {
    return x25519.getSharedSecret(this.#dhSecret, publicKey);
  }

  /** The current signed prekey, as published. */
  get signedPrekey(): SignedPrekey {
    return publishSigned(this.#signedPrekey);
  }

  /** X25519 of the signed prekey `keyId` (current or previous) with `publicKey`; `unknown_prekey` if neither. */
  agreeSignedPrekey(keyId: number, publicKey: Uint8Array): Uint8Array {
    const prekey = [this.#signedPrekey, this.#previousSignedPrekey].find((p) => p?.keyId === keyId);
    if (prekey === undefined) throw new E2eeError('unknown_prekey', `no signed prekey ${keyId}`);
    return x25519.getSharedSecret(prekey.secret, publicKey);
  }

  /** Replaces the signed prekey (the previous one is kept for in-flight starts, the one before is wiped). */
  rotateSignedPrekey(): SignedPrekey {
    if (this.#previousSignedPrekey) wipe(this.#previousSignedPrekey.secret);
    this.#previousSignedPrekey = this.#signedPrekey;
    this.#signedPrekey = this.#sign(x25519Pair(this.#signedPrekey.keyId + 1));
    return this.signedPrekey;
  }

  /** Generates `count` one-time prekeys with increasing ids and returns their public halves. */
  generateOneTimePrekeys(count: number): OneTimePrekey[] {
    const created: OneTimePrekey[] = [];
    for (let i = 0; i < count; i++) {
      const prekey = x25519Pair(this.#nextOneTimeId++);
      this.#oneTimePrekeys.set(prekey.keyId, prekey);
      created.push({ key_id: prekey.keyId, key: toBase64(prekey.publicKey) });
    }
    return created;
  }

  /** How many one-time private keys this device still holds. */
  get oneTimePrekeyCount(): number {
    return this.#oneTimePrekeys.size;
  }

  /** Whether the one-time prekey `keyId` is still held (not yet used). */
  hasOneTimePrekey(keyId: number): boolean {
    return this.#oneTimePrekeys.has(keyId);
  }

  /** X25519 of the one-time prekey `keyId` with `publicKey`; `unknown_prekey` if used or never made. */
  agreeOneTimePrekey(keyId: number, publicKey: Uint8Array): Uint8Array {
    const prekey = this.#oneTimePrekeys.get(keyId);
    if (prekey === undefined) throw new E2eeError('unknown_prekey', `no one-time prekey ${keyId}`);
    return x25519.getSharedSecret(prekey.secret, publicKey);
  }

  /** Deletes (and wipes) a one-time private key once a session used it: it must never serve twice. */
  consumeOneTimePrekey(keyId: number): void {
    wipe(this.#oneTimePrekeys.get(keyId)?.secret);
    this.#oneTimePrekeys.delete(keyId);
  }

  /** The identity key and signed prekey, as another device needs them (without one-time prekeys). */
  publicBundle(): { identity_key: string; signed_prekey: SignedPrekey } {
    return { identity_key: this.identityKey, signed_prekey: this.signedPrekey };
  }

  /** The fields of a `keys_upload` frame carrying `oneTimePrekeys` (at most 200 per frame). */
  keysUpload(oneTimePrekeys: OneTimePrekey[] = []): KeysUpload {
    return { ...this.publicBundle(), one_time_prekeys: oneTimePrekeys };
  }

  /** Everything needed to restore this identity, private keys included: store it as a secret. */
  toJSON(): Json {
    return {
      v: 1,
      signing: toBase64(this.#signingSecret),
      dh: toBase64(this.#dhSecret),
      signed_prekey: prekeyToJson(this.#signedPrekey),
      previous_signed_prekey: this.#previousSignedPrekey ? prekeyToJson(this.#previousSignedPrekey) : null,
      one_time_prekeys: [...this.#oneTimePrekeys.values()].map(prekeyToJson),
      next_one_time_id: this.#nextOneTimeId,
    };
  }

  /** Restores an identity saved with {@link DeviceIdentity.toJSON} (`bad_input` if malformed). */
  static fromJSON(json: unknown): DeviceIdentity {
    const r = asRecord(json, 'identity');
    const identity = new DeviceIdentity(
      fromBase64(r.signing, KEY_BYTES, 'identity.signing'),
      fromBase64(r.dh, KEY_BYTES, 'identity.dh'),
      prekeyFromJson(r.signed_prekey),
      intField(r, 'next_one_time_id', 'identity'),
    );
    if (r.previous_signed_prekey !== null)
      identity.#previousSignedPrekey = prekeyFromJson(r.previous_signed_prekey);
    if (!Array.isArray(r.one_time_prekeys)) throw new E2eeError('bad_input', 'identity.one_time_prekeys');
    for (const item of r.one_time_prekeys) {
      const prekey = prekeyFromJson(item);
      identity.#oneTimePrekeys.set(prekey.keyId, prekey);
    }
    return identity;
  }
}

function publishSigned(prekey: PrekeySecret): SignedPrekey {
  return { key_id: prekey.keyId, key: toBase64(prekey.publicKey), signature: toBase64(prekey.signature!) };
}

function prekeyToJson(prekey: PrekeySecret): Json {
  const json: { [key: string]: Json } = { key_id: prekey.keyId, secret: toBase64(prekey.secret) };
  if (prekey.signature) json.signature = toBase64(prekey.signature);
  return json;
}

function prekeyFromJson(json: unknown): PrekeySecret {
  const r = asRecord(json, 'prekey');
  const secret = fromBase64(r.secret, KEY_BYTES, 'prekey.secret');
  const prekey: PrekeySecret = {
    keyId: intField(r, 'key_id', 'prekey'),
    secret,
    publicKey: x25519.getPublicKey(secret),
  };
  if (r.signature !== undefined) prekey.signature = fromBase64(r.signature, 64, 'prekey.signature');
  return prekey;
}
