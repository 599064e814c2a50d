/**
 * Sender keys (Signal's group messaging construction) for the messages of a conversation: each
 * sending device has, per conversation, a chain key, an iteration and an Ed25519 signing key. It
 * encrypts a message once for every member; the chain key (at its current iteration) and the
 * signing public key reach each member device once, in a pairwise session, as a
 * {@link SenderKeyDistribution}. Receivers derive forward from there; the signature proves which
 * device sent the message, since every member can derive the message keys.
 *
 * Wire form (`send.body`): compact JSON `{v, d, k, i, nc, c, sg}`: version, sender device id,
 * key id, iteration, nonce, ciphertext, signature. The conversation and the sender user are not
 * carried (the server names both) but are signed, so a message cannot be replayed into another
 * conversation or passed off as another user's.
 *
 * @module
 */

import { ed25519 } from '@noble/curves/ed25519.js';
import { NONCE_BYTES, open, seal } from './aead.js';
import {
  asRecord,
  concat,
  fromBase64,
  intField,
  parseJson,
  randomBytes,
  stringField,
  toBase64,
  utf8,
  wipe,
} from './bytes.js';
import { messageKey, ReceivingChain, SendingChain } from './chain.js';
import { E2eeError } from './errors.js';
import { KEY_BYTES } from './identity.js';
import type { Json } from './key-storage.js';

/** Version of the sender-key envelope and distribution. */
const VERSION = 1;
const MESSAGE_INFO = 'Parley E2EE v1 sender key message';
const SIGNATURE_CONTEXT = utf8('parley-e2ee v1 sender key message\0');
/** Key ids kept per sender device: older ones go (a rotated-away key serves only messages in flight). */
const MAX_KEYS_PER_DEVICE = 4;

/** A conversation message as carried in `send.body` (decoded from JSON). */
export interface SenderKeyEnvelope {
  v: 1;
  /** Sender device id (the server's message event names only the user for sure). */
  d: string;
  /** Key id: which of the device's sender keys (changes at each rotation). */
  k: number;
  /** Iteration of the sender's chain. */
  i: number;
  /** AES-GCM nonce (base64). */
  nc: string;
  /** Ciphertext with tag (base64). */
  c: string;
  /** Ed25519 signature (base64) over the conversation, sender and every field above. */
  sg: string;
}

/** What a member device needs to read a sender's messages from now on; travels pairwise-encrypted. */
export interface SenderKeyDistribution {
  conv: string;
  key_id: number;
  /** The chain's iteration at which `chain_key` stands: earlier messages stay unreadable. */
  iteration: number;
  chain_key: string;
  signing_key: string;
}

/** Who sent a message and where: bound into its signature. */
interface MessageContext {
  conv: string;
  user: string;
}

/** The bytes signed and authenticated: everything about the message except its ciphertext. */
function headerBytes(ctx: MessageContext, e: Omit<SenderKeyEnvelope, 'c' | 'sg'>): Uint8Array {
  return utf8(JSON.stringify([e.v, ctx.conv, ctx.user, e.d, e.k, e.i, e.nc]));
}

function signedBytes(header: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return concat(SIGNATURE_CONTEXT, header, ciphertext);
}

/** A key id for a new sender key: random, so a device that lost its state does not reuse one. */
function newKeyId(previous?: number): number {
  for (;;) {
    const [id] = crypto.getRandomValues(new Uint32Array(1));
    const keyId = id! >>> 1;
    if (keyId !== previous) return keyId;
  }
}

/** Encodes an envelope as `send.body`. */
export function encodeSenderKeyEnvelope(envelope: SenderKeyEnvelope): string {
  return JSON.stringify(envelope);
}

/** Decodes and checks a `send.body` (untrusted); throws `bad_input` if it is not a sender-key envelope. */
export function decodeSenderKeyEnvelope(body: string): SenderKeyEnvelope {
  const r = asRecord(parseJson(body), 'message envelope');
  if (r.v !== VERSION)
    throw new E2eeError('bad_input', `message envelope version ${String(r.v)} is not supported`);
  return {
    v: VERSION,
    d: stringField(r, 'd', 'message envelope'),
    k: intField(r, 'k', 'message envelope'),
    i: intField(r, 'i', 'message envelope'),
    nc: stringField(r, 'nc', 'message envelope'),
    c: stringField(r, 'c', 'message envelope'),
    sg: stringField(r, 'sg', 'message envelope'),
  };
}

/** Checks an untrusted distribution (from a decrypted `to_device` payload). */
export function parseSenderKeyDistribution(value: unknown): SenderKeyDistribution {
  const r = asRecord(value, 'sender key distribution');
  const distribution: SenderKeyDistribution = {
    conv: stringField(r, 'conv', 'sender key distribution'),
    key_id: intField(r, 'key_id', 'sender key distribution'),
    iteration: intField(r, 'iteration', 'sender key distribution'),
    chain_key: stringField(r, 'chain_key', 'sender key distribution'),
    signing_key: stringField(r, 'signing_key', 'sender key distribution'),
  };
  fromBase64(distribution.chain_key, 32, 'chain_key');
  fromBase64(distribution.signing_key, KEY_BYTES, 'signing_key');
  return distribution;
}

/** This device's sender key for one conversation: encrypts and signs its messages there. */
export class SenderKey {
  readonly conv: string;
  /** This device's user and id, signed into every message. */
  readonly user: string;
  readonly device: string;
  readonly keyId: number;
  readonly #chain: SendingChain;
  readonly #signingSecret: Uint8Array;

  private constructor(
    conv: string,
    user: string,
    device: string,
    keyId: number,
    chain: SendingChain,
    signingSecret: Uint8Array,
  ) {
    this.conv = conv;
    this.user = user;
    this.device = device;
    this.keyId = keyId;
    this.#chain = chain;
    this.#signingSecret = signingSecret;
  }

  /** A new sender key for `conv` with a fresh chain, signing key and key id. */
  static create(conv: string, user: string, device: string, previousKeyId?: number): SenderKey {
    return new SenderKey(
      conv,
      user,
      device,
      newKeyId(previousKeyId),
      new SendingChain(randomBytes(32)),
      randomBytes(32),
    );
  }

  /**
   * A replacement with a new key id, chain and signing key, for when a member leaves or a device
   * is revoked: distributed only to the remaining devices, it locks the removed ones out. This
   * key's secrets are wiped.
   */
  rotate(): SenderKey {
    const next = SenderKey.create(this.conv, this.user, this.device, this.keyId);
    this.#wipe();
    return next;
  }

  #wipe(): void {
    wipe(this.#signingSecret);
    this.#chain.wipe();
  }

  /** The chain's next iteration. */
  get iteration(): number {
    return this.#chain.index;
  }

  /** The distribution for a member device: readable from the current iteration on. */
  distribution(): SenderKeyDistribution {
    const chainKey = this.#chain.key;
    const distribution = {
      conv: this.conv,
      key_id: this.keyId,
      iteration: this.#chain.index,
      chain_key: toBase64(chainKey),
      signing_key: toBase64(ed25519.getPublicKey(this.#signingSecret)),
    };
    wipe(chainKey);
    return distribution;
  }

  /** Encrypts and signs a message for every member (one envelope for all). */
  encrypt(plaintext: Uint8Array): SenderKeyEnvelope {
    const { index, seed } = this.#chain.next();
    const key = messageKey(seed, MESSAGE_INFO);
    const fields = {
      v: VERSION,
      d: this.device,
      k: this.keyId,
      i: index,
      nc: toBase64(randomBytes(NONCE_BYTES)),
    } as const;
    const header = headerBytes(this, fields);
    const ciphertext = seal(key, fromBase64(fields.nc), plaintext, header);
    const signature = ed25519.sign(signedBytes(header, ciphertext), this.#signingSecret);
    wipe(seed, key);
    return { ...fields, c: toBase64(ciphertext), sg: toBase64(signature) };
  }

  toJSON(): Json {
    return {
      conv: this.conv,
      user: this.user,
      device: this.device,
      key_id: this.keyId,
      chain: this.#chain.toJSON(),
      signing: toBase64(this.#signingSecret),
    };
  }

  static fromJSON(json: unknown): SenderKey {
    const r = asRecord(json, 'sender key');
    return new SenderKey(
      stringField(r, 'conv', 'sender key'),
      stringField(r, 'user', 'sender key'),
      stringField(r, 'device', 'sender key'),
      intField(r, 'key_id', 'sender key'),
      SendingChain.fromJSON(r.chain),
      fromBase64(r.signing, 32, 'sender key.signing'),
    );
  }
}

/** A member device's copy of another device's sender key: verifies and decrypts its messages. */
class ReceivedSenderKey {
  readonly keyId: number;
  // The iteration the distribution started at: an earlier message was never readable here, which
  // is not the same failure as a replay.
  readonly #firstIteration: number;
  readonly #chain: ReceivingChain;
  readonly #signingKey: Uint8Array;

  constructor(keyId: number, firstIteration: number, chain: ReceivingChain, signingKey: Uint8Array) {
    this.keyId = keyId;
    this.#firstIteration = firstIteration;
    this.#chain = chain;
    this.#signingKey = signingKey;
  }

  static fromDistribution(d: SenderKeyDistribution): ReceivedSenderKey {
    return new ReceivedSenderKey(
      d.key_id,
      d.iteration,
      new ReceivingChain(fromBase64(d.chain_key, 32), d.iteration),
      fromBase64(d.signing_key, KEY_BYTES),
    );
  }

  /** Verifies the signature first (cheap refusal of forgeries, before any chain work), then decrypts. */
  decrypt(ctx: MessageContext, envelope: SenderKeyEnvelope): Uint8Array {
    const header = headerBytes(ctx, envelope);
    const ciphertext = fromBase64(envelope.c, undefined, 'envelope.c');
    const signature = fromBase64(envelope.sg, 64, 'envelope.sg');
    if (!ed25519.verify(signature, signedBytes(header, ciphertext), this.#signingKey)) {
      throw new E2eeError('bad_signature', 'message signature does not verify');
    }
    if (envelope.i < this.#firstIteration) {
      throw new E2eeError(
        'key_not_shared',
        `message ${envelope.i} predates the sender key this device was given`,
      );
    }
    const prepared = this.#chain.prepare(envelope.i);
    const key = messageKey(prepared.seed, MESSAGE_INFO);
    try {
      const plaintext = open(key, fromBase64(envelope.nc, NONCE_BYTES, 'envelope.nc'), ciphertext, header);
      prepared.commit();
      return plaintext;
    } catch (err) {
      prepared.discard();
      throw err;
    } finally {
      wipe(prepared.seed, key);
    }
  }

  toJSON(): Json {
    return {
      key_id: this.keyId,
      first: this.#firstIteration,
      chain: this.#chain.toJSON(),
      signing_key: toBase64(this.#signingKey),
    };
  }

  static fromJSON(json: unknown): ReceivedSenderKey {
    const r = asRecord(json, 'received sender key');
    return new ReceivedSenderKey(
      intField(r, 'key_id', 'received sender key'),
      intField(r, 'first', 'received sender key'),
      ReceivingChain.fromJSON(r.chain),
      fromBase64(r.signing_key, KEY_BYTES, 'received sender key.signing_key'),
    );
  }
}

/** `user` and `device` as one map key (a user id cannot contain a newline in Parley). */
function deviceKey(user: string, device: string): string {
  return `${user}\n${device}`;
}

/**
 * The sender keys one device holds for one conversation, from every other member device, keyed
 * by (user, device, key id). The user always comes from an authenticated source: the pairwise
 * session a distribution arrived on, or the server's message event (checked by the signature).
 */
export class SenderKeyRing {
  readonly conv: string;
  // Per sender device, newest key last.
  readonly #keys = new Map<string, ReceivedSenderKey[]>();

  constructor(conv: string) {
    this.conv = conv;
  }

  /**
   * Stores a distribution from (`user`, `device`). Returns false when the key id is already held:
   * the copy held may stand at an earlier iteration, and replacing it would lose messages.
   */
  install(user: string, device: string, distribution: SenderKeyDistribution): boolean {
    if (distribution.conv !== this.conv)
      throw new E2eeError('bad_input', 'distribution is for another conversation');
    if (this.has(user, device, distribution.key_id)) return false;
    const list = this.#keys.get(deviceKey(user, device)) ?? [];
    list.push(ReceivedSenderKey.fromDistribution(distribution));
    if (list.length > MAX_KEYS_PER_DEVICE) list.shift();
    this.#keys.set(deviceKey(user, device), list);
    return true;
  }

  /** Whether the key `keyId` of (`user`, `device`) is held. */
  has(user: string, device: string, keyId: number): boolean {
    return this.#keys.get(deviceKey(user, device))?.some((k) => k.keyId === keyId) ?? false;
  }

  /** Forgets every key of `user` (all devices) or of one of its devices. */
  forget(user: string, device?: string): void {
    for (const key of [...this.#keys.keys()]) {
      if (device === undefined ? key.startsWith(`${user}\n`) : key === deviceKey(user, device))
        this.#keys.delete(key);
    }
  }

  /**
   * Decrypts a message that the server says `user` sent to this conversation. Throws
   * `missing_sender_key` when the key was not distributed (yet), `bad_signature` for a forgery,
   * `replay` for a message read before.
   */
  decrypt(user: string, envelope: SenderKeyEnvelope): Uint8Array {
    const key = this.#keys.get(deviceKey(user, envelope.d))?.find((k) => k.keyId === envelope.k);
    if (key === undefined) {
      throw new E2eeError(
        'missing_sender_key',
        `no sender key ${envelope.k} of ${user}/${envelope.d} in ${this.conv}`,
      );
    }
    return key.decrypt({ conv: this.conv, user }, envelope);
  }

  toJSON(): Json {
    return {
      conv: this.conv,
      keys: [...this.#keys].map(([k, list]) => [k, list.map((x) => x.toJSON())]),
    };
  }

  static fromJSON(json: unknown): SenderKeyRing {
    const r = asRecord(json, 'sender key ring');
    const ring = new SenderKeyRing(stringField(r, 'conv', 'sender key ring'));
    if (!Array.isArray(r.keys)) throw new E2eeError('bad_input', 'sender key ring.keys');
    for (const entry of r.keys) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !Array.isArray(entry[1])) {
        throw new E2eeError('bad_input', 'sender key ring.keys');
      }
      ring.#keys.set(entry[0], entry[1].map(ReceivedSenderKey.fromJSON));
    }
    return ring;
  }
}
