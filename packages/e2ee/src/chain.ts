/**
 * The symmetric-key ratchet shared by pairwise sessions and sender keys (Signal's KDF chain):
 * each step turns the chain key into a message key seed, HMAC-SHA256(CK, 0x01), and the next chain
 * key, HMAC-SHA256(CK, 0x02); the old chain key is wiped. A device that loses its state after a
 * message was read cannot derive that message's key again: forward secrecy per message.
 *
 * @module
 */

import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { asRecord, fromBase64, intField, toBase64, utf8, wipe } from './bytes.js';
import { E2eeError } from './errors.js';
import type { Json } from './key-storage.js';

/** Most message keys a receiving chain keeps for messages not yet arrived (out-of-order delivery). */
export const MAX_SKIPPED_KEYS = 1000;
/** How far ahead of its chain a message may be: beyond this it is refused, not computed (a cheap DoS otherwise). */
export const MAX_GAP = 1000;

const MESSAGE_SEED = Uint8Array.of(0x01);
const NEXT_CHAIN = Uint8Array.of(0x02);

/** One step of a chain: the seed of message `index`'s key, and the chain key for the next index. */
export function stepChain(chainKey: Uint8Array): { seed: Uint8Array; next: Uint8Array } {
  return { seed: hmac(sha256, chainKey, MESSAGE_SEED), next: hmac(sha256, chainKey, NEXT_CHAIN) };
}

/** An AES-256 key from a message key seed, bound to its use by `info` (pairwise and sender keys differ). */
export function messageKey(seed: Uint8Array, info: string): Uint8Array {
  return hkdf(sha256, seed, undefined, utf8(info), 32);
}

/** The sending side of a chain: hands out each message seed exactly once. */
export class SendingChain {
  #key: Uint8Array;
  #index: number;

  constructor(key: Uint8Array, index = 0) {
    this.#key = key;
    this.#index = index;
  }

  /** The index the next message will get. */
  get index(): number {
    return this.#index;
  }

  /** The seed for the next message and its index; advances (and wipes) the chain key. */
  next(): { index: number; seed: Uint8Array } {
    const { seed, next } = stepChain(this.#key);
    wipe(this.#key);
    this.#key = next;
    return { index: this.#index++, seed };
  }

  /** Wipes the chain key: the chain is retired (a rotated sender key). */
  wipe(): void {
    wipe(this.#key);
  }

  /** A copy of the current chain key (for a sender-key distribution). */
  get key(): Uint8Array {
    return this.#key.slice();
  }

  toJSON(): Json {
    return { ck: toBase64(this.#key), n: this.#index };
  }

  static fromJSON(json: unknown): SendingChain {
    const r = asRecord(json, 'chain');
    return new SendingChain(fromBase64(r.ck, 32, 'chain.ck'), intField(r, 'n', 'chain'));
  }
}

/** A message seed looked up or derived for a receiving chain, not yet committed. */
export interface PreparedSeed {
  seed: Uint8Array;
  /** Makes the lookup final: deletes the used key, advances the chain, keeps skipped keys. */
  commit(): void;
  /** Forgets what was derived (the message did not authenticate); the chain is unchanged. */
  discard(): void;
}

/**
 * The receiving side of a chain, with a bounded store of keys for messages skipped over.
 * Lookups are two-phase ({@link PreparedSeed}) so that a forged message never moves the chain.
 */
export class ReceivingChain {
  #key: Uint8Array;
  #index: number;
  readonly #skipped: Map<number, Uint8Array>;

  constructor(key: Uint8Array, index = 0, skipped = new Map<number, Uint8Array>()) {
    this.#key = key;
    this.#index = index;
    this.#skipped = skipped;
  }

  /** The index of the next message in order. */
  get index(): number {
    return this.#index;
  }

  /** The seed for message `index`; `replay` if its key was used, `too_far_ahead` past {@link MAX_GAP}. */
  prepare(index: number): PreparedSeed {
    if (index < this.#index) return this.#prepareSkipped(index);
    if (index - this.#index > MAX_GAP)
      throw new E2eeError('too_far_ahead', `message ${index} is too far ahead`);
    const skipped: [number, Uint8Array][] = [];
    let key = this.#key;
    for (let i = this.#index; i < index; i++) {
      const step = stepChain(key);
      if (key !== this.#key) wipe(key);
      skipped.push([i, step.seed]);
      key = step.next;
    }
    const { seed, next } = stepChain(key);
    if (key !== this.#key) wipe(key);
    return {
      seed,
      commit: () => this.#advance(index + 1, next, skipped),
      discard: () => wipe(seed, next, ...skipped.map(([, s]) => s)),
    };
  }

  #prepareSkipped(index: number): PreparedSeed {
    const seed = this.#skipped.get(index);
    if (seed === undefined) throw new E2eeError('replay', `message ${index} was already received`);
    return {
      seed: seed.slice(),
      commit: () => {
        wipe(seed);
        this.#skipped.delete(index);
      },
      discard: () => {},
    };
  }

  #advance(index: number, key: Uint8Array, skipped: [number, Uint8Array][]): void {
    wipe(this.#key);
    this.#key = key;
    this.#index = index;
    for (const [i, seed] of skipped) this.#skipped.set(i, seed);
    // Oldest first (insertion order): the keys least likely to still be needed go first.
    for (const [i, seed] of this.#skipped) {
      if (this.#skipped.size <= MAX_SKIPPED_KEYS) break;
      wipe(seed);
      this.#skipped.delete(i);
    }
  }

  /** How many skipped-message keys are held. */
  get skippedCount(): number {
    return this.#skipped.size;
  }

  toJSON(): Json {
    return {
      ck: toBase64(this.#key),
      n: this.#index,
      skipped: [...this.#skipped].map(([i, s]) => [i, toBase64(s)]),
    };
  }

  static fromJSON(json: unknown): ReceivingChain {
    const r = asRecord(json, 'chain');
    if (!Array.isArray(r.skipped)) throw new E2eeError('bad_input', 'chain.skipped');
    const skipped = new Map<number, Uint8Array>();
    for (const entry of r.skipped) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'number')
        throw new E2eeError('bad_input', 'chain.skipped');
      skipped.set(entry[0], fromBase64(entry[1], 32, 'chain.skipped'));
    }
    return new ReceivingChain(fromBase64(r.ck, 32, 'chain.ck'), intField(r, 'n', 'chain'), skipped);
  }
}
