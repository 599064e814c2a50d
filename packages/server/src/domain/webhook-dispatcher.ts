import { monotonicFactory } from 'ulid';
import type { Clock } from '../ports/clock.js';
import type { QueueSubscription, SettledEarly } from '../ports/job-queue.js';
import type { Logger } from '../ports/logger.js';
import {
  deliveryKey,
  type WebhookDeadLetters,
  type WebhookDelivery,
  type WebhookQueue,
  type WebhookResult,
  type WebhookSender,
} from '../ports/webhooks.js';
import { abortableSleep } from './abortable-sleep.js';

/** What the dispatcher reports, for metrics. */
export interface WebhookObserver {
  /** An endpoint took an event; `delaySeconds` from the event to its acceptance. */
  delivered(delaySeconds: number): void;
  retried(): void;
  deadLettered(): void;
}

/** How the dispatcher retries; every field has a default. */
export interface WebhookDispatcherOptions {
  /** Retries after the first attempt before a delivery is dead-lettered (default 6). */
  retries?: number;
  /** Backoff before retry n: up to base·2ⁿ (full jitter), at most `retryMaxMs` (defaults 1,000, 30,000). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Keys (endpoint and conversation) delivered to at once per batch (default 32). */
  concurrency?: number;
}

export interface WebhookDispatcherDeps {
  queue: WebhookQueue;
  deadLetters: WebhookDeadLetters;
  sender: WebhookSender;
  clock: Clock;
  log: Logger;
  observer: WebhookObserver;
}

/** How long a batch runs before its finished deliveries are reported to the queue ahead of it. */
const SETTLE_EARLY_AFTER_MS = 250;

/**
 * Collects a batch's finished deliveries and hands them to the queue's `settled` every
 * `SETTLE_EARLY_AFTER_MS` while the batch goes on, so a crash during a long retry does not post
 * them again; nothing is reported for a batch that ends before the first tick.
 */
class EarlySettlement {
  private pending: WebhookDelivery[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly settled: SettledEarly<WebhookDelivery>) {
    this.timer = setInterval(() => this.flush(), SETTLE_EARLY_AFTER_MS);
    this.timer.unref();
  }

  add(d: WebhookDelivery): void {
    this.pending.push(d);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const done = this.pending;
    this.pending = [];
    this.settled(done);
  }
}

/** Dead-letter ids: sortable, increasing within this process. */
const letterId = monotonicFactory();

/**
 * The webhooks role: takes deliveries from the queue and posts them. One key's deliveries (an
 * endpoint and a conversation or user) are posted one after another, in queue order; different
 * keys go in parallel. A failed post is retried with backoff and jitter (honouring `Retry-After`),
 * then dead-lettered, and the key's next delivery goes on. A batch leaves the queue when all of
 * it is settled, so a crash posts the unsettled ones again (receivers deduplicate by event id).
 */
export class WebhookDispatcher {
  private readonly stopping = new AbortController();
  private subscription: QueueSubscription | null = null;
  private readonly o: Required<WebhookDispatcherOptions>;

  constructor(
    private readonly d: WebhookDispatcherDeps,
    options: WebhookDispatcherOptions = {},
  ) {
    this.o = {
      retries: options.retries ?? 6,
      retryBaseMs: options.retryBaseMs ?? 1_000,
      retryMaxMs: options.retryMaxMs ?? 30_000,
      concurrency: options.concurrency ?? 32,
    };
  }

  async start(): Promise<void> {
    this.subscription = await this.d.queue.consume((batch, settled) => this.handle(batch, settled));
  }

  /** Stops taking deliveries; those waiting for a retry stay queued for the next start. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.subscription?.close();
  }

  /**
   * Settles one batch: each key's deliveries in order, keys in parallel (at most `concurrency`).
   * Deliveries done are reported to the queue early only while the batch goes on for longer than
   * `SETTLE_EARLY_AFTER_MS` (a key retrying): a batch that ends sooner leaves the queue in one
   * write, not one per delivery.
   */
  async handle(
    batch: readonly WebhookDelivery[],
    settled: SettledEarly<WebhookDelivery> = () => {},
  ): Promise<void> {
    const early = new EarlySettlement(settled);
    try {
      await this.deliverAll(batch, (d) => early.add(d));
    } finally {
      early.close();
    }
    if (this.stopping.signal.aborted) throw new Error('webhook dispatcher stopped: batch left queued');
  }

  private async deliverAll(
    batch: readonly WebhookDelivery[],
    done: (d: WebhookDelivery) => void,
  ): Promise<void> {
    const byKey = new Map<string, WebhookDelivery[]>();
    for (const d of batch) {
      const key = deliveryKey(d);
      const list = byKey.get(key);
      if (list) list.push(d);
      else byKey.set(key, [d]);
    }
    const keys = [...byKey.values()];
    const worker = async () => {
      for (let next = keys.shift(); next; next = keys.shift()) {
        for (const d of next) {
          if (this.stopping.signal.aborted) return;
          await this.deliver(d);
          if (!this.stopping.signal.aborted) done(d);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, keys.length) }, worker));
  }

  private async deliver(d: WebhookDelivery): Promise<void> {
    let result: WebhookResult = { status: 'retry', reason: 'not tried' };
    let attempt = 0;
    for (; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) {
        this.d.observer.retried();
        const backoff = Math.random() * Math.min(this.o.retryMaxMs, this.o.retryBaseMs * 2 ** (attempt - 1));
        const wait = result.status === 'retry' ? Math.max(result.retryAfterMs ?? 0, backoff) : backoff;
        await this.sleep(Math.min(wait, this.o.retryMaxMs));
        if (this.stopping.signal.aborted) return;
      }
      result = await this.d.sender.post(d.endpoint, d.event);
      if (result.status === 'delivered') {
        this.d.observer.delivered((this.d.clock.now() - d.event.ts) / 1000);
        return;
      }
    }
    if (this.stopping.signal.aborted) return;
    const reason = result.status === 'retry' ? result.reason : 'unknown';
    this.d.log.warn(
      { endpoint: d.endpoint, event: d.event.id, reason, attempts: attempt },
      'webhook dead-lettered',
    );
    this.d.observer.deadLettered();
    await this.d.deadLetters.add([
      { id: letterId(), delivery: d, reason, attempts: attempt, ts: this.d.clock.now() },
    ]);
  }

  /** Sleeps, waking early when the dispatcher stops. */
  private sleep(ms: number): Promise<void> {
    return abortableSleep(ms, this.stopping.signal);
  }
}
