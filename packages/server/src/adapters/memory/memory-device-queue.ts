/**
 * The in-memory `DeviceQueue`: the reference behaviour `device-queue.suite.ts` pins down, for
 * domain tests. Not durable.
 * @module
 */
import { DEVICE_QUEUE_RETENTION_MS, type DeviceMessage, type DeviceQueue } from '../../ports/device-queue.js';

interface Queue {
  /** The highest qid ever given to the device: kept when its messages go, so none is reused. */
  head: number;
  /** Waiting messages, in qid order. */
  messages: DeviceMessage[];
}

const copy = (m: DeviceMessage): DeviceMessage => ({
  qid: m.qid,
  from: m.from,
  fromDevice: m.fromDevice,
  body: m.body,
  ts: m.ts,
});

/** Each device's `to_device` queue, in memory. */
export class MemoryDeviceQueue implements DeviceQueue {
  /** `user device` → its queue. */
  private readonly queues = new Map<string, Queue>();

  async enqueue(
    user: string,
    device: string,
    message: Omit<DeviceMessage, 'qid'>,
    max: number,
  ): Promise<number | null> {
    const q = this.queue(user, device);
    // Messages past the retention are dropped as new ones come (as the embedded store prunes).
    const floor = message.ts - DEVICE_QUEUE_RETENTION_MS;
    q.messages = q.messages.filter((m) => m.ts >= floor);
    if (q.messages.length >= max) return null;
    const qid = ++q.head;
    q.messages.push(copy({ ...message, qid }));
    return qid;
  }

  async list(user: string, device: string, after: number, limit: number): Promise<DeviceMessage[]> {
    const q = this.queues.get(key(user, device));
    if (!q) return [];
    return q.messages
      .filter((m) => m.qid > after)
      .slice(0, limit)
      .map(copy);
  }

  async ack(user: string, device: string, upto: number): Promise<void> {
    const q = this.queues.get(key(user, device));
    if (q) q.messages = q.messages.filter((m) => m.qid > upto);
  }

  async remove(user: string, device: string): Promise<void> {
    const q = this.queues.get(key(user, device));
    if (q) q.messages = [];
  }

  private queue(user: string, device: string): Queue {
    let q = this.queues.get(key(user, device));
    if (!q) {
      q = { head: 0, messages: [] };
      this.queues.set(key(user, device), q);
    }
    return q;
  }
}

const key = (user: string, device: string) => `${user}\u0000${device}`;
