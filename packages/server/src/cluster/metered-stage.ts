import type { Metrics } from '../gateway/metrics.js';
import type { PartitionHandler } from '../ports/partitioned-log.js';

/** Observes a stage's batches: how long records waited in the log, how long a batch took, its size. */
export function meteredStage(stage: string, handler: PartitionHandler, metrics: Metrics): PartitionHandler {
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
