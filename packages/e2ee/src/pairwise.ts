/**
 * Pairwise sessions between two devices, for `to_device` payloads (sender-key distributions and
 * key requests). A session starts with X3DH and then runs one sending and one receiving KDF chain
 * (no Diffie-Hellman ratchet step): every message has its own key, deleted once used, so reading
 * a device's state later does not expose what it already received. See docs/e2ee.md for what this
 * gives and what it does not (no post-compromise security).
 *
 * Wire form (`to_device.body`): base64 of compact JSON `{v, s, n, nc, c, h?}`: version, session id,
 * message number, nonce, ciphertext, and the X3DH header on the initiator's messages until the
 * responder has replied.
 *
 * @module
 */

import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { NONCE_BYTES, open, seal } from './aead.js';
import {
  asRecord,
  concat,
  fromBase64,
  fromUtf8,
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
import type { DeviceIdentity, PrekeyBundle } from './identity.js';
import type { Json } from './key-storage.js';
import { deriveResponderSecret, initiateX3dh, type X3dhHeader } from './x3dh.js';

/** Version of the pairwise envelope. */
const VERSION = 1;
const CHAINS_INFO = utf8('Parley E2EE v1 pairwise chains');
const MESSAGE_INFO = 'Parley E2EE v1 pairwise message';
/** Sessions kept per peer device: enough for two devices that started sessions with each other at once. */
const MAX_SESSIONS = 4;
/** X3DH starts remembered per peer device, to refuse a replayed start whose session was evicted. */
const MAX_REMEMBERED_STARTS = 64;

/** A pairwise message as carried (decoded from base64 JSON). */
export interface PairwiseEnvelope {
  v: 1;
  /** Session id: names the X3DH run (a hash of its ephemeral key). */
  s: string;
  /** Message number in the sender's chain. */
  n: number;
  /** AES-GCM nonce (base64). */
  nc: string;
  /** Ciphertext with tag (base64). */
  c: string;
  /** The X3DH header, on the initiator's messages until the responder replies. */
  h?: X3dhHeader;
}

/** The session id of an X3DH run: public, short, and the same on both sides. */
function sessionId(ephemeralKey: string): string {
  return toBase64(sha256(utf8(`parley-e2ee session ${ephemeralKey}`)).subarray(0, 12));
}

/** The two chain keys of a session from X3DH's SK: initiator→responder, then responder→initiator. */
function deriveChainKeys(sharedKey: Uint8Array): [Uint8Array, Uint8Array] {
  const both = hkdf(sha256, sharedKey, undefined, CHAINS_INFO, 64);
  const keys: [Uint8Array, Uint8Array] = [both.slice(0, 32), both.slice(32)];
  wipe(both, sharedKey);
  return keys;
}

/** The bytes authenticated with a message: the X3DH AD and every envelope field but the ciphertext. */
function envelopeAad(associatedData: Uint8Array, e: Omit<PairwiseEnvelope, 'c'>): Uint8Array {
  const h = e.h
    ? [e.h.identity_key, e.h.ephemeral_key, e.h.signed_prekey_id, e.h.one_time_prekey_id ?? null]
    : null;
  return concat(associatedData, utf8(JSON.stringify([e.v, e.s, e.n, e.nc, h])));
}

/** Encodes an envelope for `to_device.body`. */
export function encodePairwiseEnvelope(envelope: PairwiseEnvelope): string {
  return toBase64(utf8(JSON.stringify(envelope)));
}

/** Decodes and checks a `to_device.body` (untrusted); throws `bad_input` if it is not a pairwise envelope. */
export function decodePairwiseEnvelope(body: string): PairwiseEnvelope {
  const r = asRecord(parseJson(fromUtf8(fromBase64(body, undefined, 'to_device body'))), 'envelope');
  if (r.v !== VERSION) throw new E2eeError('bad_input', `envelope version ${String(r.v)} is not supported`);
  const envelope: PairwiseEnvelope = {
    v: VERSION,
    s: stringField(r, 's', 'envelope'),
    n: intField(r, 'n', 'envelope'),
    nc: stringField(r, 'nc', 'envelope'),
    c: stringField(r, 'c', 'envelope'),
  };
  if (r.h !== undefined) envelope.h = decodeHeader(r.h);
  return envelope;
}

function decodeHeader(value: unknown): X3dhHeader {
  const r = asRecord(value, 'envelope.h');
  const header: X3dhHeader = {
    identity_key: stringField(r, 'identity_key', 'envelope.h'),
    ephemeral_key: stringField(r, 'ephemeral_key', 'envelope.h'),
    signed_prekey_id: intField(r, 'signed_prekey_id', 'envelope.h'),
  };
  if (r.one_time_prekey_id !== undefined)
    header.one_time_prekey_id = intField(r, 'one_time_prekey_id', 'envelope.h');
  return header;
}

/** One X3DH-started session with one peer device. */
export class PairwiseSession {
  /** The session id (see {@link PairwiseEnvelope.s}). */
  readonly id: string;
  /** The peer device's published identity key, as X3DH authenticated it. */
  readonly remoteIdentityKey: string;
  readonly #associatedData: Uint8Array;
  readonly #sending: SendingChain;
  readonly #receiving: ReceivingChain;
  // The initiator repeats the X3DH header until the peer replies: until then the peer may not
  // have the session (the first message may be lost or arrive after later ones).
  #pendingHeader: X3dhHeader | undefined;

  private constructor(
    id: string,
    remoteIdentityKey: string,
    associatedData: Uint8Array,
    sending: SendingChain,
    receiving: ReceivingChain,
    pendingHeader: X3dhHeader | undefined,
  ) {
    this.id = id;
    this.remoteIdentityKey = remoteIdentityKey;
    this.#associatedData = associatedData;
    this.#sending = sending;
    this.#receiving = receiving;
    this.#pendingHeader = pendingHeader;
  }

  /** Starts a session with the device of `bundle` (X3DH as initiator; `bad_signature` on a forged prekey). */
  static initiate(identity: DeviceIdentity, bundle: PrekeyBundle): PairwiseSession {
    const { sharedKey, associatedData, header } = initiateX3dh(identity, bundle);
    const [toResponder, toInitiator] = deriveChainKeys(sharedKey);
    return new PairwiseSession(
      sessionId(header.ephemeral_key),
      bundle.identity_key,
      associatedData,
      new SendingChain(toResponder),
      new ReceivingChain(toInitiator),
      header,
    );
  }

  /**
   * Accepts a session started by a peer, from its first message to arrive (which carries the
   * X3DH header), and decrypts that message. The one-time prekey is consumed only if it
   * authenticates; persist `identity` afterwards.
   */
  static respond(
    identity: DeviceIdentity,
    envelope: PairwiseEnvelope,
  ): { session: PairwiseSession; plaintext: Uint8Array } {
    const header = envelope.h;
    if (header === undefined) throw new E2eeError('no_session', `no session ${envelope.s}`);
    if (sessionId(header.ephemeral_key) !== envelope.s)
      throw new E2eeError('bad_input', 'session id does not match header');
    const { sharedKey, associatedData } = deriveResponderSecret(identity, header);
    const [toResponder, toInitiator] = deriveChainKeys(sharedKey);
    const session = new PairwiseSession(
      envelope.s,
      header.identity_key,
      associatedData,
      new SendingChain(toInitiator),
      new ReceivingChain(toResponder),
      undefined,
    );
    const plaintext = session.decrypt(envelope);
    if (header.one_time_prekey_id !== undefined) identity.consumeOneTimePrekey(header.one_time_prekey_id);
    return { session, plaintext };
  }

  /** Encrypts the next message of this session. */
  encrypt(plaintext: Uint8Array): PairwiseEnvelope {
    const { index, seed } = this.#sending.next();
    const key = messageKey(seed, MESSAGE_INFO);
    const fields: Omit<PairwiseEnvelope, 'c'> = {
      v: VERSION,
      s: this.id,
      n: index,
      nc: toBase64(randomBytes(NONCE_BYTES)),
    };
    if (this.#pendingHeader) fields.h = this.#pendingHeader;
    const ciphertext = seal(key, fromBase64(fields.nc), plaintext, envelopeAad(this.#associatedData, fields));
    wipe(seed, key);
    return { ...fields, c: toBase64(ciphertext) };
  }

  /** Decrypts a message of this session; `replay` for a message already read, `decrypt_failed` if forged. */
  decrypt(envelope: PairwiseEnvelope): Uint8Array {
    const prepared = this.#receiving.prepare(envelope.n);
    const key = messageKey(prepared.seed, MESSAGE_INFO);
    try {
      const nonce = fromBase64(envelope.nc, NONCE_BYTES, 'envelope.nc');
      const plaintext = open(key, nonce, fromBase64(envelope.c), envelopeAad(this.#associatedData, envelope));
      prepared.commit();
      // The peer has the session once it sends on it: stop repeating the header.
      this.#pendingHeader = undefined;
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
      id: this.id,
      remote: this.remoteIdentityKey,
      ad: toBase64(this.#associatedData),
      send: this.#sending.toJSON(),
      recv: this.#receiving.toJSON(),
      header: (this.#pendingHeader ?? null) as Json,
    };
  }

  static fromJSON(json: unknown): PairwiseSession {
    const r = asRecord(json, 'session');
    return new PairwiseSession(
      stringField(r, 'id', 'session'),
      stringField(r, 'remote', 'session'),
      fromBase64(r.ad, undefined, 'session.ad'),
      SendingChain.fromJSON(r.send),
      ReceivingChain.fromJSON(r.recv),
      r.header === null ? undefined : decodeHeader(r.header),
    );
  }
}

/** The result of {@link PairwiseChannel.decrypt}. */
export interface PairwiseDecrypted {
  plaintext: Uint8Array;
  /** The sending device's identity key, as its session authenticated it. */
  remoteIdentityKey: string;
  /** Whether this message started a new session (the peer device may be new, or reinstalled). */
  newSession: boolean;
}

/**
 * All sessions with one peer device. Two devices may start sessions with each other at the
 * same time; both are kept and a message names its session, so neither side loses messages.
 * Replies go on the session the peer used last.
 */
export class PairwiseChannel {
  readonly #sessions = new Map<string, PairwiseSession>();
  #active: string | undefined;
  readonly #starts: string[] = [];

  /** Whether there is a session to encrypt with. */
  get hasSession(): boolean {
    return this.#active !== undefined;
  }

  /** The peer's identity key on the session in use, if any. */
  get remoteIdentityKey(): string | undefined {
    return this.#active === undefined ? undefined : this.#sessions.get(this.#active)?.remoteIdentityKey;
  }

  /** Adds a session this device started and makes it the one used for sending. */
  addInitiated(session: PairwiseSession): void {
    this.#add(session);
  }

  #add(session: PairwiseSession): void {
    this.#sessions.delete(session.id);
    this.#sessions.set(session.id, session);
    this.#active = session.id;
    for (const id of this.#sessions.keys()) {
      if (this.#sessions.size <= MAX_SESSIONS) break;
      this.#sessions.delete(id);
    }
  }

  /** Encrypts `plaintext` for the peer as a `to_device` body; `no_session` if there is none yet. */
  encrypt(plaintext: Uint8Array): string {
    const session = this.#active === undefined ? undefined : this.#sessions.get(this.#active);
    if (session === undefined) throw new E2eeError('no_session', 'no pairwise session with this device');
    return encodePairwiseEnvelope(session.encrypt(plaintext));
  }

  /** Decrypts a `to_device` body from the peer, accepting a new session when it carries an X3DH header. */
  decrypt(identity: DeviceIdentity, body: string): PairwiseDecrypted {
    const envelope = decodePairwiseEnvelope(body);
    const existing = this.#sessions.get(envelope.s);
    if (existing) {
      const plaintext = existing.decrypt(envelope);
      this.#active = existing.id;
      return { plaintext, remoteIdentityKey: existing.remoteIdentityKey, newSession: false };
    }
    if (this.#starts.includes(envelope.s))
      throw new E2eeError('replay', `session ${envelope.s} was already started`);
    const { session, plaintext } = PairwiseSession.respond(identity, envelope);
    this.#starts.push(session.id);
    if (this.#starts.length > MAX_REMEMBERED_STARTS) this.#starts.shift();
    this.#add(session);
    return { plaintext, remoteIdentityKey: session.remoteIdentityKey, newSession: true };
  }

  toJSON(): Json {
    return {
      active: this.#active ?? null,
      sessions: [...this.#sessions.values()].map((s) => s.toJSON()),
      starts: [...this.#starts],
    };
  }

  static fromJSON(json: unknown): PairwiseChannel {
    const r = asRecord(json, 'channel');
    if (!Array.isArray(r.sessions) || !Array.isArray(r.starts)) throw new E2eeError('bad_input', 'channel');
    const channel = new PairwiseChannel();
    for (const s of r.sessions) {
      const session = PairwiseSession.fromJSON(s);
      channel.#sessions.set(session.id, session);
    }
    for (const id of r.starts) if (typeof id === 'string') channel.#starts.push(id);
    channel.#active = typeof r.active === 'string' && channel.#sessions.has(r.active) ? r.active : undefined;
    return channel;
  }
}
