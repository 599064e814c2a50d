/**
 * The narrow slice of a Parley client that end-to-end encryption needs. `@parley/sdk`'s
 * `ParleyClient` satisfies it; tests use an in-memory fake. Keeping it this small keeps the
 * crypto independent of connection handling and lets it run over any client.
 *
 * @module
 */

import type { OneTimePrekey, PrekeyBundle, SignedPrekey } from './identity.js';

/** A `to_device` event as delivered to the target device. */
export interface ToDeviceEvent {
  qid: number;
  from: string;
  from_device: string;
  body: string;
}

/** What SecureMessenger calls on the client (protocol frames named in each comment). */
export interface E2eeTransport {
  /** This account's user id. */
  readonly user: string;
  /** This device's id. */
  readonly device: string;
  /** `keys_upload`: publishes keys (only the fields given; one-time prekeys are added). */
  uploadKeys(keys: {
    identity_key?: string;
    signed_prekey?: SignedPrekey;
    one_time_prekeys?: OneTimePrekey[];
  }): Promise<void>;
  /** `keys_claim`: every device of `user` with its keys; each one-time prekey is handed out once. */
  claimKeys(user: string): Promise<PrekeyBundle[]>;
  /** `keys_count`: how many one-time prekeys of this device the server still holds. */
  countKeys(): Promise<number>;
  /** `to_device`: queues `body` for one device of `user`. */
  sendToDevice(user: string, device: string, body: string): Promise<void>;
  /** `to_device_ack`: the server may delete this device's `to_device` events up to `upto`. */
  ackToDevice(upto: number): Promise<void>;
  /** `send`: a message to a conversation. */
  send(conv: string, body: string, options?: { kind?: string; media?: string[] }): Promise<{ seq: number }>;
  /** The user ids of a conversation's current members (direct: both users). */
  members(conv: string): Promise<string[]>;
  /** Subscribes to incoming `to_device` events; returns the unsubscribe function. */
  onToDevice(handler: (e: ToDeviceEvent) => void): () => void;
}
