/**
 * The `DeviceQueue` on Cassandra (table `device_messages`, see `schema.ts`).
 * @module
 */
import { ParleyError } from '@parley/server/domain/errors';
import type { DeviceMessage, DeviceQueue } from '@parley/server/ports/device-queue';
import { backoff, type Cql, long, num, type Query } from './cql.js';

/** Messages one conditional batch queues at most (this process's enqueues to one device, together). */
const GROUP_MESSAGES = 64;
/** Body characters one conditional batch carries at most (beyond its first message). */
const GROUP_CHARS = 256 * 1024;
/** Compare-and-set attempts of one batch against other processes' enqueues to the same device. */
const CAS_ATTEMPTS = 32;

interface Pending {
  message: Omit<DeviceMessage, 'qid'>;
  max: number;
  resolve: (qid: number | null) => void;
  reject: (err: unknown) => void;
}

/** A device's queue state: the highest qid given, and the qid up to which messages are gone. */
interface QueueState {
  head: number;
  acked: number;
}

/**
 * The `to_device` queues on Cassandra. A device's enqueues are one conditional batch on its
 * partition: move the static `head` from the value read to head + n (compare and set) and insert
 * the n messages (with the retention's TTL), all or nothing, retried on contention with the head
 * the failed attempt reports. This process's concurrent enqueues to one device wait for the batch
 * in flight and go together in the next, so contention is only between processes.
 *
 * `max` is enforced on head - acked, the messages given and not acknowledged; when that reaches
 * `max`, the rows are counted (messages may have expired) and `acked` moves up past those gone.
 * Enqueues from several processes at once may pass `max` by the number in flight; a qid is never
 * given twice, and a refused message stores nothing.
 */
export class CassandraDeviceQueue implements DeviceQueue {
  /** `user device` → enqueues waiting for the batch in flight (present while one is). */
  private readonly waiting = new Map<string, Pending[]>();

  constructor(
    private readonly cql: Cql,
    /** Messages expire this long after they are queued (the retention), in seconds. */
    private readonly ttlSeconds: number,
  ) {}

  enqueue(
    user: string,
    device: string,
    message: Omit<DeviceMessage, 'qid'>,
    max: number,
  ): Promise<number | null> {
    return new Promise((resolve, reject) => {
      const m = { from: message.from, fromDevice: message.fromDevice, body: message.body, ts: message.ts };
      const pending: Pending = { message: m, max, resolve, reject };
      const key = `${user}\u0000${device}`;
      const queue = this.waiting.get(key);
      if (queue) queue.push(pending);
      else {
        this.waiting.set(key, [pending]);
        void this.drain(user, device, key);
      }
    });
  }

  async list(user: string, device: string, after: number, limit: number): Promise<DeviceMessage[]> {
    const rows = await this.cql.all(
      `SELECT qid, sender, sender_device, body, ts FROM ${this.cql.ks}.device_messages
       WHERE user = ? AND device = ? AND qid > ? LIMIT ?`,
      [user, device, long(after), limit],
    );
    return rows
      .filter((r) => r.qid !== null)
      .map((r) => ({
        qid: num(r.qid),
        from: r.sender as string,
        fromDevice: r.sender_device as string,
        body: r.body as string,
        ts: num(r.ts),
      }));
  }

  /** One range delete and the `acked` mark (never past the head), in one mutation. */
  async ack(user: string, device: string, upto: number): Promise<void> {
    const { head, acked } = await this.state(user, device);
    if (upto <= acked) return;
    await this.cql.batch([
      {
        query: `DELETE FROM ${this.cql.ks}.device_messages WHERE user = ? AND device = ? AND qid <= ?`,
        params: [user, device, long(upto)],
      },
      ...this.markAcked(user, device, acked, Math.min(upto, head)),
    ]);
  }

  /** Deletes every row by range (the partition's statics, the head among them, stay). */
  async remove(user: string, device: string): Promise<void> {
    const { head, acked } = await this.state(user, device);
    await this.cql.batch([
      {
        query: `DELETE FROM ${this.cql.ks}.device_messages WHERE user = ? AND device = ? AND qid >= 0`,
        params: [user, device],
      },
      ...this.markAcked(user, device, acked, head),
    ]);
  }

  /** Queues the waiting enqueues of one device, a batch at a time, until none is left. */
  private async drain(user: string, device: string, key: string): Promise<void> {
    const queue = this.waiting.get(key)!;
    while (queue.length > 0) {
      const group = takeGroup(queue);
      try {
        const qids = await this.place(user, device, group);
        for (const [i, p] of group.entries()) p.resolve(qids[i] ?? null);
      } catch (err) {
        for (const p of group) p.reject(err);
      }
    }
    this.waiting.delete(key);
  }

  /** Gives each message of the group a qid (null past its `max`) and stores them in one CAS batch. */
  private async place(user: string, device: string, group: readonly Pending[]): Promise<(number | null)[]> {
    const state = await this.state(user, device);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      let waiting = state.head - state.acked;
      if (group.some((p, i) => waiting + i >= p.max))
        waiting = await this.countWaiting(user, device, state, group);
      const qids = assign(group, state.head, waiting);
      const placed = qids.filter((q) => q !== null).length;
      if (placed === 0) return qids;
      const rs = await this.cql.lwtBatch([
        this.moveHead(user, device, state.head, state.head + placed),
        ...group.flatMap((p, i) =>
          qids[i] === null ? [] : [this.insert(user, device, qids[i]!, p.message)],
        ),
      ]);
      if (rs.wasApplied()) return qids;
      state.head = num(rs.first()?.head);
      await backoff(attempt);
    }
    throw new ParleyError('unavailable', 'to_device queue busy; retry');
  }

  /**
   * Counts the messages still stored after `acked` (up to the group's largest `max`), and moves
   * `acked` up to just before the first of them (or to the head when none is left): messages
   * between were deleted or expired, and no qid at or below the head is ever written again.
   */
  private async countWaiting(
    user: string,
    device: string,
    state: QueueState,
    group: readonly Pending[],
  ): Promise<number> {
    const limit = Math.max(...group.map((p) => p.max));
    const qids = (
      await this.cql.all(
        `SELECT qid FROM ${this.cql.ks}.device_messages WHERE user = ? AND device = ? AND qid > ? LIMIT ?`,
        [user, device, long(state.acked), Math.max(1, limit)],
      )
    )
      .filter((r) => r.qid !== null)
      .map((r) => num(r.qid));
    const floor = Math.min(state.head, qids.length > 0 ? qids[0]! - 1 : state.head);
    const mark = this.markAcked(user, device, state.acked, floor);
    if (mark.length > 0) await this.cql.run(mark[0]!.query, mark[0]!.params);
    state.acked = Math.max(state.acked, floor);
    return qids.length;
  }

  private async state(user: string, device: string): Promise<QueueState> {
    const r = await this.cql.one(
      `SELECT head, acked FROM ${this.cql.ks}.device_messages WHERE user = ? AND device = ? LIMIT 1`,
      [user, device],
    );
    return { head: num(r?.head), acked: num(r?.acked) };
  }

  /** The compare-and-set of the head (a device never queued to has none). */
  private moveHead(user: string, device: string, from: number, to: number): Query {
    return {
      query: `UPDATE ${this.cql.ks}.device_messages SET head = ? WHERE user = ? AND device = ? IF head = ${
        from === 0 ? 'null' : '?'
      }`,
      params: [long(to), user, device, ...(from === 0 ? [] : [long(from)])],
    };
  }

  private insert(user: string, device: string, qid: number, m: Omit<DeviceMessage, 'qid'>): Query {
    return {
      query: `INSERT INTO ${this.cql.ks}.device_messages (user, device, qid, sender, sender_device, body, ts)
              VALUES (?, ?, ?, ?, ?, ?, ?) USING TTL ?`,
      params: [user, device, long(qid), m.from, m.fromDevice, m.body, long(m.ts), this.ttlSeconds],
    };
  }

  /** The write moving `acked` to `to` (a max-register: the value is its timestamp), if that is forward. */
  private markAcked(user: string, device: string, acked: number, to: number): Query[] {
    if (to <= acked) return [];
    return [
      {
        query: `UPDATE ${this.cql.ks}.device_messages USING TIMESTAMP ? SET acked = ? WHERE user = ? AND device = ?`,
        params: [long(to), long(to), user, device],
      },
    ];
  }
}

/** The next group of waiting enqueues: at most `GROUP_MESSAGES`, and `GROUP_CHARS` of bodies. */
function takeGroup(queue: Pending[]): Pending[] {
  let n = 0;
  let chars = 0;
  while (n < queue.length && n < GROUP_MESSAGES) {
    chars += queue[n]!.message.body.length;
    if (n > 0 && chars > GROUP_CHARS) break;
    n++;
  }
  return queue.splice(0, n);
}

/** Qids from `head` + 1 for the group's messages in order, null for each past its `max`. */
function assign(group: readonly Pending[], head: number, waiting: number): (number | null)[] {
  let next = head;
  let count = waiting;
  return group.map((p) => {
    if (count >= p.max) return null;
    count++;
    return ++next;
  });
}
