import { type AppEvent, CloseCode, encodeEvent } from '@parley/protocol';
import type { DeviceRegistry } from '../domain/devices.js';
import { ParleyError } from '../domain/errors.js';
import type { OperatorPresence, PresenceService, PresenceSubscriber } from '../domain/presence.js';
import type { InboxStore } from '../ports/inbox-store.js';
import type { Logger } from '../ports/logger.js';
import type { PresencePort } from '../ports/presence.js';
import type { OutboundFrame, Router } from '../ports/router.js';
import type {
  ConnectionRef,
  GatewayCommand,
  GatewayLink,
  PresenceView,
  SessionsApi,
  SessionTransport,
} from '../ports/sessions.js';

/**
 * The session registry: every live device of the deployment, one per device (a newer connection
 * replaces the older, 4409, wherever it is), at most `maxConnectionsPerUser` per user (4429), and
 * the router of live frames to the gateways holding a user's devices.
 *
 * One class for every mode. The route table is the `PresencePort`, which knows each device's
 * connection deployment-wide (in-process embedded and with `--workers`, Redis in cluster mode).
 * Gateways attached here (this process's, or the workers' IPC links) are reached directly; with a
 * `SessionTransport` (cluster mode: the bus), gateways of other processes are reached through it,
 * frames of one turn of the event loop in one message per process.
 */
export class SessionRegistry implements SessionsApi, Router {
  private readonly links = new Map<string, GatewayLink>();
  private readonly devices = new DeviceTable();
  private readonly listening: Promise<() => Promise<void>>[] = [];
  /** Live frames for other processes, routed together at the end of this turn. */
  private readonly outgoing: { user: string; frame: OutboundFrame }[] = [];

  constructor(
    private readonly presence: PresenceService,
    private readonly table: PresencePort,
    private readonly inbox: Pick<InboxStore, 'head'>,
    private readonly maxConnectionsPerUser: number,
    private readonly log: Logger,
    /** Admits devices (refusing revoked ones) and records when each was last seen. */
    private readonly deviceRegistry: DeviceRegistry,
    private readonly transport?: SessionTransport,
  ) {}

  /**
   * Makes a gateway reachable (and, with a transport, listens for commands other processes send
   * it; see `ready`). Returns a function that detaches it, ending its sessions.
   */
  attach(gateway: string, link: GatewayLink): () => void {
    this.links.set(gateway, link);
    if (this.transport) this.listening.push(this.transport.listen(gateway, (c) => runCommand(link, c)));
    return () => {
      this.links.delete(gateway);
      for (const live of [...this.devices.all()]) if (live.ref.gateway === gateway) void this.close(live.ref);
    };
  }

  /** Resolves once every attached gateway listens for commands from other processes. */
  async ready(): Promise<void> {
    await Promise.all(this.listening);
  }

  /** Stops listening for every gateway. */
  async detachAll(): Promise<void> {
    for (const off of await Promise.all(this.listening.splice(0))) await off();
    this.links.clear();
  }

  async open(ref: ConnectionRef, issuedAt: number): Promise<{ inboxHead: number }> {
    // Refused as `unauthorized`: the gateway closes a failed connect with 4401.
    await this.deviceRegistry.admit(ref.user, ref.device, issuedAt);
    const everywhere = await this.connectionsOf(ref.user);
    const previous = everywhere.get(ref.device);
    if (previous === undefined && everywhere.size >= this.maxConnectionsPerUser) {
      throw new ParleyError(
        'forbidden',
        'too many connections for this user',
        undefined,
        CloseCode.TooManyConnections,
      );
    }
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
    this.devices.put(ref, issuedAt, () => this.links.get(ref.gateway));
    await this.presence.connected(ref.user, ref.device, connKey(ref));
    return { inboxHead: await this.inbox.head(ref.user) };
  }

  async close(ref: ConnectionRef): Promise<void> {
    const live = this.devices.remove(ref);
    if (!live) return;
    this.presence.drop(live.subscriber);
    await Promise.all([
      this.presence.disconnected(ref.user, ref.device, connKey(ref)),
      this.deviceRegistry.left(ref.user, ref.device, live.issuedAt),
    ]);
  }

  /** Tells the live connection of one device, wherever it is, that `to_device` messages wait. */
  async toDeviceWaiting(user: string, device: string): Promise<void> {
    const key = (await this.connectionsOf(user)).get(device);
    if (key === undefined) return;
    const [gateway, conn] = splitKey(key);
    this.command(gateway, { t: 'to_device', conn });
  }

  /** Closes the live connection of one device (revoked: 4401), wherever it is. */
  async closeDevice(user: string, device: string): Promise<void> {
    const key = (await this.connectionsOf(user)).get(device);
    if (key === undefined) return;
    const [gateway, conn] = splitKey(key);
    this.command(gateway, { t: 'close', conn, code: CloseCode.TokenInvalid, reason: 'device revoked' });
  }

  /**
   * Closes every live connection of a user, wherever it is (4401: the client needs a new token to
   * come back, so an app that stops issuing them keeps the user out). Resolves with how many.
   */
  async disconnectUser(user: string): Promise<number> {
    const live = await this.connectionsOf(user);
    for (const key of live.values()) {
      const [gateway, conn] = splitKey(key);
      this.command(gateway, {
        t: 'close',
        conn,
        code: CloseCode.TokenInvalid,
        reason: 'disconnected by the server',
      });
    }
    return live.size;
  }

  /**
   * Sends an app's event to the user's live devices, wherever they are; nothing is stored, and
   * offline devices never see it. Resolves with how many devices were live.
   */
  async publishEvent(user: string, event: AppEvent): Promise<number> {
    const live = await this.connectionsOf(user);
    if (live.size > 0) this.deliver(user, encodeEvent(event));
    return live.size;
  }

  /** The presence of `users` as the operator sees it (see `PresenceService.current`). */
  presenceOf(users: readonly string[]): Promise<OperatorPresence[]> {
    return this.presence.current(users);
  }

  /**
   * Ends every session this process holds, as if each connection had closed: on shutdown the
   * sockets' own closes arrive too late (after the store is closed), so their users would be
   * left without `last_seen` (and, in cluster mode, showing online in Redis until it expires).
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
   * Router port: the frame goes at once to every attached gateway holding one of the user's
   * devices, once per gateway; with a transport, the gateways of other processes get it at the
   * end of this turn.
   */
  deliver(user: string, frame: OutboundFrame): void {
    const devices = this.devices.devices(user);
    if (devices) {
      if (devices.size === 1) {
        for (const live of devices.values()) this.links.get(live.ref.gateway)?.deliver(user, frame);
      } else {
        const gateways = new Set<string>();
        for (const live of devices.values()) gateways.add(live.ref.gateway);
        for (const g of gateways) this.links.get(g)?.deliver(user, frame);
      }
    }
    if (!this.transport) return;
    this.outgoing.push({ user, frame });
    if (this.outgoing.length === 1) setImmediate(() => this.routeOutgoing());
  }

  /** The user's devices and the connection holding each: deployment-wide with a transport. */
  private async connectionsOf(user: string): Promise<ReadonlyMap<string, string>> {
    if (this.transport) return (await this.table.connections([user])).get(user) ?? new Map();
    const here = new Map<string, string>();
    for (const [device, live] of this.devices.devices(user) ?? []) here.set(device, connKey(live.ref));
    return here;
  }

  private routeOutgoing(): void {
    const frames = this.outgoing.splice(0);
    void this.routeRemote(frames).catch((err) =>
      this.log.warn(
        { err: String(err), frames: frames.length },
        'live delivery failed (the devices will sync)',
      ),
    );
  }

  /** Sends frames to the other processes holding their users' devices: one command per process. */
  private async routeRemote(frames: readonly { user: string; frame: OutboundFrame }[]): Promise<void> {
    const routes = await this.table.connections([...new Set(frames.map((f) => f.user))]);
    const remote = new Map<string, { user: string; frame: string }[]>();
    for (const { user, frame } of frames) {
      const conns = routes.get(user);
      if (!conns) continue;
      for (const g of new Set([...conns.values()].map((k) => splitKey(k)[0]))) {
        if (this.links.has(g)) continue; // delivered at once, in `deliver`
        const list = remote.get(g) ?? [];
        list.push({ user, frame: frameText(frame) });
        remote.set(g, list);
      }
    }
    for (const [g, list] of remote) this.command(g, { t: 'deliver', frames: list });
  }

  /** Runs a command on an attached gateway, or sends it to the process that holds the gateway. */
  private command(gateway: string, c: GatewayCommand): void {
    const local = this.links.get(gateway);
    if (local) {
      runCommand(local, c);
      return;
    }
    if (!this.transport) return;
    void this.transport
      .send(gateway, c)
      .catch((err) => this.log.warn({ err: String(err) }, 'gateway command not sent'));
  }
}

function runCommand(link: GatewayLink, c: GatewayCommand): void {
  if (c.t === 'deliver') for (const d of c.frames) link.deliver(d.user, d.frame);
  else if (c.t === 'send') link.send(c.conn, c.frame);
  else if (c.t === 'to_device') link.toDeviceWaiting(c.conn);
  else link.close(c.conn, c.code, c.reason);
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** A frame as text, for transports that cannot share a tail (the workers' IPC, the bus). */
export function frameText(frame: OutboundFrame): string {
  return typeof frame === 'string' ? frame : frame.head + frame.tail.toString('utf8');
}

/** A live connection as a session registry keeps it: the reference and its presence subscriber. */
interface Live {
  ref: ConnectionRef;
  subscriber: PresenceSubscriber;
  /** When the connection's token was issued (ms): a revocation after it ends the device. */
  issuedAt: number;
}

/** A connection's key, unique in a deployment: `<gateway>/<connection>`. */
function connKey(ref: ConnectionRef): string {
  return `${ref.gateway}/${ref.conn}`;
}

/**
 * The connections this registry holds, one per device of each user (embedded, every device; a
 * cluster process, the ones connected to it).
 */
class DeviceTable {
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
