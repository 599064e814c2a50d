import type { JobBatchHandler, JobQueue, QueueSubscription } from '../ports/job-queue.js';
import type { PartitionedLog } from '../ports/partitioned-log.js';
import type { PushJob, PushQueue } from '../ports/push-queue.js';
import { deliveryKey, type WebhookQueue } from '../ports/webhooks.js';
import { TOPICS } from './topics.js';

/**
 * A job queue as a topic of the partitioned log (Kafka's `push` and `webhooks` topics in a
 * cluster), keyed so one key's jobs stay in order. A batch's offsets are committed when the
 * handler resolves, so a crashed worker's unsettled jobs go to the next owner of its partitions,
 * and settled ones are not handed out again. A partition waits while its batch is being settled
 * (a provider or endpoint retrying holds that partition's keys), and so, with kafkajs 2.2.4, do the
 * partitions fetched with it from the same broker: it fetches again only once every batch of a
 * fetch is handled (a known limit; see docs/server-api.md, "Webhooks").
 */
export class LogJobQueue<J> implements JobQueue<J> {
  /** The consumer group of the role (named like the topic, as every stage's group is). */
  private readonly group: string;

  constructor(
    private readonly log: PartitionedLog,
    private readonly topic: string,
    private readonly keyOf: (job: J) => string,
  ) {
    this.group = topic;
  }

  async enqueue(jobs: readonly J[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.log.publish(
      this.topic,
      jobs.map((j) => ({ key: this.keyOf(j), value: Buffer.from(JSON.stringify(j)) })),
    );
  }

  /** Early settlements are ignored: a partition's offsets commit when its whole batch is settled. */
  consume(handler: JobBatchHandler<J>): Promise<QueueSubscription> {
    return this.log.consume(this.topic, this.group, {
      onAssigned: async () => {},
      onRevoked: async () => {},
      onRecords: (_partition, records) =>
        handler(
          records.map((r) => JSON.parse(r.value.toString()) as J),
          () => {},
        ),
    });
  }
}

/** The push queue of a cluster: the `push` topic, keyed by user. */
export function logPushQueue(log: PartitionedLog, topicPrefix: string): PushQueue {
  return new LogJobQueue<PushJob>(log, `${topicPrefix}${TOPICS.push}`, (j) => j.user);
}

/** The webhook queue of a cluster: the `webhooks` topic, keyed by endpoint and conversation or user. */
export function logWebhookQueue(log: PartitionedLog, topicPrefix: string): WebhookQueue {
  return new LogJobQueue(log, `${topicPrefix}${TOPICS.webhooks}`, deliveryKey);
}
