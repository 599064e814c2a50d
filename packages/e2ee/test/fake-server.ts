/**
 * A tiny in-memory Parley server for SecureMessenger's tests: a key directory that hands out
 * each one-time prekey once, per-device `to_device` queues delivered in `qid` order and deleted
 * on ack, conversations with members, message fan-out to every device of every member, and a
 * media store. Deliveries are asynchronous, as over a socket.
 *
 * @module
 */

import type {
  E2eeTransport,
  OneTimePrekey,
  PrekeyBundle,
  SignedPrekey,
  ToDeviceEvent,
} from '../src/index.js';

interface DeviceKeys {
  identity_key?: string;
  signed_prekey?: SignedPrekey;
  one_time: OneTimePrekey[];
}

/** A message as the server stores and delivers it. */
export interface StoredMessage {
  conv: string;
  seq: number;
  from: string;
  from_device: string;
  kind: string;
  body: string;
  media?: string[];
}

const id = (user: string, device: string) => `${user}\n${device}`;

export class FakeServer {
  readonly #keys = new Map<string, Map<string, DeviceKeys>>();
  readonly #queues = new Map<string, ToDeviceEvent[]>();
  readonly #delivered = new Map<string, number>();
  readonly #handlers = new Map<string, (e: ToDeviceEvent) => void>();
  readonly #nextQid = new Map<string, number>();
  readonly #members = new Map<string, Set<string>>();
  readonly #devices = new Map<string, Set<string>>();
  readonly #inboxes = new Map<string, StoredMessage[]>();
  readonly media = new Map<string, Uint8Array>();
  /** Every message sent, in order (what a hostile server could hand to anyone). */
  readonly log: StoredMessage[] = [];
  /** Counts of frames, for assertions. */
  readonly stats = { claims: 0, toDevice: 0, uploads: [] as number[] };
  #seq = 0;
  #scheduled = 0;

  /** Sets a conversation's members. */
  setMembers(conv: string, users: string[]): void {
    this.#members.set(conv, new Set(users));
  }

  /** Removes a member (the server stops delivering to them). */
  removeMember(conv: string, user: string): void {
    this.#members.get(conv)?.delete(user);
  }

  /** Revokes a device: its keys and queue are deleted, as `revoke_device` does. */
  revokeDevice(user: string, device: string): void {
    this.#keys.get(user)?.delete(device);
    this.#devices.get(user)?.delete(device);
    this.#queues.delete(id(user, device));
    this.#handlers.delete(id(user, device));
  }

  /** Messages delivered to a device since the last call. */
  inbox(user: string, device: string): StoredMessage[] {
    const messages = this.#inboxes.get(id(user, device)) ?? [];
    this.#inboxes.set(id(user, device), []);
    return messages;
  }

  /** One-time prekeys the server still holds for a device. */
  oneTimeCount(user: string, device: string): number {
    return this.#keys.get(user)?.get(device)?.one_time.length ?? 0;
  }

  /** Replaces a device's signed prekey signature (a server forging keys). */
  forgeSignedPrekey(user: string, device: string, key: string): void {
    const keys = this.#keys.get(user)?.get(device);
    if (keys?.signed_prekey) keys.signed_prekey = { ...keys.signed_prekey, key };
  }

  /** Whether every `to_device` event for a listening device was acknowledged and nothing is scheduled. */
  get quiet(): boolean {
    if (this.#scheduled > 0) return false;
    for (const [target, queue] of this.#queues)
      if (this.#handlers.has(target) && queue.length > 0) return false;
    return true;
  }

  /** A transport for one device of one user (the device is registered for fan-out). */
  transport(user: string, device: string): E2eeTransport {
    const devices = this.#devices.get(user) ?? new Set();
    devices.add(device);
    this.#devices.set(user, devices);
    return {
      user,
      device,
      uploadKeys: async (keys) => this.#upload(user, device, keys),
      claimKeys: async (target) => this.#claim(target),
      countKeys: async () => this.oneTimeCount(user, device),
      sendToDevice: async (targetUser, targetDevice, body) => {
        this.#enqueue(id(targetUser, targetDevice), { from: user, from_device: device, body });
      },
      ackToDevice: async (upto) => {
        const queue = this.#queues.get(id(user, device)) ?? [];
        this.#queues.set(
          id(user, device),
          queue.filter((e) => e.qid > upto),
        );
      },
      send: async (conv, body, options) => this.#send(user, device, conv, body, options),
      members: async (conv) => [...(this.#members.get(conv) ?? [])],
      onToDevice: (handler) => {
        this.#handlers.set(id(user, device), handler);
        this.#delivered.set(id(user, device), 0);
        this.#schedule(id(user, device));
        return () => this.#handlers.delete(id(user, device));
      },
    };
  }

  #upload(
    user: string,
    device: string,
    keys: { identity_key?: string; signed_prekey?: SignedPrekey; one_time_prekeys?: OneTimePrekey[] },
  ): void {
    const byDevice = this.#keys.get(user) ?? new Map<string, DeviceKeys>();
    const current = byDevice.get(device) ?? { one_time: [] };
    // A new identity (a reinstalled device) makes the old one-time prekeys useless: drop them.
    if (keys.identity_key && keys.identity_key !== current.identity_key) current.one_time = [];
    if (keys.identity_key) current.identity_key = keys.identity_key;
    if (keys.signed_prekey) current.signed_prekey = keys.signed_prekey;
    if (keys.one_time_prekeys) {
      if (keys.one_time_prekeys.length > 200) throw new Error('too many one-time prekeys in one frame');
      this.stats.uploads.push(keys.one_time_prekeys.length);
      current.one_time.push(...keys.one_time_prekeys);
    }
    byDevice.set(device, current);
    this.#keys.set(user, byDevice);
  }

  #claim(user: string): PrekeyBundle[] {
    this.stats.claims++;
    const bundles: PrekeyBundle[] = [];
    for (const [device, keys] of this.#keys.get(user) ?? []) {
      if (!keys.identity_key || !keys.signed_prekey) continue;
      const bundle: PrekeyBundle = {
        device,
        identity_key: keys.identity_key,
        signed_prekey: keys.signed_prekey,
      };
      const oneTime = keys.one_time.shift();
      if (oneTime) bundle.one_time_prekey = oneTime;
      bundles.push(bundle);
    }
    return bundles;
  }

  #enqueue(target: string, event: Omit<ToDeviceEvent, 'qid'>): void {
    this.stats.toDevice++;
    const qid = (this.#nextQid.get(target) ?? 0) + 1;
    this.#nextQid.set(target, qid);
    const queue = this.#queues.get(target) ?? [];
    queue.push({ qid, ...event });
    this.#queues.set(target, queue);
    this.#schedule(target);
  }

  /** Delivers a device's undelivered events on a later turn (never inside the sender's call). */
  #schedule(target: string): void {
    this.#scheduled++;
    setImmediate(() => {
      this.#scheduled--;
      const handler = this.#handlers.get(target);
      if (!handler) return;
      for (const event of this.#queues.get(target) ?? []) {
        if (event.qid <= (this.#delivered.get(target) ?? 0)) continue;
        this.#delivered.set(target, event.qid);
        handler(event);
      }
    });
  }

  #send(
    user: string,
    device: string,
    conv: string,
    body: string,
    options: { kind?: string; media?: string[] } = {},
  ): { seq: number } {
    const members = this.#members.get(conv);
    if (!members?.has(user)) throw new Error('forbidden');
    if (body.length > 64 * 1024) throw new Error('too large');
    const message: StoredMessage = {
      conv,
      seq: ++this.#seq,
      from: user,
      from_device: device,
      kind: options.kind ?? 'text',
      body,
    };
    if (options.media) message.media = options.media;
    this.log.push(message);
    for (const member of members) {
      for (const memberDevice of this.#devices.get(member) ?? []) {
        const inbox = this.#inboxes.get(id(member, memberDevice)) ?? [];
        inbox.push(message);
        this.#inboxes.set(id(member, memberDevice), inbox);
      }
    }
    return { seq: message.seq };
  }
}
