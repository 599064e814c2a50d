import { CloseCode } from '@parley/protocol';
import type { Chat } from '../domain/chat.js';
import { ParleyError } from '../domain/errors.js';
import type { PresenceService, PresenceSubscriber, PresenceView } from '../domain/presence.js';
import type { Logger } from '../ports/logger.js';
import type { OutboundFrame, Router } from '../ports/router.js';
import type { ConnectionRef, GatewayLink, SessionsApi } from './api.js';

interface Live {
  ref: ConnectionRef;
  subscriber: PresenceSubscriber;
}

/**
 * The live-device table of one core, and its router. It knows, for every user, which connection
 * holds each device and on which gateway, so it can replace a device's older connection (4409)
 * even on another worker, cap connections per user (4429), route live frames only to the gateways
 * that hold the user's devices, and address presence events to single connections.
 */
export class SessionRegistry implements SessionsApi, Router {
  private readonly links = new Map<string, GatewayLink>();
  private readonly devices = new Map<string, Map<string, Live>>();

  constructor(
    private readonly chat: Pick<Chat, 'inboxHead'>,
    private readonly presence: PresenceService,
    private readonly maxConnectionsPerUser: number,
    private readonly log: Logger,
  ) {}

  /** Makes a gateway reachable; returns a function that detaches it (dropping its connections). */
  attach(gateway: string, link: GatewayLink): () => void {
    this.links.set(gateway, link);
    return () => {
      this.links.delete(gateway);
      for (const devices of [...this.devices.values()]) {
        for (const live of [...devices.values()]) if (live.ref.gateway === gateway) void this.close(live.ref);
      }
    };
  }

  async open(ref: ConnectionRef): Promise<{ inboxHead: number }> {
    let devices = this.devices.get(ref.user);
    const previous = devices?.get(ref.device);
    if (!previous && devices && devices.size >= this.maxConnectionsPerUser) {
      throw new ParleyError(
        'forbidden',
        'too many connections for this user',
        undefined,
        CloseCode.TooManyConnections,
      );
    }
    if (!devices) {
      devices = new Map();
      this.devices.set(ref.user, devices);
    }
    if (previous) {
      this.presence.drop(previous.subscriber);
      this.links
        .get(previous.ref.gateway)
        ?.close(previous.ref.conn, CloseCode.Replaced, 'replaced by a newer connection');
    }
    const link = () => this.links.get(ref.gateway);
    devices.set(ref.device, {
      ref,
      subscriber: {
        user: ref.user,
        send: (frame) => {
          link()?.send(ref.conn, frame);
          return true;
        },
      },
    });
    await this.presence.connected(ref.user, ref.device, connKey(ref));
    return { inboxHead: await this.chat.inboxHead(ref.user) };
  }

  async close(ref: ConnectionRef): Promise<void> {
    const devices = this.devices.get(ref.user);
    const live = devices?.get(ref.device);
    if (!live || connKey(live.ref) !== connKey(ref)) return;
    devices!.delete(ref.device);
    if (devices!.size === 0) this.devices.delete(ref.user);
    this.presence.drop(live.subscriber);
    await this.presence.disconnected(ref.user, ref.device, connKey(ref));
  }

  async subscribe(ref: ConnectionRef, users: readonly string[]): Promise<PresenceView[]> {
    return this.presence.subscribe(this.live(ref).subscriber, users);
  }

  async unsubscribe(ref: ConnectionRef, users: readonly string[]): Promise<void> {
    this.presence.unsubscribe(this.live(ref).subscriber, users);
  }

  /** Router port: sends a frame to every gateway holding one of `user`'s devices, once per gateway. */
  deliver(user: string, frame: OutboundFrame): void {
    const devices = this.devices.get(user);
    if (!devices) return;
    if (devices.size === 1) {
      for (const live of devices.values()) this.links.get(live.ref.gateway)?.deliver(user, frame);
      return;
    }
    const gateways = new Set<string>();
    for (const live of devices.values()) gateways.add(live.ref.gateway);
    for (const g of gateways) this.links.get(g)?.deliver(user, frame);
  }

  private live(ref: ConnectionRef): Live {
    const live = this.devices.get(ref.user)?.get(ref.device);
    if (!live || connKey(live.ref) !== connKey(ref)) {
      this.log.debug({ user: ref.user }, 'request from a connection no longer registered');
      throw new ParleyError('unauthorized', 'connection is no longer registered');
    }
    return live;
  }
}

function connKey(ref: ConnectionRef): string {
  return `${ref.gateway}/${ref.conn}`;
}
