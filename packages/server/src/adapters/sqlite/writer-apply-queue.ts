/**
 * The writer thread's part of the `DeviceQueue`: a qid is assigned from the device's head and the
 * message stored in the batch's transaction, so qids are distinct even across processes, and the
 * head outlives the messages (a qid is never reused).
 * @module
 */
import type Database from 'better-sqlite3';
import type { DeviceMessage } from '../../ports/device-queue.js';
import type { OpAnswer } from './write-ops.js';

type Statement = Database.Statement<unknown[]>;

/** Messages older than the retention deleted per enqueue at most (a bounded step, as dead letters). */
const PRUNE_CHUNK = 1000;

/** The writer thread's prepared statements of the `to_device` queues. */
export type QueueStatements = Record<
  'queuePrune' | 'queueCount' | 'queueNext' | 'queueInsert' | 'queueAck' | 'queueRemove',
  Statement
>;

export function prepareQueueStatements(db: Database.Database): QueueStatements {
  return {
    queuePrune: db.prepare(
      `DELETE FROM device_messages WHERE rowid IN (
         SELECT rowid FROM device_messages WHERE ts < ? ORDER BY ts LIMIT ${PRUNE_CHUNK})`,
    ),
    queueCount: db.prepare('SELECT count(*) AS n FROM device_messages WHERE user = ? AND device = ?'),
    queueNext: db.prepare(
      `INSERT INTO device_queue_heads (user, device, head) VALUES (?, ?, 1)
       ON CONFLICT (user, device) DO UPDATE SET head = head + 1 RETURNING head`,
    ),
    queueInsert: db.prepare(
      `INSERT INTO device_messages (user, device, qid, sender, sender_device, body, ts)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    queueAck: db.prepare('DELETE FROM device_messages WHERE user = ? AND device = ? AND qid <= ?'),
    queueRemove: db.prepare('DELETE FROM device_messages WHERE user = ? AND device = ?'),
  };
}

/**
 * Deletes messages older than `pruneBefore` (so they neither linger nor count towards `max`),
 * then queues the message under the device's next qid; reads back the qid, or null when `max`
 * messages already wait.
 */
export function enqueueDeviceMessage(
  s: QueueStatements,
  user: string,
  device: string,
  m: Omit<DeviceMessage, 'qid'>,
  max: number,
  pruneBefore: number,
): OpAnswer {
  s.queuePrune.run(pruneBefore);
  if ((s.queueCount.get(user, device) as { n: number }).n >= max) return { rows: 0, value: null };
  const qid = (s.queueNext.get(user, device) as { head: number }).head;
  s.queueInsert.run(user, device, qid, m.from, m.fromDevice, m.body, m.ts);
  return { rows: 1, value: qid };
}
