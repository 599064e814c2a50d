/**
 * Best-effort messages between the processes of a deployment: live frames to the gateway that
 * holds a device, typing and presence events, replies to requests that crossed the log. Nothing
 * durable travels here (a lost live frame is recovered by the inbox's sync); a message published
 * while nobody listens on its channel is dropped.
 */
export interface MessageBus {
  /** Sends to every current subscriber of `channel`; resolves once the bus has it. */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Delivers the channel's messages to `handler`, those of one publisher in the order published;
   * resolves once subscribed, with a function that unsubscribes.
   */
  subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>>;
}
