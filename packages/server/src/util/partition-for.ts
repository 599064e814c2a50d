import { createHash } from 'node:crypto';

/**
 * A stable key → partition mapping (the same in every process and run). Every `PartitionedLog`
 * adapter computes partitions with it (Kafka's and the in-process log alike), so a key lands on the
 * same partition whichever adapter or process publishes it. It lives here, not in one adapter, so
 * no adapter imports another's internals.
 */
export function partitionFor(key: string, partitions: number): number {
  return createHash('sha1').update(key).digest().readUInt32BE(0) % partitions;
}
