/**
 * An event sent to many recipients whose frames differ only in a short head (`{"type":"message",
 * "inbox":N,`): the rest, the tail, is encoded once and shared by every recipient's frame, so a
 * group message is framed once, not once per member.
 */
export interface SharedTailFrame {
  /** The per-recipient start of the JSON text (ASCII). */
  readonly head: string;
  /** The shared rest of the JSON text, UTF-8 encoded once. */
  readonly tail: Buffer;
}

/** A frame ready to be written: plain JSON text, or a shared-tail frame. */
export type OutboundFrame = string | SharedTailFrame;

/**
 * Live delivery to a user's connected devices. Best effort: the durable inbox is the source of
 * truth, and a device that misses a live frame sees the gap in `inbox` numbers and syncs.
 * Embedded: the session registry routes to the gateway holding each device. Cluster: the
 * connection registry does the same across nodes.
 */
export interface Router {
  /** Sends an encoded frame to every live device of `user`. */
  deliver(user: string, frame: OutboundFrame): void;
}
