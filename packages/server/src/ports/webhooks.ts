/**
 * Webhooks: events an app backend receives over HTTP. Events are queued durably (embedded: a table
 * in the store; cluster: the Kafka `webhooks` topic, consumed by the `webhooks` role), one
 * delivery per endpoint, keyed by endpoint and conversation (or user), so each endpoint gets one
 * conversation's events in order.
 * @module
 */
import type { DeadLetterStore, JobQueue } from './job-queue.js';

export const WEBHOOK_EVENT_TYPES = [
  'message.stored',
  'group.changed',
  'user.online',
  'user.offline',
  'device.registered',
  'device.revoked',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * One event as an endpoint receives it (the POST's JSON body). The id is derived from what
 * happened (a message's conversation and number, a user and a time), so an event queued twice
 * (after a crash) carries the same id both times: receivers deduplicate by it.
 */
export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  /** When it happened (ms since the epoch). */
  ts: number;
  data: Record<string, unknown>;
}

/** One event on its way to one endpoint. */
export interface WebhookDelivery {
  /** The endpoint's URL. */
  endpoint: string;
  /** What orders deliveries: the conversation, or the user for presence and device events. */
  key: string;
  event: WebhookEvent;
}

/** The queue of deliveries: jobs of one endpoint and key are handed out in order. */
export type WebhookQueue = JobQueue<WebhookDelivery>;

/** The ordering key of a delivery in a queue: its endpoint and key. */
export function deliveryKey(d: WebhookDelivery): string {
  return `${d.endpoint} ${d.key}`;
}

/** A delivery given up on, kept for `parley webhooks dlq`. */
export interface WebhookDeadLetter {
  /** A ULID, increasing in the order letters were added. */
  id: string;
  delivery: WebhookDelivery;
  /** The last failure: the endpoint's status, or the error. */
  reason: string;
  attempts: number;
  /** When it was dead-lettered. */
  ts: number;
}

export type WebhookDeadLetters = DeadLetterStore<WebhookDeadLetter>;

/** How one POST went. `retry`: worth trying again (any failure of a webhook is). */
export type WebhookResult =
  | { status: 'delivered' }
  | { status: 'retry'; reason: string; retryAfterMs?: number };

/** Posts one event to one endpoint, signed. */
export interface WebhookSender {
  post(endpoint: string, event: WebhookEvent): Promise<WebhookResult>;
}
