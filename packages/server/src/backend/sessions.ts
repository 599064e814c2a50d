import { CloseCode } from '@parley/protocol';
import type { Chat } from '../domain/chat.js';
import { ParleyError } from '../domain/errors.js';
import type { PresenceService } from '../domain/presence.js';
import type { OutboundFrame, Router } from '../ports/router.js';
import type { ConnectionRef, GatewayLink, PresenceView, SessionsApi } from '../ports/sessions.js';
import { connKey, DeviceTable } from './device-table.js';

/**
 * The live-device table of one backend, and its router. It knows, for every user, which connection
 * holds each device and on which gateway, so it can replace a device's older connection (4409)
 * even on another worker, cap connections per user (4429), route live frames only to the gateways
 * that hold the user's devices, and address presence events to single connections.
 */
export class SessionRegistry implements SessionsApi, Router {
  private readonly links = new Map<string, GatewayLink>();
  private readonly devices = new DeviceTable();

  constructor(
    private readonly chat: Pick<Chat, 'inboxHead'>,
    private readonly presence: PresenceService,
    private readonly maxConnectionsPerUser: number,
  ) {}

  /** Makes a gateway reachable; returns a function that detaches it (dropping its connections). */
  attach(gateway: string, link: GatewayLink): () => void {
    this.links.set(gateway, link);
    return () => {
      this.links.delete(gateway);
      for (const live of [...this.devices.all()]) if (live.ref.gateway === gateway) void this.close(live.ref);
    };
  }

  async open(ref: ConnectionRef): Promise<{ inboxHead: number }> {
    const devices = this.devices.devices(ref.user);
    const previous = devices?.get(ref.device);
    if (!previous && devices && devices.size >= this.maxConnectionsPerUser) {
      throw new ParleyError(
        'forbidden',
        'too many connections for this user',
        undefined,
        CloseCode.TooManyConnections,
      );
    }
    if (previous) {
      this.presence.drop(previous.subscriber);
      this.links
        .get(previous.ref.gateway)
        ?.close(previous.ref.conn, CloseCode.Replaced, 'replaced by a newer connection');
    }
    this.devices.put(ref, () => this.links.get(ref.gateway));
    await this.presence.connected(ref.user, ref.device, connKey(ref));
    return { inboxHead: await this.chat.inboxHead(ref.user) };
  }

  async close(ref: ConnectionRef): Promise<void> {
    const live = this.devices.remove(ref);
    if (!live) return;
    this.presence.drop(live.subscriber);
    await this.presence.disconnected(ref.user, ref.device, connKey(ref));
  }

  /**
   * Ends every session still registered, as if each connection had closed: on shutdown the
   * sockets' own closes arrive too late (after the store is closed), so their users would be
   * left without `last_seen`.
   */
  async closeAll(): Promise<void> {
    await Promise.all([...this.devices.all()].map((live) => this.close(live.ref)));
  }

  async subscribe(ref: ConnectionRef, users: readonly string[]): Promise<PresenceView[]> {
    return this.presence.subscribe(this.devices.live(ref).subscriber, users);
  }

  async unsubscribe(ref: ConnectionRef, users: readonly string[]): Promise<void> {
    this.presence.unsubscribe(this.devices.live(ref).subscriber, users);
  }

  /** Router port: sends a frame to every gateway holding one of `user`'s devices, once per gateway. */
  deliver(user: string, frame: OutboundFrame): void {
    const devices = this.devices.devices(user);
    if (!devices) return;
    if (devices.size === 1) {
      for (const live of devices.values()) this.links.get(live.ref.gateway)?.deliver(user, frame);
      return;
    }
    const gateways = new Set<string>();
    for (const live of devices.values()) gateways.add(live.ref.gateway);
    for (const g of gateways) this.links.get(g)?.deliver(user, frame);
  }
}
