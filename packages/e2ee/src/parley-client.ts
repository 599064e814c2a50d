/**
 * The bridge from `@parley/sdk`'s `ParleyClient` to {@link E2eeTransport}, typed by the slice of
 * the client it uses (so this package does not depend on the SDK, and any client with these
 * methods works).
 *
 * @module
 */

import type { OneTimePrekey, PrekeyBundle, SignedPrekey } from './identity.js';
import type { E2eeTransport, ToDeviceEvent } from './transport.js';

/** What the bridge needs of a Parley client (`ParleyClient` has all of it). */
export interface ParleyClientLike {
  /** The signed-in user, known once connected. */
  readonly userId: string | undefined;
  uploadKeys(keys: {
    identity_key?: string;
    signed_prekey?: SignedPrekey;
    one_time_prekeys?: OneTimePrekey[];
  }): Promise<number>;
  claimKeys(user: string): Promise<PrekeyBundle[]>;
  countKeys(): Promise<number>;
  sendToDevice(user: string, device: string, body: string): Promise<void>;
  ackToDevice(upto: number): Promise<void>;
  send(conv: string, body: string, options?: { kind?: string; media?: string[] }): Promise<{ seq: number }>;
  groupInfo(conv: string): Promise<{ members: { user: string }[] }>;
  on(event: 'to_device', listener: (e: ToDeviceEvent) => void): () => void;
}

/**
 * A transport over a connected Parley client for this `device` (the id it connected with).
 * Members of a direct conversation come from its id; of a group, from `group_info`.
 */
export function parleyClientTransport(client: ParleyClientLike, device: string): E2eeTransport {
  const user = client.userId;
  if (user === undefined) throw new Error('connect the client before building its transport');
  return {
    user,
    device,
    async uploadKeys(keys) {
      await client.uploadKeys(keys);
    },
    claimKeys: (target) => client.claimKeys(target),
    countKeys: () => client.countKeys(),
    sendToDevice: (target, targetDevice, body) => client.sendToDevice(target, targetDevice, body),
    ackToDevice: (upto) => client.ackToDevice(upto),
    send: (conv, body, options) => client.send(conv, body, options),
    async members(conv) {
      if (conv.startsWith('dm:')) return conv.slice(3).split(':');
      return (await client.groupInfo(conv)).members.map((m) => m.user);
    },
    onToDevice: (handler) => client.on('to_device', handler),
  };
}
