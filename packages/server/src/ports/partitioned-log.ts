/** A record to publish: its key chooses the partition, so records of one key stay in order. */
export interface LogMessage {
  key: string;
  value: Buffer;
}

/** A record as a consumer receives it. */
export interface ConsumedRecord {
  partition: number;
  /** Position in the partition (increasing). */
  offset: bigint;
  key: string;
  value: Buffer;
  /** When it was published (ms since the epoch, the publisher's clock): how long it waited. */
  timestamp: number;
}

/**
 * What a consumer group member does with its share of a topic. Ownership of a partition starts
 * with `onAssigned` and ends with `onRevoked`; between them, every record of the partition reaches
 * `onRecords` in offset order, one call at a time per partition. When `onRecords` resolves, the
 * records count as handled: a member that takes over the partition later starts after them.
 * Records not yet handled when ownership moves are delivered again (at least once), so handlers
 * must be idempotent.
 */
export interface PartitionHandler {
  onAssigned(partitions: readonly number[]): Promise<void>;
  onRevoked(partitions: readonly number[]): Promise<void>;
  onRecords(partition: number, records: readonly ConsumedRecord[]): Promise<void>;
}

/** A member's subscription; `close` leaves the group (its partitions move to the other members). */
export interface LogSubscription {
  close(): Promise<void>;
}

/**
 * A durable, partitioned, replicated log with consumer groups: the stages of cluster mode (ingress
 * keyed by conversation, fan-out keyed by recipient, push) hand work to each other through it, and
 * partition ownership gives each conversation and each inbox a single writer. Kafka in a cluster;
 * an in-process log for tests of the stages.
 */
export interface PartitionedLog {
  /** Appends records; resolves once they are durable (replicated to every in-sync replica). */
  publish(topic: string, messages: readonly LogMessage[]): Promise<void>;
  /** The partition a key maps to (the same in every process). */
  partitionOf(topic: string, key: string): Promise<number>;
  /** Joins `group` on `topic`: this member gets a share of the partitions. */
  consume(topic: string, group: string, handler: PartitionHandler): Promise<LogSubscription>;
}
