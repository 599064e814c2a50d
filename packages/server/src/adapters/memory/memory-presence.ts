import type { PresenceChange, PresencePort } from '../../ports/presence.js';

/**
 * Presence in one process: the devices of each user that have a live connection. Several
 * instances may share one table (`peer()`), as the processes of a deployment share Redis: a
 * transition made through any of them reaches the listeners of all.
 */
export class MemoryPresence implements PresencePort {
  private readonly devices: Map<string, Map<string, string>>;
  private readonly listeners: ((c: PresenceChange) => void)[];

  /** A new table, or, given `shared`, another instance over `shared`'s table and listeners. */
  constructor(shared?: MemoryPresence) {
    this.devices = shared ? shared.devices : new Map();
    this.listeners = shared ? shared.listeners : [];
  }

  /** Another instance over the same table, as another process of the deployment has. */
  peer(): MemoryPresence {
    return new MemoryPresence(this);
  }

  async connected(user: string, device: string, connection: string, ts: number): Promise<boolean> {
    let d = this.devices.get(user);
    const cameOnline = !d || d.size === 0;
    if (!d) {
      d = new Map();
      this.devices.set(user, d);
    }
    d.set(device, connection);
    if (cameOnline) this.emit({ user, status: 'online', ts });
    return cameOnline;
  }

  async disconnected(user: string, device: string, connection: string, ts: number): Promise<boolean> {
    const d = this.devices.get(user);
    if (!d || d.get(device) !== connection) return false;
    d.delete(device);
    if (d.size > 0) return false;
    this.devices.delete(user);
    this.emit({ user, status: 'offline', ts });
    return true;
  }

  async online(users: readonly string[]): Promise<Set<string>> {
    return new Set(users.filter((u) => (this.devices.get(u)?.size ?? 0) > 0));
  }

  async connections(users: readonly string[]): Promise<Map<string, Map<string, string>>> {
    const out = new Map<string, Map<string, string>>();
    for (const u of users) {
      const d = this.devices.get(u);
      if (d && d.size > 0) out.set(u, new Map(d));
    }
    return out;
  }

  onChange(listener: (change: PresenceChange) => void): void {
    this.listeners.push(listener);
  }

  private emit(change: PresenceChange): void {
    for (const l of this.listeners) l(change);
  }
}
