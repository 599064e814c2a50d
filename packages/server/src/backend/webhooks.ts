import { HttpWebhookSender } from '../adapters/http/webhook-sender.js';
import type { Config } from '../config/schema.js';
import { WebhookDispatcher } from '../domain/webhook-dispatcher.js';
import { WebhookPublisher } from '../domain/webhook-publisher.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { MessageStore } from '../ports/message-store.js';
import type { WebhookDeadLetters, WebhookQueue } from '../ports/webhooks.js';

/** The webhook publisher and dispatcher of a process; absent when no endpoint is configured. */
export interface Webhooks {
  publisher: WebhookPublisher;
  dispatcher: WebhookDispatcher;
}

/**
 * Builds webhooks from the configuration, over the mode's queue and dead-letter store: the
 * publisher (every process reports events) and the dispatcher (started only where the `webhooks`
 * role runs). Undefined without `webhookUrls`.
 */
export function buildWebhooks(d: {
  config: Config;
  queue: WebhookQueue;
  deadLetters: WebhookDeadLetters;
  messages: Pick<MessageStore, 'getMany'>;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
}): Webhooks | undefined {
  const { config } = d;
  if (config.webhookUrls.length === 0) return undefined;
  if (!config.webhookSecret) throw new Error('webhookUrls needs webhookSecret: every webhook is signed');
  const log = d.log.child({ stage: 'webhooks' });
  const observers = d.metrics.webhookObservers();
  const events = new Set(config.webhookEvents);
  const endpoints = config.webhookUrls.map((url) => ({
    url,
    events,
    includeBodies: config.webhookIncludeBodies,
  }));
  const publisher = new WebhookPublisher(d.queue, endpoints, log, observers.publish, d.messages);
  const sender = new HttpWebhookSender({ secret: config.webhookSecret, timeoutMs: config.webhookTimeoutMs });
  const dispatcher = new WebhookDispatcher(
    { queue: d.queue, deadLetters: d.deadLetters, sender, clock: d.clock, log, observer: observers.dispatch },
    { retries: config.webhookRetries, retryMaxMs: config.webhookRetryMaxMs },
  );
  return { publisher, dispatcher };
}
