/**
 * The `DeviceQueue` port: `to_device` messages waiting for one device (key exchange and other
 * end-to-end control messages, opaque to the server). Each device's messages are numbered
 * (`qid`) 1, 2, 3, … in the order they were queued and are deleted only when the device
 * acknowledges them. Conformance: `adapters/conformance/device-queue.suite.ts`.
 * @module
 */

/** One queued message. */
export interface DeviceMessage {
  qid: number;
  from: string;
  fromDevice: string;
  /** Opaque (base64 ciphertext, as the sender gave it). */
  body: string;
  /** When it was queued (ms since the epoch). */
  ts: number;
}

/**
 * How long a message waits for its device: a device that does not come back within it loses
 * them (stores expire or prune older ones).
 */
export const DEVICE_QUEUE_RETENTION_MS = 30 * 24 * 3600 * 1000;

export interface DeviceQueue {
  /**
   * Queues a message for the device; resolves once durable with its qid, which is greater than
   * every qid the device was ever given (numbers are never reused, even after acknowledgement or
   * deletion), or with null, storing nothing, when `max` messages already wait for the device.
   * Concurrent enqueues from several processes get distinct qids (and may, for a moment, leave
   * more than `max` waiting, by at most the enqueues in flight: the cluster store checks the bound
   * before its conditional write).
   */
  enqueue(
    user: string,
    device: string,
    message: Omit<DeviceMessage, 'qid'>,
    max: number,
  ): Promise<number | null>;
  /** Waiting messages with qid > `after`, in qid order, at most `limit`. */
  list(user: string, device: string, after: number, limit: number): Promise<DeviceMessage[]>;
  /** Deletes the device's messages with qid <= `upto`. */
  ack(user: string, device: string, upto: number): Promise<void>;
  /** Deletes the device's queue (it was revoked); a later enqueue still gets a higher qid. */
  remove(user: string, device: string): Promise<void>;
}
