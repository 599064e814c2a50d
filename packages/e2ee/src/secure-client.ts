/**
 * SecureMessenger: end-to-end encrypted messaging over a Parley client. Conversation messages
 * are encrypted once with this device's sender key for the conversation; the sender key reaches
 * every member device (the user's own other devices included) in X3DH-started pairwise sessions
 * over `to_device`. Incoming `to_device` events are decrypted, acted on and acknowledged here.
 * See docs/e2ee.md for the scheme, its guarantees and its wire formats.
 *
 * @example
 * ```ts
 * const messenger = new SecureMessenger({ transport: client, storage });
 * await messenger.start();
 * await messenger.sendText(client.directConv('bob'), 'hi bob');
 * client.on('message', async (m) => {
 *   if (m.kind === 'e2ee') console.log((await messenger.decrypt(m)).text);
 * });
 * ```
 *
 * @module
 */

import {
  type AttachmentPointer,
  attachmentDescriptor,
  decryptAttachment,
  encryptAttachment,
} from './attachments.js';
import { asRecord, fromUtf8, intField, parseJson, stringField, utf8 } from './bytes.js';
import { E2eeError } from './errors.js';
import type { PrekeyBundle } from './identity.js';
import type { Json, KeyStorage } from './key-storage.js';
import { deviceId, MessengerStore, type OwnSenderState } from './messenger-store.js';
import { PairwiseSession } from './pairwise.js';
import { safetyNumber } from './safety-number.js';
import {
  decodeSenderKeyEnvelope,
  encodeSenderKeyEnvelope,
  parseSenderKeyDistribution,
  SenderKey,
  type SenderKeyDistribution,
} from './sender-keys.js';
import type { E2eeTransport, ToDeviceEvent } from './transport.js';

/** The protocol's limit on `send.body`. */
export const MAX_BODY_BYTES = 64 * 1024;
/** The protocol's limit on one-time prekeys per `keys_upload`, halved to keep frames small. */
const MAX_PREKEY_BATCH = 100;

/** How to build a {@link SecureMessenger}. */
export interface SecureMessengerOptions {
  /** The client (`@parley/sdk`'s ParleyClient, or anything implementing {@link E2eeTransport}). */
  transport: E2eeTransport;
  /** Where keys and sessions persist (private keys: keep it encrypted at rest). */
  storage: KeyStorage;
  /** One-time prekeys kept on the server (topped up at start and by `replenishPrekeys`). Default 100. */
  minOneTimePrekeys?: number;
  /** One-time prekeys per upload (at most 100). Default 100. */
  prekeyBatch?: number;
  /**
   * How long `decrypt` waits for a missing sender key before asking the sender's device for it:
   * the key usually travels just ahead of the message, over `to_device`. Default 2000 ms.
   */
  keyWaitMs?: number;
  /** How long `decrypt` then waits for the answer before `missing_sender_key`. Default 10000 ms. */
  keyRequestTimeoutMs?: number;
  /** The `kind` of encrypted messages. Default `e2ee`. */
  kind?: string;
  /** A `to_device` event that could not be handled (it is acknowledged anyway, so it does not block the queue). */
  onError?: (error: E2eeError, event?: ToDeviceEvent) => void;
  /**
   * A known device now presents another identity key (reinstalled, or an attacker the server
   * let in). Accepted, as Signal does, but the safety number changes: tell the user.
   */
  onIdentityChange?: (change: {
    user: string;
    device: string;
    identityKey: string;
    previous: string;
  }) => void;
  /**
   * A known user has a device this device had not seen. Its keys are shared with it (the server
   * vouches for device lists), and the safety number changes: worth showing, as a server could
   * add a device of its own.
   */
  onDeviceAdded?: (device: { user: string; device: string; identityKey: string }) => void;
}

/** Names one sender key: whose, where, which. */
interface SenderKeyRef {
  conv: string;
  user: string;
  device: string;
  keyId: number;
}

function refId(ref: SenderKeyRef): string {
  return JSON.stringify([ref.conv, ref.user, ref.device, ref.keyId]);
}

/** An incoming conversation message, as the SDK's `message` event gives it. */
export interface IncomingMessage {
  conv: string;
  from: string;
  /** The device the server says sent it; checked against the envelope when given. */
  from_device?: string;
  body: string;
}

/** A decrypted conversation message. */
export interface DecryptedMessage {
  conv: string;
  from: string;
  /** The sending device (from the signed envelope). */
  from_device: string;
  /** What the sender passed to `sendMessage` (a string for `sendText`). */
  content: Json;
  /** `content` when it is a string. */
  text: string | undefined;
}

/** A payload of a pairwise `to_device` message. */
type PairwisePayload =
  | { t: 'sender_key'; distribution: SenderKeyDistribution }
  | { t: 'key_request'; conv: string; key_id: number };

function parsePairwisePayload(plaintext: Uint8Array): PairwisePayload {
  const r = asRecord(parseJson(fromUtf8(plaintext)), 'payload');
  if (r.t === 'sender_key')
    return { t: 'sender_key', distribution: parseSenderKeyDistribution(r.distribution) };
  if (r.t === 'key_request') {
    return {
      t: 'key_request',
      conv: stringField(r, 'conv', 'payload'),
      key_id: intField(r, 'key_id', 'payload'),
    };
  }
  throw new E2eeError('bad_input', `unknown payload type ${String(r.t)}`);
}

function parseContent(plaintext: Uint8Array): Json {
  return asRecord(parseJson(fromUtf8(plaintext)), 'message').c as Json;
}

/** End-to-end encryption for one device of one account (see the module comment). */
export class SecureMessenger {
  readonly #transport: E2eeTransport;
  readonly #store: MessengerStore;
  readonly #minPrekeys: number;
  readonly #prekeyBatch: number;
  readonly #keyWaitMs: number;
  readonly #keyRequestTimeoutMs: number;
  readonly #kind: string;
  readonly #onError: ((error: E2eeError, event?: ToDeviceEvent) => void) | undefined;
  readonly #onIdentityChange: SecureMessengerOptions['onIdentityChange'];
  readonly #onDeviceAdded: SecureMessengerOptions['onDeviceAdded'];
  // Every state change runs in this queue: handlers interleave at each await, and two of them
  // advancing one chain from the same loaded state would reuse a message key.
  #tail: Promise<unknown> = Promise.resolve();
  readonly #toDevice: ToDeviceEvent[] = [];
  #draining: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #keyWaiters = new Map<string, Set<() => void>>();
  readonly #requested = new Set<string>();

  constructor(options: SecureMessengerOptions) {
    this.#transport = options.transport;
    this.#store = new MessengerStore(options.storage);
    this.#minPrekeys = options.minOneTimePrekeys ?? 100;
    this.#prekeyBatch = Math.min(options.prekeyBatch ?? MAX_PREKEY_BATCH, MAX_PREKEY_BATCH);
    this.#keyWaitMs = options.keyWaitMs ?? 2000;
    this.#keyRequestTimeoutMs = options.keyRequestTimeoutMs ?? 10_000;
    this.#kind = options.kind ?? 'e2ee';
    this.#onError = options.onError;
    this.#onIdentityChange = options.onIdentityChange;
    this.#onDeviceAdded = options.onDeviceAdded;
  }

  /** Loads or creates this device's identity, publishes its keys, tops up one-time prekeys, listens to `to_device`. */
  async start(): Promise<void> {
    await this.#exclusive(async () => {
      await this.#store.loadIdentity();
      if (!(await this.#store.uploaded())) {
        await this.#transport.uploadKeys(this.#store.identity.publicBundle());
        await this.#store.markUploaded();
      }
    });
    this.#unsubscribe ??= this.#transport.onToDevice((e) => this.#enqueueToDevice(e));
    await this.replenishPrekeys();
  }

  /** Stops listening to `to_device` (state stays in storage). */
  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** This device's published identity key. */
  get identityKey(): string {
    return this.#store.identity.identityKey;
  }

  /** Uploads one-time prekeys until the server holds at least `minOneTimePrekeys`; returns how many were added. */
  async replenishPrekeys(): Promise<number> {
    return this.#exclusive(async () => {
      let count = await this.#transport.countKeys();
      let added = 0;
      while (count < this.#minPrekeys) {
        const prekeys = this.#store.identity.generateOneTimePrekeys(
          Math.min(this.#prekeyBatch, this.#minPrekeys - count),
        );
        // Private halves are saved before the public halves are published: a claimed prekey must exist here.
        await this.#store.saveIdentity();
        await this.#transport.uploadKeys({ one_time_prekeys: prekeys });
        count += prekeys.length;
        added += prekeys.length;
      }
      return added;
    });
  }

  /**
   * Replaces the signed prekey and publishes the new one (Signal rotates it every week to month,
   * which bounds how long a stolen signed prekey helps). The previous one still answers X3DH
   * starts already in flight.
   */
  async rotateSignedPrekey(): Promise<void> {
    await this.#exclusive(async () => {
      this.#store.identity.rotateSignedPrekey();
      await this.#store.saveIdentity();
      await this.#transport.uploadKeys(this.#store.identity.publicBundle());
    });
  }

  /** Sends `text` end-to-end encrypted to `conv`. */
  sendText(conv: string, text: string, options: { media?: string[] } = {}): Promise<{ seq: number }> {
    return this.sendMessage(conv, text, options);
  }

  /**
   * Sends `content` (any JSON) end-to-end encrypted to `conv`: first makes sure every current
   * member device has this device's sender key (rotating it if a member left), then sends one
   * envelope. `media` lists attachment ids (their keys belong in `content`).
   */
  async sendMessage(
    conv: string,
    content: Json,
    options: { media?: string[] } = {},
  ): Promise<{ seq: number }> {
    const body = await this.#exclusive(() => this.#encryptForConversation(conv, content));
    const sendOptions: { kind: string; media?: string[] } = { kind: this.#kind };
    if (options.media) sendOptions.media = options.media;
    return this.#transport.send(conv, body, sendOptions);
  }

  async #encryptForConversation(conv: string, content: Json): Promise<string> {
    const members = await this.#transport.members(conv);
    const state = await this.#senderStateFor(conv, members);
    await this.#distributeToMembers(state, members);
    const body = encodeSenderKeyEnvelope(state.key.encrypt(utf8(JSON.stringify({ c: content }))));
    await this.#store.saveOwn(conv, state);
    if (utf8(body).length > MAX_BODY_BYTES)
      throw new E2eeError('too_large', 'message does not fit a message body');
    return body;
  }

  /** This device's sender key for `conv`: created on first use, rotated if a member it went to has left. */
  async #senderStateFor(conv: string, members: string[]): Promise<OwnSenderState> {
    const state = await this.#store.own(conv);
    if (state === undefined) {
      const { user, device } = this.#transport;
      return { key: SenderKey.create(conv, user, device), sentTo: new Set(), users: new Set() };
    }
    const current = new Set(members);
    if ([...state.users].some((u) => !current.has(u))) this.#rotate(state);
    return state;
  }

  /**
   * Replaces the key in place: the store caches this very object, so a rotation made while a
   * send is distributing (a device found gone) is seen by that send too.
   */
  #rotate(state: OwnSenderState): void {
    state.key = state.key.rotate();
    state.sentTo.clear();
    state.users.clear();
  }

  /** Gives every member device the current key; again if it rotated meanwhile. Records the members. */
  async #distributeToMembers(state: OwnSenderState, members: string[]): Promise<void> {
    let keyId: number;
    do {
      keyId = state.key.keyId;
      for (const user of members) {
        for (const device of (await this.#devicesOf(user)).keys()) {
          if (!state.sentTo.has(deviceId(user, device))) await this.#distribute(state, user, device);
        }
      }
    } while (state.key.keyId !== keyId);
    state.users = new Set(members);
    await this.#store.saveOwn(state.key.conv, state);
  }

  /** Sends `state`'s key to one device (over a pairwise session, started if needed). */
  async #distribute(state: OwnSenderState, user: string, device: string): Promise<void> {
    const payload: PairwisePayload = { t: 'sender_key', distribution: state.key.distribution() };
    if (await this.#sendPairwise(user, device, payload)) state.sentTo.add(deviceId(user, device));
    await this.#store.saveOwn(state.key.conv, state);
  }

  /** Encrypts and sends a payload to one device; false when no session could be made (reported). */
  async #sendPairwise(user: string, device: string, payload: PairwisePayload): Promise<boolean> {
    let channel = await this.#store.channel(user, device);
    if (!channel.hasSession) {
      await this.#claim(user);
      channel = await this.#store.channel(user, device);
    }
    if (!channel.hasSession) {
      this.#report(new E2eeError('no_session', `no keys for device ${user}/${device}`));
      return false;
    }
    const body = channel.encrypt(utf8(JSON.stringify(payload)));
    // Saved before sending: a crash in between skips a message number, it never reuses one.
    await this.#store.saveChannel(user, device, channel);
    await this.#transport.sendToDevice(user, device, body);
    return true;
  }

  /** The devices of `user` (other than this one), claimed once and cached. */
  async #devicesOf(user: string): Promise<Map<string, string>> {
    return (await this.#store.directory(user)) ?? this.#claim(user);
  }

  /**
   * Claims every device's keys for `user` (`keys_claim` spends their one-time prekeys, so only
   * when needed), starts sessions with devices that have none, and drops devices that are gone.
   */
  async #claim(user: string): Promise<Map<string, string>> {
    const previous = await this.#store.directory(user);
    const devices = new Map<string, string>();
    for (const bundle of await this.#transport.claimKeys(user)) {
      if (user === this.#transport.user && bundle.device === this.#transport.device) continue;
      const known =
        previous?.get(bundle.device) ?? (await this.#store.channel(user, bundle.device)).remoteIdentityKey;
      if (!(await this.#startSession(user, bundle))) continue;
      devices.set(bundle.device, bundle.identity_key);
      // The first claim of a user only discovers; later ones report what changed.
      if (previous || known) await this.#deviceSeen(user, bundle.device, known, bundle.identity_key);
    }
    for (const device of previous?.keys() ?? [])
      if (!devices.has(device)) await this.#forgetDevice(user, device);
    await this.#store.saveDirectory(user, devices);
    return devices;
  }

  /** Starts a session from a claimed bundle unless one with the same identity exists; false if refused. */
  async #startSession(user: string, bundle: PrekeyBundle): Promise<boolean> {
    const channel = await this.#store.channel(user, bundle.device);
    if (channel.hasSession && channel.remoteIdentityKey === bundle.identity_key) return true;
    try {
      channel.addInitiated(PairwiseSession.initiate(this.#store.identity, bundle));
      await this.#store.saveChannel(user, bundle.device, channel);
      return true;
    } catch (err) {
      this.#report(E2eeError.from(err));
      return false;
    }
  }

  /**
   * Tells the application about a device of a known user that is new, or presents a new
   * identity. A new identity is a reinstalled device that lost every key it was given: it counts
   * as never having received this device's sender keys.
   */
  async #deviceSeen(
    user: string,
    device: string,
    previous: string | undefined,
    identityKey: string,
  ): Promise<void> {
    if (previous === undefined) {
      this.#onDeviceAdded?.({ user, device, identityKey });
    } else if (previous !== identityKey) {
      this.#onIdentityChange?.({ user, device, identityKey, previous });
      await this.#unmarkSent(user, device);
    }
  }

  async #unmarkSent(user: string, device: string): Promise<void> {
    for (const conv of await this.#store.ownConversations()) {
      const state = await this.#store.own(conv);
      if (state?.sentTo.delete(deviceId(user, device))) await this.#store.saveOwn(conv, state);
    }
  }

  /**
   * Decrypts a conversation message. When the sender key has not arrived it waits for it
   * (`keyWaitMs`), then asks the sender's device for it and waits again (`keyRequestTimeoutMs`), then throws
   * `missing_sender_key`. Other failures: `bad_signature`, `decrypt_failed`, `replay`,
   * `key_not_shared` (sent before this device had the key), `own_device`, `bad_input`.
   */
  async decrypt(message: IncomingMessage): Promise<DecryptedMessage> {
    const envelope = decodeSenderKeyEnvelope(message.body);
    if (message.from_device !== undefined && message.from_device !== envelope.d) {
      throw new E2eeError('bad_input', 'envelope device differs from the sending device');
    }
    if (message.from === this.#transport.user && envelope.d === this.#transport.device) {
      throw new E2eeError('own_device', 'this device sent the message; its key is gone by design');
    }
    const attempt = () => this.#exclusive(() => this.#decryptNow(message, envelope));
    const ref = { conv: message.conv, user: message.from, device: envelope.d, keyId: envelope.k };
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof E2eeError) || err.code !== 'missing_sender_key') throw err;
    }
    if (await this.#waitForKey(ref, this.#keyWaitMs)) return attempt();
    await this.#exclusive(() => this.#requestKey(ref));
    if (await this.#waitForKey(ref, this.#keyRequestTimeoutMs)) return attempt();
    throw new E2eeError('missing_sender_key', `sender key of ${message.from}/${envelope.d} did not arrive`);
  }

  async #decryptNow(
    message: IncomingMessage,
    envelope: ReturnType<typeof decodeSenderKeyEnvelope>,
  ): Promise<DecryptedMessage> {
    const ring = await this.#store.ring(message.conv);
    const plaintext = ring.decrypt(message.from, envelope);
    await this.#store.saveRing(ring);
    const content = parseContent(plaintext);
    const text = typeof content === 'string' ? content : undefined;
    return { conv: message.conv, from: message.from, from_device: envelope.d, content, text };
  }

  /** Resolves true when the awaited sender key is installed, false after `timeoutMs`. */
  #waitForKey(ref: SenderKeyRef, timeoutMs: number): Promise<boolean> {
    if (this.#store.loadedRing(ref.conv)?.has(ref.user, ref.device, ref.keyId)) return Promise.resolve(true);
    const key = refId(ref);
    return new Promise((resolve) => {
      const waiters = this.#keyWaiters.get(key) ?? new Set();
      const done = (found: boolean) => {
        clearTimeout(timer);
        waiters.delete(wake);
        resolve(found);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      waiters.add(wake);
      this.#keyWaiters.set(key, waiters);
    });
  }

  /** Asks a sender's device for its key (once per key and run); it answers only a current member. */
  async #requestKey(ref: SenderKeyRef): Promise<void> {
    if (this.#requested.has(refId(ref))) return;
    this.#requested.add(refId(ref));
    await this.#sendPairwise(ref.user, ref.device, { t: 'key_request', conv: ref.conv, key_id: ref.keyId });
  }

  #enqueueToDevice(e: ToDeviceEvent): void {
    this.#toDevice.push(e);
    this.#draining ??= this.#drainToDevice().finally(() => {
      this.#draining = undefined;
    });
  }

  /** Handles queued `to_device` events in `qid` order, acknowledging each once handled. */
  async #drainToDevice(): Promise<void> {
    for (let e = this.#toDevice.shift(); e !== undefined; e = this.#toDevice.shift()) {
      const event = e;
      try {
        await this.#exclusive(() => this.#handleToDevice(event));
      } catch (err) {
        this.#report(E2eeError.from(err), event);
      }
      // Acknowledged even when it failed: a payload that cannot be decrypted now never will be,
      // and an unacknowledged one would be delivered again after every reconnect.
      await this.#transport
        .ackToDevice(event.qid)
        .catch((err: unknown) => this.#report(E2eeError.from(err), event));
    }
  }

  /** Resolves once every `to_device` event received so far is handled (for tests and orderly shutdown). */
  async settled(): Promise<void> {
    while (this.#draining) await this.#draining;
    await this.#tail;
  }

  async #handleToDevice(e: ToDeviceEvent): Promise<void> {
    const channel = await this.#store.channel(e.from, e.from_device);
    const result = channel.decrypt(this.#store.identity, e.body);
    // A new session may have consumed a one-time prekey: the identity changed too.
    if (result.newSession) await this.#store.saveIdentity();
    await this.#store.saveChannel(e.from, e.from_device, channel);
    const payload = parsePairwisePayload(result.plaintext);
    const isNew = await this.#isNewDevice(e.from, e.from_device, result.remoteIdentityKey);
    if (payload.t === 'sender_key') await this.#receiveSenderKey(e.from, e.from_device, payload.distribution);
    else await this.#answerKeyRequest(e.from, e.from_device, payload.conv);
    // After the payload, so that a key it already sent is not sent twice.
    if (isNew) await this.#shareKeysWithNewDevice(e.from, e.from_device);
  }

  /** Records a device of an already claimed user that wrote to us: new, or with a new identity. */
  async #isNewDevice(user: string, device: string, identityKey: string): Promise<boolean> {
    const devices = await this.#store.directory(user);
    if (devices === undefined || devices.get(device) === identityKey) return false;
    await this.#deviceSeen(user, device, devices.get(device), identityKey);
    devices.set(device, identityKey);
    await this.#store.saveDirectory(user, devices);
    return true;
  }

  /** Gives a newly seen device of `user` this device's sender keys for the conversations `user` is in. */
  async #shareKeysWithNewDevice(user: string, device: string): Promise<void> {
    for (const conv of await this.#store.ownConversations()) {
      const state = await this.#store.own(conv);
      if (state?.users.has(user) && !state.sentTo.has(deviceId(user, device))) {
        await this.#distribute(state, user, device);
      }
    }
  }

  async #receiveSenderKey(user: string, device: string, distribution: SenderKeyDistribution): Promise<void> {
    const ring = await this.#store.ring(distribution.conv);
    if (ring.install(user, device, distribution)) await this.#store.saveRing(ring);
    this.#wakeKeyWaiters({ conv: distribution.conv, user, device, keyId: distribution.key_id });
    // A device we have not given our key yet (new to us, or new altogether) answers in kind.
    const state = await this.#store.own(distribution.conv);
    if (
      state &&
      !state.sentTo.has(deviceId(user, device)) &&
      (await this.#isMember(distribution.conv, user))
    ) {
      await this.#distribute(state, user, device);
    }
  }

  #wakeKeyWaiters(ref: SenderKeyRef): void {
    for (const wake of this.#keyWaiters.get(refId(ref)) ?? []) wake();
    this.#keyWaiters.delete(refId(ref));
  }

  /** Resends this device's current key to a member device that lost it; non-members get nothing. */
  async #answerKeyRequest(user: string, device: string, conv: string): Promise<void> {
    const state = await this.#store.own(conv);
    if (state && (await this.#isMember(conv, user))) await this.#distribute(state, user, device);
  }

  async #isMember(conv: string, user: string): Promise<boolean> {
    return (await this.#transport.members(conv)).includes(user);
  }

  /**
   * A member left `conv`: replaces this device's sender key there, so that the next message
   * uses a key only the remaining devices receive. (`sendMessage` also rotates by itself when
   * it sees a member gone; calling this makes it happen without waiting for that check.)
   */
  async memberRemoved(conv: string): Promise<void> {
    await this.#exclusive(async () => {
      const state = await this.#store.own(conv);
      if (state === undefined) return;
      this.#rotate(state);
      await this.#store.saveOwn(conv, state);
    });
  }

  /** A device was revoked: forget it and rotate every sender key it had received. */
  async deviceRevoked(user: string, device: string): Promise<void> {
    await this.#exclusive(async () => {
      const devices = await this.#store.directory(user);
      if (devices?.delete(device)) await this.#store.saveDirectory(user, devices);
      await this.#forgetDevice(user, device);
    });
  }

  async #forgetDevice(user: string, device: string): Promise<void> {
    await this.#store.deleteChannel(user, device);
    for (const conv of await this.#store.ownConversations()) {
      const state = await this.#store.own(conv);
      if (!state?.sentTo.has(deviceId(user, device))) continue;
      this.#rotate(state);
      await this.#store.saveOwn(conv, state);
    }
  }

  /**
   * Claims `user`'s keys again to learn added and removed devices (a removed one counts as
   * revoked). Spends a one-time prekey of each of their devices: call it when there is a reason.
   */
  async refreshDevices(user: string): Promise<string[]> {
    return this.#exclusive(async () => [...(await this.#claim(user)).keys()]);
  }

  /**
   * Sends this device's sender key for `conv` to every member device now, which also tells them
   * this device exists: they answer with their own keys. A new device calls it for its
   * conversations so that it can read the next message each member sends.
   */
  async announce(conv: string): Promise<void> {
    await this.#exclusive(async () => {
      const members = await this.#transport.members(conv);
      await this.#distributeToMembers(await this.#senderStateFor(conv, members), members);
    });
  }

  /**
   * The safety number between this account and `user`, over every device identity key known on
   * both sides (a device added on either side changes it). Compare it out of band.
   */
  async safetyNumber(user: string): Promise<string> {
    return this.#exclusive(async () => {
      const self = this.#transport.user;
      const mine = [this.identityKey, ...(await this.#devicesOf(self)).values()];
      const theirs = user === self ? mine : [...(await this.#devicesOf(user)).values()];
      return safetyNumber(self, mine, user, theirs);
    });
  }

  /** Encrypts a file for upload (see attachments.ts). */
  encryptAttachment(bytes: Uint8Array): { ciphertext: Uint8Array; pointer: AttachmentPointer } {
    return encryptAttachment(bytes);
  }

  /** Decrypts a downloaded file after checking its digest (see attachments.ts). */
  decryptAttachment(ciphertext: Uint8Array, pointer: AttachmentPointer): Uint8Array {
    return decryptAttachment(ciphertext, pointer);
  }

  /** The descriptor to put in a message for an uploaded attachment (see attachments.ts). */
  attachmentDescriptor(
    media: string,
    pointer: AttachmentPointer,
    contentType: string,
    thumbnail?: Uint8Array,
  ) {
    return attachmentDescriptor(media, pointer, contentType, thumbnail);
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  #report(error: E2eeError, event?: ToDeviceEvent): void {
    this.#onError?.(error, event);
  }
}
