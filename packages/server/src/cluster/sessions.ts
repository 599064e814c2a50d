import { CloseCode } from '@parley/protocol';
import { connKey, DeviceTable } from '../backend/device-table.js';
import { ParleyError } from '../domain/errors.js';
import type { PresenceService } from '../domain/presence.js';
import type { InboxStore } from '../ports/inbox-store.js';
import type { Logger } from '../ports/logger.js';
import type { MessageBus } from '../ports/message-bus.js';
import type { PresencePort } from '../ports/presence.js';
import type { OutboundFrame, Router } from '../ports/router.js';
import type { ConnectionRef, GatewayLink, PresenceView, SessionsApi } from '../ports/sessions.js';
import type { GatewayCommand } from './wire.js';

/** The bus channel of a gateway. */
export const gatewayChannel = (gateway: string) => `gw:${gateway}`;

/**
 * The session registry of a cluster process: the devices connected here, and — through the
 * presence table in Redis, which knows every device's connection deployment-wide — the routes to
 * the others. A newer connection of a device replaces the older one wherever it is (4409), the
 * per-user cap counts devices on every process (4429), and a live frame goes to each process
 * holding one of the user's devices, over the bus.
 */
export class ClusterSessions implements SessionsApi, Router {
  private readonly links = new Map<string, GatewayLink>();
  private readonly devices = new DeviceTable();
  private readonly subscriptions: Promise<() => Promise<void>>[] = [];
  /** Live frames waiting to be routed at the end of this turn of the event loop. */
  private readonly outgoing: { user: string; frame: OutboundFrame }[] = [];

  constructor(
    private readonly presence: PresenceService,
    private readonly table: PresencePort,
    private readonly inbox: InboxStore,
    private readonly bus: MessageBus,
    private readonly maxConnectionsPerUser: number,
    private readonly log: Logger,
  ) {}

  /** Attaches a gateway of this process and listens for commands addressed to it (see `ready`). */
  attach(gateway: string, link: GatewayLink): void {
    this.links.set(gateway, link);
    this.subscriptions.push(
      this.bus.subscribe(gatewayChannel(gateway), (text) => {
        const c = JSON.parse(text) as GatewayCommand;
        if (c.t === 'deliver') for (const d of c.frames) link.deliver(d.user, d.frame);
        else if (c.t === 'send') link.send(c.conn, c.frame);
        else link.close(c.conn, c.code, c.reason);
      }),
    );
  }

  /** Resolves once every attached gateway listens on the bus. */
  async ready(): Promise<void> {
    await Promise.all(this.subscriptions);
  }

  /** Stops listening for every gateway. */
  async detachAll(): Promise<void> {
    for (const off of await Promise.all(this.subscriptions.splice(0))) await off();
    this.links.clear();
  }

  async open(ref: ConnectionRef): Promise<{ inboxHead: number }> {
    const everywhere = (await this.table.connections([ref.user])).get(ref.user) ?? new Map<string, string>();
    const previous = everywhere.get(ref.device);
    if (previous === undefined && everywhere.size >= this.maxConnectionsPerUser)
      throw new ParleyError(
        'forbidden',
        'too many connections for this user',
        undefined,
        CloseCode.TooManyConnections,
      );
    if (previous !== undefined && previous !== connKey(ref)) {
      const [gateway, conn] = splitKey(previous);
      this.command(gateway, {
        t: 'close',
        conn,
        code: CloseCode.Replaced,
        reason: 'replaced by a newer connection',
      });
    }
    const old = this.devices.devices(ref.user)?.get(ref.device);
    if (old) this.presence.drop(old.subscriber);
    this.devices.put(ref, () => this.links.get(ref.gateway));
    await this.presence.connected(ref.user, ref.device, connKey(ref));
    return { inboxHead: await this.inbox.head(ref.user) };
  }

  async close(ref: ConnectionRef): Promise<void> {
    const live = this.devices.remove(ref);
    if (live) this.presence.drop(live.subscriber);
    await this.presence.disconnected(ref.user, ref.device, connKey(ref));
  }

  /**
   * Ends every session this process holds, as if each connection had closed: on shutdown the
   * sockets' own closes arrive after the engines are closed, and their users would keep showing
   * online (in Redis) without a `last_seen`.
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

  /**
   * Router port: sends the frame to every process holding one of the user's devices. Frames of
   * the same turn of the event loop are routed together: one lookup of their users' devices, and
   * one bus message per process.
   */
  deliver(user: string, frame: OutboundFrame): void {
    this.outgoing.push({ user, frame });
    if (this.outgoing.length === 1) setImmediate(() => this.routeOutgoing());
  }

  private routeOutgoing(): void {
    const frames = this.outgoing.splice(0);
    void this.route(frames).catch((err) =>
      this.log.warn(
        { err: String(err), frames: frames.length },
        'live delivery failed (the devices will sync)',
      ),
    );
  }

  private async route(frames: readonly { user: string; frame: OutboundFrame }[]): Promise<void> {
    const routes = await this.table.connections([...new Set(frames.map((f) => f.user))]);
    const remote = new Map<string, { user: string; frame: string }[]>();
    for (const { user, frame } of frames) {
      const conns = routes.get(user);
      if (!conns) continue;
      for (const g of new Set([...conns.values()].map((k) => splitKey(k)[0]))) {
        const local = this.links.get(g);
        if (local) local.deliver(user, frame);
        else {
          const list = remote.get(g) ?? [];
          list.push({ user, frame: frame.toString() });
          remote.set(g, list);
        }
      }
    }
    for (const [g, list] of remote) this.command(g, { t: 'deliver', frames: list });
  }

  private command(gateway: string, c: GatewayCommand): void {
    const local = this.links.get(gateway);
    if (local) {
      if (c.t === 'close') local.close(c.conn, c.code, c.reason);
      return;
    }
    void this.bus
      .publish(gatewayChannel(gateway), JSON.stringify(c))
      .catch((err) => this.log.warn({ err: String(err) }, 'gateway command not sent'));
  }
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}
