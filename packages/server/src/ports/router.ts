/**
 * Live delivery to a user's connected devices. Best effort: the durable inbox is the source of
 * truth, and a device that misses a live frame sees the gap in `inbox` numbers and syncs.
 * Embedded: the gateway's own connection table. Cluster: the connection registry routes to the
 * gateway that holds each device.
 */
export interface Router {
  /** Sends an already-encoded frame to every live device of `user`. */
  deliver(user: string, frame: string): void;
}
