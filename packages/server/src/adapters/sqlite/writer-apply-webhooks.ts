/**
 * The writer thread's part of the webhook queue and its dead letters: deliveries are rows of
 * `webhook_jobs` (as JSON, keyed by endpoint and conversation or user), letters rows of
 * `webhook_dead_letters`, pruned by age as new ones come (as push's are).
 * @module
 */
import type Database from 'better-sqlite3';
import type { WebhookDeadLetter, WebhookDelivery } from '../../ports/webhooks.js';
import { deliveryKey } from '../../ports/webhooks.js';
import type { OpAnswer } from './write-ops.js';

type Statement = Database.Statement<unknown[]>;

/** How long a webhook dead letter is kept (as push's). */
const RETENTION_MS = 30 * 24 * 3600 * 1000;

export type WebhookStatements = Record<
  'webhookInsert' | 'webhookDelete' | 'webhookLetterAdd' | 'webhookLetterRemove' | 'webhookLetterPrune',
  Statement
>;

export function prepareWebhookStatements(db: Database.Database): WebhookStatements {
  return {
    webhookInsert: db.prepare('INSERT INTO webhook_jobs (key, delivery_json) VALUES (?, ?)'),
    webhookDelete: db.prepare('DELETE FROM webhook_jobs WHERE id = ?'),
    webhookLetterAdd: db.prepare(
      `INSERT INTO webhook_dead_letters (id, letter_json, ts) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET letter_json = excluded.letter_json, ts = excluded.ts`,
    ),
    webhookLetterRemove: db.prepare('DELETE FROM webhook_dead_letters WHERE id = ?'),
    webhookLetterPrune: db.prepare(
      `DELETE FROM webhook_dead_letters WHERE id IN (
         SELECT id FROM webhook_dead_letters WHERE ts < ? ORDER BY ts LIMIT 1000)`,
    ),
  };
}

export function enqueueWebhooks(s: WebhookStatements, deliveries: readonly WebhookDelivery[]): OpAnswer {
  for (const d of deliveries) s.webhookInsert.run(deliveryKey(d), JSON.stringify(d));
  return deliveries.length;
}

export function deleteWebhooks(s: WebhookStatements, ids: readonly number[]): OpAnswer {
  let n = 0;
  for (const id of ids) n += s.webhookDelete.run(id).changes;
  return n;
}

export function addWebhookLetters(s: WebhookStatements, letters: readonly WebhookDeadLetter[]): OpAnswer {
  if (letters.length === 0) return 0;
  for (const l of letters) s.webhookLetterAdd.run(l.id, JSON.stringify(l), l.ts);
  s.webhookLetterPrune.run(Math.max(...letters.map((l) => l.ts)) - RETENTION_MS);
  return letters.length;
}

export function removeWebhookLetters(s: WebhookStatements, ids: readonly string[]): OpAnswer {
  let n = 0;
  for (const id of new Set(ids)) n += s.webhookLetterRemove.run(id).changes;
  return n;
}
