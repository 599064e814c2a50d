import type { PartitionedLog } from '../ports/partitioned-log.js';
import type { PushBatchHandler, PushJob, PushQueue, PushQueueSubscription } from '../ports/push-queue.js';
import { TOPICS } from './topics.js';

/**
 * The push queue as a topic of the partitioned log (Kafka's `push` topic in a cluster), keyed by
 * user so one user's jobs stay in order. A batch's offsets are committed when the handler
 * resolves, so a crashed push worker's unsettled jobs go to the next owner of its partitions, and
 * settled ones are not sent again. A partition waits while its batch is being settled (a provider
 * retrying holds that partition's users only).
 */
export class LogPushQueue implements PushQueue {
  private readonly topic: string;
  /** The consumer group of the push role (named like the topic, as every stage's group is). */
  private readonly group: string;

  constructor(
    private readonly log: PartitionedLog,
    topicPrefix: string,
  ) {
    this.topic = `${topicPrefix}${TOPICS.push}`;
    this.group = this.topic;
  }

  async enqueue(jobs: readonly PushJob[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.log.publish(
      this.topic,
      jobs.map((j) => ({ key: j.user, value: Buffer.from(JSON.stringify(j)) })),
    );
  }

  /** Early settlements are ignored: a partition's offsets commit when its whole batch is settled. */
  consume(handler: PushBatchHandler): Promise<PushQueueSubscription> {
    return this.log.consume(this.topic, this.group, {
      onAssigned: async () => {},
      onRevoked: async () => {},
      onRecords: (_partition, records) =>
        handler(
          records.map((r) => JSON.parse(r.value.toString()) as PushJob),
          () => {},
        ),
    });
  }
}
