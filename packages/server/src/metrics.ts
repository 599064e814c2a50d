import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PushObserver } from './domain/push-dispatcher.js';
import type { WebhookObserver } from './domain/webhook-dispatcher.js';
import type { WebhookPublishObserver } from './domain/webhook-publisher.js';
import type { PartitionHandler } from './ports/partitioned-log.js';

/**
 * The server's Prometheus metrics, on a registry of its own (so several servers in one test
 * process never share counters). Served at GET /metrics on the admin listener.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'parley_connections',
    help: 'Open WebSocket connections (authenticated or not)',
    registers: [this.registry],
  });
  readonly framesIn = new Counter({
    name: 'parley_frames_received_total',
    help: 'Client frames received, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly framesOut = new Counter({
    name: 'parley_frames_sent_total',
    help: 'Frames sent to clients',
    registers: [this.registry],
  });
  readonly badFrames = new Counter({
    name: 'parley_frames_rejected_total',
    help: 'Client frames rejected by validation, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly messagesStored = new Counter({
    name: 'parley_messages_stored_total',
    help: 'Messages durably stored (duplicates excluded)',
    registers: [this.registry],
  });
  readonly sendLatency = new Histogram({
    name: 'parley_send_reply_seconds',
    help: 'Time from a send frame arriving to its reply being written',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
    registers: [this.registry],
  });
  readonly storeBatchOps = new Histogram({
    name: 'parley_store_batch_operations',
    help: 'Write operations per store commit (group commit size)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
    registers: [this.registry],
  });
  readonly storeBatchRows = new Histogram({
    name: 'parley_store_batch_rows',
    help: 'Rows (messages, inbox entries, watermarks) per store commit',
    buckets: [1, 4, 16, 64, 256, 1024, 4096, 16384],
    registers: [this.registry],
  });
  readonly storeCommit = new Histogram({
    name: 'parley_store_commit_seconds',
    help: 'Duration of one store commit including its fsync (writer thread)',
    buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly stageWait = new Histogram({
    name: 'parley_stage_wait_seconds',
    help: 'Cluster mode: time from publishing a record to its stage starting on it (oldest of each batch)',
    labelNames: ['stage'] as const,
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
    registers: [this.registry],
  });
  readonly stageBatch = new Histogram({
    name: 'parley_stage_batch_seconds',
    help: 'Cluster mode: time a stage takes on one batch of records (to durable and handed on)',
    labelNames: ['stage'] as const,
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [this.registry],
  });
  readonly stageRecords = new Histogram({
    name: 'parley_stage_batch_records',
    help: 'Cluster mode: records per batch a stage handles',
    labelNames: ['stage'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });
  readonly closes = new Counter({
    name: 'parley_connections_closed_total',
    help: 'Connections closed by the server, by close code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  /** Requests refused because a user's work budget was spent (see domain/work-budget.ts). */
  readonly budgetRefusals = new Counter({
    name: 'parley_budget_refusals_total',
    help: 'Requests answered rate_limited because the user spent a work budget, by budget (send, fanout, read, typing, presence)',
    labelNames: ['budget'] as const,
    registers: [this.registry],
  });
  /** Push notifications, by provider platform and outcome (see domain/push-dispatcher.ts). */
  readonly push = {
    sent: new Counter({
      name: 'parley_push_sent_total',
      help: 'Notifications a push provider accepted, by platform',
      labelNames: ['platform'] as const,
      registers: [this.registry],
    }),
    failed: new Counter({
      name: 'parley_push_failed_total',
      help: 'Notifications given up on (then dead-lettered), by platform and the last reason',
      labelNames: ['platform', 'reason'] as const,
      registers: [this.registry],
    }),
    retried: new Counter({
      name: 'parley_push_retried_total',
      help: 'Send attempts retried after 429, 5xx or a network error, by platform',
      labelNames: ['platform'] as const,
      registers: [this.registry],
    }),
    deadLettered: new Counter({
      name: 'parley_push_dead_lettered_total',
      help: 'Push jobs put in the dead-letter store, by platform',
      labelNames: ['platform'] as const,
      registers: [this.registry],
    }),
    removed: new Counter({
      name: 'parley_push_registrations_removed_total',
      help: 'Push registrations deleted because the provider reported them dead, by platform',
      labelNames: ['platform'] as const,
      registers: [this.registry],
    }),
    skipped: new Counter({
      name: 'parley_push_skipped_total',
      help: 'Push jobs that needed no notification (online, unregistered, muted, no_provider) or were not queued (overload)',
      labelNames: ['reason'] as const,
      registers: [this.registry],
    }),
    lag: new Histogram({
      name: 'parley_push_lag_seconds',
      help: 'From a message being sequenced to the first attempt to send its notification (queue lag included)',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [this.registry],
    }),
  };

  /** Webhooks, from queueing to delivery (see domain/webhook-publisher.ts, webhook-dispatcher.ts). */
  readonly webhooks = {
    queued: new Counter({
      name: 'parley_webhook_queued_total',
      help: 'Webhook deliveries queued (one per event and endpoint)',
      registers: [this.registry],
    }),
    dropped: new Counter({
      name: 'parley_webhook_dropped_total',
      help: 'Webhook events given up before reaching the queue, by reason (queue_failing, overload)',
      labelNames: ['reason'] as const,
      registers: [this.registry],
    }),
    delivered: new Counter({
      name: 'parley_webhook_delivered_total',
      help: 'Webhook deliveries an endpoint accepted (2xx)',
      registers: [this.registry],
    }),
    retried: new Counter({
      name: 'parley_webhook_retried_total',
      help: 'Webhook posts retried after a failure',
      registers: [this.registry],
    }),
    deadLettered: new Counter({
      name: 'parley_webhook_dead_lettered_total',
      help: 'Webhook deliveries given up on and put in the dead-letter store',
      registers: [this.registry],
    }),
    delay: new Histogram({
      name: 'parley_webhook_delay_seconds',
      help: 'From an event happening to an endpoint accepting it (queueing and retries included)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [this.registry],
    }),
  };

  /** The webhook publisher's and dispatcher's observers, counting into `webhooks`. */
  webhookObservers(): { publish: WebhookPublishObserver; dispatch: WebhookObserver } {
    const w = this.webhooks;
    return {
      publish: {
        queued: (n) => w.queued.inc(n),
        dropped: (n, reason) => w.dropped.inc({ reason }, n),
      },
      dispatch: {
        delivered: (seconds) => {
          w.delivered.inc();
          w.delay.observe(seconds);
        },
        retried: () => w.retried.inc(),
        deadLettered: () => w.deadLettered.inc(),
      },
    };
  }

  /** The push dispatcher's observer, counting into `push`. */
  pushObserver(): PushObserver {
    const p = this.push;
    return {
      sent: (platform) => p.sent.inc({ platform }),
      failed: (platform, reason) =>
        p.failed.inc({ platform, reason: reason.split(/[\s:(]/)[0]!.slice(0, 40) }),
      retried: (platform) => p.retried.inc({ platform }),
      deadLettered: (platform) => p.deadLettered.inc({ platform }),
      removed: (platform) => p.removed.inc({ platform }),
      skipped: (reason) => p.skipped.inc({ reason }),
      lag: (seconds) => p.lag.observe(seconds),
    };
  }

  /** Sockets the client listener destroyed on accept, by the limit they hit (see gateway/listener.ts). */
  readonly socketsRefused = new Counter({
    name: 'parley_sockets_refused_total',
    help: 'Sockets destroyed as soon as they were accepted, by reason (max_sockets, per_address, connect_rate)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  /** HTTP API requests refused or cut off to bound what the edge holds (see gateway/http.ts). */
  readonly httpRefused = new Counter({
    name: 'parley_http_requests_refused_total',
    help: 'HTTP API requests answered 429 past the in-flight caps, or dropped unfinished, by reason (in_flight, in_flight_user, response_timeout)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });

  constructor() {
    // Default metrics are named process_* / nodejs_*; the prefix makes them parley_process_* / parley_nodejs_*.
    collectDefaultMetrics({ register: this.registry, prefix: 'parley_' });
    this.loopDelay.enable();
    const loopDelay = this.loopDelay;
    new Gauge({
      name: 'parley_event_loop_delay_max_seconds',
      help: 'Longest event-loop stall since the previous scrape (the maximum over processes)',
      aggregator: 'max',
      registers: [this.registry],
      collect() {
        this.set(loopDelay.max / 1e9);
        loopDelay.reset();
      },
    });
  }

  /** Reports gauges of the backend's state on every scrape. */
  watch(sources: { pendingWrites: () => number; conversationsInMemory: () => number }): void {
    new Gauge({
      name: 'parley_store_pending_writes',
      help: 'Store write operations queued or in flight',
      registers: [this.registry],
      collect() {
        this.set(sources.pendingWrites());
      },
    });
    new Gauge({
      name: 'parley_conversations_in_memory',
      help: 'Conversations whose writer state is in memory',
      registers: [this.registry],
      collect() {
        this.set(sources.conversationsInMemory());
      },
    });
  }

  /**
   * Reports the inbox writer's health on every scrape: 1, or 0 while a store that keeps failing
   * stalls delivery (the same condition that turns `/readyz` 503).
   */
  watchInboxWriter(healthy: () => boolean): void {
    new Gauge({
      name: 'parley_inbox_writer_healthy',
      help: 'Whether the inbox writer is storing inbox entries (0 while its store has kept failing past the bound)',
      aggregator: 'min',
      registers: [this.registry],
      collect() {
        this.set(healthy() ? 1 : 0);
      },
    });
  }

  /** Reports the engines' request counts (cluster mode) on every scrape. */
  watchEngines(requests: () => Record<string, Record<string, number>>): void {
    new Counter({
      name: 'parley_engine_requests_total',
      help: 'Requests to the engines, by engine and kind (Cassandra statements and Paxos rounds, Kafka records and requests by API)',
      labelNames: ['engine', 'kind'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [engine, kinds] of Object.entries(requests()))
          for (const [kind, n] of Object.entries(kinds)) this.inc({ engine, kind }, n);
      },
    });
  }

  /** Records one store commit (a bound function: the store calls it as its commit observer). */
  readonly commit = (info: { ops: number; rows: number; commitMs: number }): void => {
    this.storeBatchOps.observe(info.ops);
    this.storeBatchRows.observe(info.rows);
    this.storeCommit.observe(info.commitMs / 1000);
  };

  /** A cluster stage's handler, observed: how long records waited in the log, how long a batch took, its size. */
  meteredStage(stage: string, handler: PartitionHandler): PartitionHandler {
    const metrics = this;
    return {
      onAssigned: (partitions) => handler.onAssigned(partitions),
      onRevoked: (partitions) => handler.onRevoked(partitions),
      async onRecords(partition, records) {
        const start = Date.now();
        let oldest = start;
        for (const r of records) oldest = Math.min(oldest, r.timestamp);
        metrics.stageWait.observe({ stage }, (start - oldest) / 1000);
        metrics.stageRecords.observe({ stage }, records.length);
        try {
          await handler.onRecords(partition, records);
        } finally {
          metrics.stageBatch.observe({ stage }, (Date.now() - start) / 1000);
        }
      },
    };
  }

  /** Counts the messages of a durable batch: the metrics listen to the sequencer. */
  committed(messages: readonly unknown[]): void {
    this.messagesStored.inc(messages.length);
  }

  stop(): void {
    this.loopDelay.disable();
  }
}
