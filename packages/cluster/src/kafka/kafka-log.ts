import { ParleyError } from '@parley/server/domain/errors';
import type {
  ConsumedRecord,
  LogMessage,
  LogSubscription,
  PartitionedLog,
  PartitionHandler,
} from '@parley/server/ports/partitioned-log';
import { partitionFor } from '@parley/server/util/partition-for';
import {
  type Consumer,
  type EachBatchPayload,
  Kafka,
  logLevel,
  type Producer,
  type TopicMessages,
} from 'kafkajs';
import { BrokerProbe } from './broker-probe.js';

/**
 * Bytes of records per produce request. Kafka refuses a partition's record batch over
 * `message.max.bytes` (1 MiB by default); staying under it for the whole request keeps every
 * partition's batch under it too.
 */
const MAX_REQUEST_BYTES = 900 * 1024;

/** A publish waiting for the next request. */
interface Queued {
  topic: string;
  messages: readonly LogMessage[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

function settle(request: readonly Queued[], how: (item: Queued) => void): void {
  for (const item of request) how(item);
}

/** How to reach the brokers and how a member behaves in its group. */
export interface KafkaLogOptions {
  brokers: string[];
  clientId: string;
  /** A member that sends no heartbeat for this long loses its partitions (ms, default 10,000). */
  sessionTimeoutMs?: number;
  /** Heartbeat period (ms, default 1,000). */
  heartbeatIntervalMs?: number;
  /**
   * How long a handled batch's offset may wait to be committed together with others (ms, default
   * 1,000). One OffsetCommit request then covers every partition handled meanwhile, instead of one
   * request per batch; a member that crashes hands its next owner at most this much to handle again.
   */
  commitIntervalMs?: number;
  /** Told of an offset commit that failed (retried at the next interval): normal during a rebalance. */
  onCommitError?: (err: unknown) => void;
}

/**
 * The partitioned log on Apache Kafka (kafkajs). Publishing uses one idempotent producer with
 * `acks=all`: a publish resolves once every in-sync replica has the records (with
 * `min.insync.replicas` ≥ 2 in production, durable on two brokers). The partition of a key is
 * computed here, by the same function as the in-process log's, and set on each record, so every
 * Parley process agrees on it whatever a client library's default partitioner is. While no broker
 * answers (`BrokerProbe`), a publish fails at once with `unavailable`, and one already waiting
 * fails as soon as that is known: a sender hears within about a second, not after the producer's
 * retries (the records may still land later; a retried send is recognised by its cmid).
 *
 * A member hands each fetched batch of a partition to the handler and commits the partition's
 * offset only after the handler resolved: records are handled at least once. Commits are
 * coalesced (`commitIntervalMs`) and flushed when the member leaves or a rebalance starts, so the
 * next owner after a clean hand-over starts after the handled records, and after a crash at most
 * one interval before them. kafkajs runs one batch per partition at a time,
 * in offset order, and its eager rebalance stops every member's batches before partitions move.
 */
export class KafkaLog implements PartitionedLog {
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private connected: Promise<void> | null = null;
  private readonly partitionCounts = new Map<string, number>();
  private readonly subscriptions = new Set<LogSubscription>();
  private readonly probe: BrokerProbe;
  private readonly queue: Queued[] = [];
  private sending: Promise<void> = Promise.resolve();
  /** A flush is chained and has not begun: a publish now goes with it. */
  private flushScheduled = false;
  /** Records produced, and requests to the brokers by API (`Produce`, `Fetch`, `OffsetCommit`, …). */
  readonly counts: Record<string, number> = { records: 0 };

  constructor(private readonly options: KafkaLogOptions) {
    this.probe = new BrokerProbe(options.brokers, options.clientId);
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
    });
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
    this.producer.on(this.producer.events.REQUEST, (e) => this.countRequest(e.payload.apiName));
  }

  private countRequest(api: string): void {
    this.counts[api] = (this.counts[api] ?? 0) + 1;
  }

  /**
   * Queues the records; everything published while the request before is in flight, or in the
   * same turn of the event loop, goes to the brokers in the next request (per `MAX_REQUEST_BYTES`),
   * in call order.
   */
  async publish(topic: string, messages: readonly LogMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const queued = () =>
      new Promise<void>((resolve, reject) => {
        this.queue.push({ topic, messages, resolve, reject });
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          // After the request in flight, and a turn later: what is published meanwhile goes along.
          this.sending = this.sending
            .then(() => new Promise<void>((r) => setImmediate(r)))
            .then(() => this.flush());
        }
      });
    await this.probe.guard(queued, () => new ParleyError('unavailable', 'the log is unavailable; retry'));
  }

  /**
   * Sends everything queued, in requests of at most `MAX_REQUEST_BYTES` (one publish is never
   * split), one request at a time: kafkajs retries a failed request inside `sendBatch`, so a later
   * request sent before an earlier one resolved could land first (a partition's leader not known
   * yet, a timeout) and reorder a key's records. Waiting keeps them in publish order; what is
   * published meanwhile goes in the next request (group commit).
   */
  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const items = this.queue.splice(0);
    const requests: Queued[][] = [[]];
    let bytes = 0;
    for (const item of items) {
      const size = item.messages.reduce((n, m) => n + m.value.length + m.key.length + 64, 0);
      if (bytes + size > MAX_REQUEST_BYTES && requests.at(-1)!.length > 0) {
        requests.push([]);
        bytes = 0;
      }
      requests.at(-1)!.push(item);
      bytes += size;
    }
    for (const request of requests) {
      try {
        await this.producer.sendBatch({ acks: -1, topicMessages: await this.topicMessages(request) });
        settle(request, (i) => i.resolve());
      } catch (err) {
        settle(request, (i) => i.reject(err));
      }
    }
  }

  private async topicMessages(request: readonly Queued[]): Promise<TopicMessages[]> {
    await this.connect();
    const byTopic = new Map<string, TopicMessages>();
    for (const { topic, messages } of request) {
      const count = await this.partitions(topic);
      const t = byTopic.get(topic) ?? { topic, messages: [] };
      byTopic.set(topic, t);
      for (const m of messages)
        t.messages.push({ key: m.key, value: m.value, partition: partitionFor(m.key, count) });
      this.counts.records! += messages.length;
    }
    return [...byTopic.values()];
  }

  async partitionOf(topic: string, key: string): Promise<number> {
    return partitionFor(key, await this.partitions(topic));
  }

  async consume(topic: string, group: string, handler: PartitionHandler): Promise<LogSubscription> {
    const consumer = this.kafka.consumer({
      groupId: group,
      sessionTimeout: this.options.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: this.options.heartbeatIntervalMs ?? 1_000,
      // A fetch returns as soon as records arrive; this only bounds how often an idle one repeats.
      maxWaitTimeInMs: 500,
    });
    consumer.on(consumer.events.REQUEST, (e) => this.countRequest(e.payload.apiName));
    const member = new Member(topic, consumer, handler, {
      intervalMs: this.options.commitIntervalMs ?? 1_000,
      onError: this.options.onCommitError ?? (() => {}),
    });
    consumer.on(consumer.events.REBALANCING, () => void member.flushCommits());
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    consumer.on(consumer.events.GROUP_JOIN, (e) => member.assign(e.payload.memberAssignment[topic] ?? []));
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 64,
      eachBatch: (payload) => member.batch(payload),
    });
    const sub: LogSubscription = {
      close: async () => {
        this.subscriptions.delete(sub);
        await member.stop();
      },
    };
    this.subscriptions.add(sub);
    return sub;
  }

  /** Leaves every group and disconnects the producer. */
  async close(): Promise<void> {
    for (const s of [...this.subscriptions]) await s.close();
    await this.sending;
    await this.probe.stop();
    await this.producer.disconnect();
  }

  private connect(): Promise<void> {
    this.probe.start();
    this.connected ??= this.producer.connect();
    return this.connected;
  }

  private async partitions(topic: string): Promise<number> {
    let n = this.partitionCounts.get(topic);
    if (n === undefined) {
      const admin = this.kafka.admin();
      await admin.connect();
      try {
        const meta = await admin.fetchTopicMetadata({ topics: [topic] });
        n = meta.topics[0]?.partitions.length ?? 0;
      } finally {
        await admin.disconnect();
      }
      if (n === 0) throw new Error(`no such topic: ${topic} (create it with parley migrate)`);
      this.partitionCounts.set(topic, n);
    }
    return n;
  }
}

/** One member of a group: its owned partitions, announced to the handler in order. */
class Member {
  private owned = new Set<number>();
  private changes: Promise<void> = Promise.resolve();
  /** Batches being handled: ownership changes wait for them, so a handler never sees both at once. */
  private readonly running = new Set<Promise<void>>();
  /** Offsets handled and not yet committed, by partition: the next commit request takes them all. */
  private readonly uncommitted = new Map<number, string>();
  private commitTimer: NodeJS.Timeout | undefined;
  private committing: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    private readonly topic: string,
    private readonly consumer: Consumer,
    private readonly handler: PartitionHandler,
    private readonly commits: { intervalMs: number; onError: (err: unknown) => void },
  ) {}

  /**
   * A new assignment. Every join revokes everything first, even partitions that come back: a
   * member that was paused and rejoined must reload its state from the store, because another
   * member may have owned its partitions in between.
   */
  assign(partitions: readonly number[]): void {
    const next = new Set(partitions);
    // A partition that moved is committed by its next owner from now on.
    for (const p of this.uncommitted.keys()) if (!next.has(p)) this.uncommitted.delete(p);
    this.changes = this.changes.then(async () => {
      // A batch that failed was the handler's to report (kafkajs retries it); it only has to be over.
      await Promise.allSettled(this.running);
      const gone = [...this.owned];
      this.owned = next;
      if (gone.length > 0) await this.handler.onRevoked(gone);
      if (next.size > 0) await this.handler.onAssigned([...next]);
    });
  }

  /** Hands a fetched batch to the handler, then commits past it (if the partition is still ours). */
  async batch(payload: EachBatchPayload): Promise<void> {
    await this.changes;
    const run = this.handle(payload);
    this.running.add(run);
    try {
      await run;
    } finally {
      this.running.delete(run);
    }
  }

  private async handle({ batch, isRunning, isStale, resolveOffset }: EachBatchPayload): Promise<void> {
    if (this.stopping || !this.owned.has(batch.partition) || !isRunning() || isStale()) return;
    if (batch.messages.length === 0) return;
    const records: ConsumedRecord[] = batch.messages.map((m) => ({
      partition: batch.partition,
      offset: BigInt(m.offset),
      key: m.key?.toString() ?? '',
      value: m.value ?? Buffer.alloc(0),
      timestamp: Number(m.timestamp),
    }));
    await this.handler.onRecords(batch.partition, records);
    // Moves this member's fetch position past the batch; the commit makes it the group's.
    resolveOffset(batch.messages[batch.messages.length - 1]!.offset);
    const next = (BigInt(batch.messages[batch.messages.length - 1]!.offset) + 1n).toString();
    this.uncommitted.set(batch.partition, next);
    this.commitTimer ??= setTimeout(() => void this.flushCommits(), this.commits.intervalMs).unref();
  }

  /**
   * Commits every handled offset in one request (after the one in flight). A failed commit (the
   * group is rebalancing) keeps the offsets of partitions still owned for the next try; the records
   * are handled again if ownership moves first, which handlers allow.
   */
  flushCommits(): Promise<void> {
    clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    // A partition that moved meanwhile is its next owner's to commit.
    const offsets = [...this.uncommitted]
      .filter(([partition]) => this.owned.has(partition))
      .map(([partition, offset]) => ({ topic: this.topic, partition, offset }));
    this.uncommitted.clear();
    if (offsets.length === 0) return this.committing;
    this.committing = this.committing.then(async () => {
      try {
        await this.consumer.commitOffsets(offsets);
      } catch (err) {
        this.commits.onError(err);
        for (const o of offsets)
          if (this.owned.has(o.partition) && !this.uncommitted.has(o.partition))
            this.uncommitted.set(o.partition, o.offset);
        if (!this.stopping && this.uncommitted.size > 0)
          this.commitTimer ??= setTimeout(() => void this.flushCommits(), this.commits.intervalMs).unref();
      }
    });
    return this.committing;
  }

  /**
   * Leaves the group: no new batch is handled, the running ones finish and their offsets are
   * committed, then kafkajs leaves and everything is revoked.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    // A batch failing as the member stops (a stopping handler gives up) must not keep it in the group.
    await Promise.allSettled(this.running);
    await this.flushCommits();
    await this.consumer.disconnect();
    await this.changes;
    const owned = [...this.owned];
    this.owned = new Set();
    if (owned.length > 0) await this.handler.onRevoked(owned);
  }
}
