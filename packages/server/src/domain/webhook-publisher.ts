import type { Logger } from '../ports/logger.js';
import type { MessageStore } from '../ports/message-store.js';
import type { WebhookDelivery, WebhookEvent, WebhookEventType, WebhookQueue } from '../ports/webhooks.js';
import type { StoredMessageNotice } from './push-scheduler.js';

/** Where events go: an endpoint's URL, the events it takes, and whether message bodies go along. */
export interface WebhookEndpoint {
  url: string;
  events: ReadonlySet<WebhookEventType>;
  /** Off by default: bodies may be end-to-end encrypted, and are the user's, not the app's. */
  includeBodies: boolean;
}

/** What the publisher reports, for metrics. */
export interface WebhookPublishObserver {
  queued(deliveries: number): void;
  /** Events given up before reaching the queue (it kept failing, or the backlog was full). */
  dropped(count: number, reason: 'queue_failing' | 'overload'): void;
}

/** Reports waiting to be queued; past it new ones are dropped (and counted), not held in memory. */
const MAX_PENDING_REPORTS = 10_000;

/** Delays between attempts to queue a batch; after the last the batch is dropped (and counted). */
const ENQUEUE_RETRY_MS: readonly number[] = [100, 500, 2_000, 5_000];

/** Where presence and device changes are reported (the webhook publisher, when webhooks are on). */
export interface UserEvents {
  presenceChanged(user: string, status: 'online' | 'offline', ts: number): void;
  deviceChanged(user: string, device: string, change: 'registered' | 'revoked', ts: number): void;
}

/** An event and what orders it (its conversation, or its user). */
interface Keyed {
  key: string;
  event: WebhookEvent;
}

/**
 * Turns what happened into webhook events and queues one delivery per subscribed endpoint, in the
 * order things were reported, so each endpoint sees one conversation's (or user's) events in
 * order. Message events are built from the inbox writer's batches once stored (a group's system
 * messages become `group.changed`); the returned promise lets the writer hold its batch's
 * completion until the events are queued, so in cluster mode the fan-out offsets commit only after
 * them (a crash before that re-fans the messages and queues their events again, with the same ids).
 */
export class WebhookPublisher implements UserEvents {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  constructor(
    private readonly queue: WebhookQueue,
    private readonly endpoints: readonly WebhookEndpoint[],
    private readonly log: Logger,
    private readonly observer: WebhookPublishObserver,
    /** Reads bodies the notices lack (cluster mode's fan-out does not carry them), for endpoints taking bodies. */
    private readonly messages: Pick<MessageStore, 'getMany'>,
    private readonly retryMs: readonly number[] = ENQUEUE_RETRY_MS,
  ) {}

  /**
   * Messages whose entries are stored: one event each, published where the sender's own inbox
   * entry is stored (every message reaches its sender's inbox, and in cluster mode each
   * recipient's entry is stored by the process owning that recipient, so this is one process).
   */
  messagesStored(notices: readonly StoredMessageNotice[]): Promise<void> {
    const mine = notices.filter((n) => n.users.includes(n.from));
    if (mine.length === 0 || !this.wants(mine)) return this.tail;
    return this.publish(
      this.withBodies(mine).then((ns) => ns.map((n) => ({ key: n.conv, event: messageEvent(n) }))),
    );
  }

  /** A user came online (first live device) or went offline (last one gone), on this process. */
  presenceChanged(user: string, status: 'online' | 'offline', ts: number): void {
    const type = status === 'online' ? 'user.online' : 'user.offline';
    void this.publish(
      Promise.resolve([{ key: user, event: { id: `${type}:${user}:${ts}`, type, ts, data: { user } } }]),
    );
  }

  /** A device registered for push notifications, or was revoked. */
  deviceChanged(user: string, device: string, change: 'registered' | 'revoked', ts: number): void {
    const type = change === 'registered' ? 'device.registered' : 'device.revoked';
    const event: WebhookEvent = { id: `${type}:${user}:${device}:${ts}`, type, ts, data: { user, device } };
    void this.publish(Promise.resolve([{ key: user, event }]));
  }

  /** Resolves once everything reported so far is queued (or given up). */
  async settled(): Promise<void> {
    await this.tail;
  }

  /** Whether any endpoint takes the events these notices make. */
  private wants(notices: readonly StoredMessageNotice[]): boolean {
    return notices.some((n) => {
      const type = n.kind === 'system' ? 'group.changed' : 'message.stored';
      return this.endpoints.some((e) => e.events.has(type));
    });
  }

  /** The notices with their bodies, read from the store where missing and an endpoint takes them. */
  private async withBodies(notices: StoredMessageNotice[]): Promise<StoredMessageNotice[]> {
    const bodies = this.endpoints.some((e) => e.includeBodies && e.events.has('message.stored'));
    const missing = notices.filter((n) => n.body === undefined && (bodies || n.kind === 'system'));
    if (missing.length === 0) return notices;
    const read = await this.messages.getMany(missing.map((n) => ({ conv: n.conv, seq: n.seq })));
    const byRef = new Map(read.flatMap((m) => (m ? [[`${m.conv}#${m.seq}`, m.body] as const] : [])));
    return notices.map((n) => (n.body === undefined ? { ...n, body: byRef.get(`${n.conv}#${n.seq}`) } : n));
  }

  /**
   * Queues the events' deliveries after those reported before (in report order, even when an
   * earlier report is still reading bodies); never rejects.
   */
  private publish(events: Promise<readonly Keyed[]>): Promise<void> {
    // Settled here, at once: a report failing while an earlier one is still queued (or dropped
    // below) must not become an unhandled rejection.
    const ready = events.then(
      (e) => ({ events: e }),
      (err: unknown) => ({ err }),
    );
    if (this.pending >= MAX_PENDING_REPORTS) {
      this.observer.dropped(1, 'overload');
      return this.tail;
    }
    this.pending++;
    this.tail = this.tail.then(async () => {
      const r = await ready;
      try {
        if ('err' in r) {
          this.log.error({ err: String(r.err) }, 'webhook events dropped: their messages could not be read');
          this.observer.dropped(1, 'queue_failing');
          return;
        }
        const deliveries = this.deliveriesOf(r.events);
        if (deliveries.length > 0) await this.enqueue(deliveries);
      } finally {
        this.pending--;
      }
    });
    return this.tail;
  }

  private deliveriesOf(events: readonly Keyed[]): WebhookDelivery[] {
    const out: WebhookDelivery[] = [];
    for (const e of this.endpoints) {
      for (const { key, event } of events) {
        if (!e.events.has(event.type)) continue;
        out.push({ endpoint: e.url, key, event: e.includeBodies ? event : withoutBody(event) });
      }
    }
    return out;
  }

  private async enqueue(deliveries: readonly WebhookDelivery[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.queue.enqueue(deliveries);
        this.observer.queued(deliveries.length);
        return;
      } catch (err) {
        if (attempt >= this.retryMs.length) {
          this.log.error(
            { err: String(err), deliveries: deliveries.length },
            'webhook events dropped: queue failing',
          );
          this.observer.dropped(deliveries.length, 'queue_failing');
          return;
        }
        this.log.warn({ err: String(err), attempt }, 'webhook events not queued; retrying');
        await new Promise((r) => setTimeout(r, this.retryMs[attempt]));
      }
    }
  }
}

/** `message.stored` (with the body, removed later for endpoints that do not take bodies), or `group.changed`. */
function messageEvent(n: StoredMessageNotice): WebhookEvent {
  if (n.kind === 'system') {
    return {
      id: `group.changed:${n.conv}:${n.seq}`,
      type: 'group.changed',
      ts: n.ts,
      data: { conv: n.conv, seq: n.seq, actor: n.from, change: parseChange(n.body) },
    };
  }
  const data: Record<string, unknown> = { conv: n.conv, seq: n.seq, from: n.from, kind: n.kind };
  if (n.body !== undefined) data.body = n.body;
  return { id: `message.stored:${n.conv}:${n.seq}`, type: 'message.stored', ts: n.ts, data };
}

/** A system message's body is the change as JSON, written by the sequencer. */
function parseChange(body: string | undefined): unknown {
  try {
    return body === undefined ? null : JSON.parse(body);
  } catch {
    return null;
  }
}

function withoutBody(e: WebhookEvent): WebhookEvent {
  if (e.type !== 'message.stored' || !('body' in e.data)) return e;
  const { body: _body, ...data } = e.data;
  return { ...e, data };
}
