/** A user's presence changed (online ↔ offline), somewhere in the deployment. */
export interface PresenceChange {
  user: string;
  status: 'online' | 'offline';
  /** When it happened; for `offline`, the user's last seen time. */
  ts: number;
}

/**
 * Which devices are connected, deployment-wide. Soft state: losing it loses no message, and it may
 * lag by seconds. Embedded: a table in the process. Cluster: per-device keys with a TTL refreshed by
 * heartbeats, and pub/sub for changes.
 */
export interface PresencePort {
  /** Records a live connection of a device; reports whether the user just came online. */
  connected(user: string, device: string, connection: string, ts: number): Promise<boolean>;
  /** Records a connection gone (ignored when it is not the device's current one); reports whether the user just went offline. */
  disconnected(user: string, device: string, connection: string, ts: number): Promise<boolean>;
  /** The users among `users` with at least one live device. */
  online(users: readonly string[]): Promise<Set<string>>;
  /**
   * The live connections of `users`, deployment-wide: user → device → connection (users with no
   * live device are absent). What routes a live frame to the processes holding a user's devices.
   */
  connections(users: readonly string[]): Promise<Map<string, Map<string, string>>>;
  /** Every online↔offline transition, wherever it happened. */
  onChange(listener: (change: PresenceChange) => void): void;
}
