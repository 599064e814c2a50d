/**
 * SecureMessenger's state over a {@link KeyStorage}: identity, known devices, pairwise channels,
 * this device's sender keys and the sender keys received, each loaded on first use, cached, and
 * written back after every change so that a restarted client keeps its sessions.
 *
 * Records: `identity`, `uploaded`, `devices/<user>`, `pairwise/<user>/<device>`, `sender/<conv>`,
 * `sender-index`, `ring/<conv>` (names URI-encoded).
 *
 * @module
 */

import { asRecord } from './bytes.js';
import { E2eeError } from './errors.js';
import { DeviceIdentity } from './identity.js';
import type { Json, KeyStorage } from './key-storage.js';
import { PairwiseChannel } from './pairwise.js';
import { SenderKey, SenderKeyRing } from './sender-keys.js';

/** This device's sender key for a conversation and where it went. */
export interface OwnSenderState {
  key: SenderKey;
  /** Devices (see {@link deviceId}) that were sent this key id. */
  sentTo: Set<string>;
  /** Members when the key was last used: someone missing from the members now means rotate. */
  users: Set<string>;
}

/** One map key for a user's device. */
export function deviceId(user: string, device: string): string {
  return `${user}\n${device}`;
}

const enc = encodeURIComponent;

function stringArray(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    throw new E2eeError('bad_input', what);
  return value as string[];
}

/** Lazily loaded, write-through state of one SecureMessenger. */
export class MessengerStore {
  readonly #storage: KeyStorage;
  #identity: DeviceIdentity | undefined;
  readonly #directories = new Map<string, Map<string, string> | undefined>();
  readonly #channels = new Map<string, PairwiseChannel>();
  readonly #own = new Map<string, OwnSenderState | undefined>();
  #ownIndex: Set<string> | undefined;
  readonly #rings = new Map<string, SenderKeyRing>();

  constructor(storage: KeyStorage) {
    this.#storage = storage;
  }

  /** Loads this device's identity, or creates and saves one. */
  async loadIdentity(): Promise<{ identity: DeviceIdentity; created: boolean }> {
    const json = await this.#storage.get('identity');
    const created = json === undefined;
    this.#identity = created ? DeviceIdentity.generate() : DeviceIdentity.fromJSON(json);
    if (created) await this.saveIdentity();
    return { identity: this.#identity, created };
  }

  /** The loaded identity (`not_started` before {@link MessengerStore.loadIdentity}). */
  get identity(): DeviceIdentity {
    if (this.#identity === undefined) throw new E2eeError('not_started', 'call start() first');
    return this.#identity;
  }

  async saveIdentity(): Promise<void> {
    await this.#storage.set('identity', this.identity.toJSON());
  }

  /** Whether the identity's public keys were published (a crash may fall between creating and uploading). */
  async uploaded(): Promise<boolean> {
    return (await this.#storage.get('uploaded')) === true;
  }

  async markUploaded(): Promise<void> {
    await this.#storage.set('uploaded', true);
  }

  /** The devices of `user` (device id → identity key) as last claimed, or undefined if never claimed. */
  async directory(user: string): Promise<Map<string, string> | undefined> {
    if (!this.#directories.has(user)) {
      const json = await this.#storage.get(`devices/${enc(user)}`);
      const r = json === undefined ? undefined : asRecord(json, 'devices');
      this.#directories.set(
        user,
        r && new Map(Object.entries(r).filter((e): e is [string, string] => typeof e[1] === 'string')),
      );
    }
    return this.#directories.get(user);
  }

  async saveDirectory(user: string, devices: Map<string, string>): Promise<void> {
    this.#directories.set(user, devices);
    await this.#storage.set(`devices/${enc(user)}`, Object.fromEntries(devices));
  }

  /** The pairwise channel with a device (empty, not yet saved, when there is none). */
  async channel(user: string, device: string): Promise<PairwiseChannel> {
    const id = deviceId(user, device);
    let channel = this.#channels.get(id);
    if (channel === undefined) {
      const json = await this.#storage.get(`pairwise/${enc(user)}/${enc(device)}`);
      channel = json === undefined ? new PairwiseChannel() : PairwiseChannel.fromJSON(json);
      this.#channels.set(id, channel);
    }
    return channel;
  }

  async saveChannel(user: string, device: string, channel: PairwiseChannel): Promise<void> {
    this.#channels.set(deviceId(user, device), channel);
    await this.#storage.set(`pairwise/${enc(user)}/${enc(device)}`, channel.toJSON());
  }

  async deleteChannel(user: string, device: string): Promise<void> {
    this.#channels.delete(deviceId(user, device));
    await this.#storage.delete(`pairwise/${enc(user)}/${enc(device)}`);
  }

  /** This device's sender key state for `conv`, if it has sent there. */
  async own(conv: string): Promise<OwnSenderState | undefined> {
    if (!this.#own.has(conv)) {
      const json = await this.#storage.get(`sender/${enc(conv)}`);
      this.#own.set(conv, json === undefined ? undefined : ownFromJson(json));
    }
    return this.#own.get(conv);
  }

  async saveOwn(conv: string, state: OwnSenderState): Promise<void> {
    this.#own.set(conv, state);
    await this.#storage.set(`sender/${enc(conv)}`, ownToJson(state));
    const index = await this.ownConversations();
    if (!index.has(conv)) {
      index.add(conv);
      await this.#storage.set('sender-index', [...index]);
    }
  }

  /** The conversations this device has a sender key for. */
  async ownConversations(): Promise<Set<string>> {
    if (this.#ownIndex === undefined) {
      const json = await this.#storage.get('sender-index');
      this.#ownIndex = new Set(json === undefined ? [] : stringArray(json, 'sender-index'));
    }
    return this.#ownIndex;
  }

  /** The sender keys received for `conv` (an empty ring when none). */
  async ring(conv: string): Promise<SenderKeyRing> {
    let ring = this.#rings.get(conv);
    if (ring === undefined) {
      const json = await this.#storage.get(`ring/${enc(conv)}`);
      ring = json === undefined ? new SenderKeyRing(conv) : SenderKeyRing.fromJSON(json);
      this.#rings.set(conv, ring);
    }
    return ring;
  }

  /** The ring for `conv` if it is loaded (a synchronous check for waiters). */
  loadedRing(conv: string): SenderKeyRing | undefined {
    return this.#rings.get(conv);
  }

  async saveRing(ring: SenderKeyRing): Promise<void> {
    await this.#storage.set(`ring/${enc(ring.conv)}`, ring.toJSON());
  }
}

function ownToJson(state: OwnSenderState): Json {
  return { key: state.key.toJSON(), sent_to: [...state.sentTo], users: [...state.users] };
}

function ownFromJson(json: unknown): OwnSenderState {
  const r = asRecord(json, 'sender');
  return {
    key: SenderKey.fromJSON(r.key),
    sentTo: new Set(stringArray(r.sent_to, 'sender.sent_to')),
    users: new Set(stringArray(r.users, 'sender.users')),
  };
}
