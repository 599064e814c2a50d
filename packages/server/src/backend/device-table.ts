import { ParleyError } from '../domain/errors.js';
import type { PresenceSubscriber } from '../domain/presence.js';
import type { ConnectionRef, GatewayLink } from '../ports/sessions.js';

/** A live connection as a session registry keeps it: the reference and its presence subscriber. */
export interface Live {
  ref: ConnectionRef;
  subscriber: PresenceSubscriber;
  /** When the connection's token was issued (ms): a revocation after it ends the device. */
  issuedAt: number;
}

/** A connection's key, unique in a deployment: `<gateway>/<connection>`. */
export function connKey(ref: ConnectionRef): string {
  return `${ref.gateway}/${ref.conn}`;
}

/**
 * The connections a registry holds, one per device of each user (the embedded registry holds every
 * device; a cluster process, the ones connected to it): what both session registries share.
 */
export class DeviceTable {
  private readonly users = new Map<string, Map<string, Live>>();

  /** The user's devices here, or undefined. */
  devices(user: string): ReadonlyMap<string, Live> | undefined {
    return this.users.get(user);
  }

  /** Records `ref` as its device's connection; presence events reach it through `link`. */
  put(ref: ConnectionRef, issuedAt: number, link: () => GatewayLink | undefined): Live {
    let devices = this.users.get(ref.user);
    if (!devices) {
      devices = new Map();
      this.users.set(ref.user, devices);
    }
    const live: Live = {
      ref,
      issuedAt,
      subscriber: {
        user: ref.user,
        send: (frame) => {
          link()?.send(ref.conn, frame);
          return true;
        },
      },
    };
    devices.set(ref.device, live);
    return live;
  }

  /** Removes `ref` if it is still its device's connection; returns what was removed. */
  remove(ref: ConnectionRef): Live | undefined {
    const devices = this.users.get(ref.user);
    const live = devices?.get(ref.device);
    if (!live || connKey(live.ref) !== connKey(ref)) return undefined;
    devices!.delete(ref.device);
    if (devices!.size === 0) this.users.delete(ref.user);
    return live;
  }

  /** The registered connection `ref` names; `unauthorized` when it was replaced or closed. */
  live(ref: ConnectionRef): Live {
    const live = this.users.get(ref.user)?.get(ref.device);
    if (!live || connKey(live.ref) !== connKey(ref))
      throw new ParleyError('unauthorized', 'connection is no longer registered');
    return live;
  }

  /** Every connection held, for detaching a gateway. */
  *all(): Iterable<Live> {
    for (const devices of this.users.values()) yield* devices.values();
  }
}
