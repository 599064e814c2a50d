// Runs the PartitionedLog conformance suite against the in-process log.
import { randomBytes } from 'node:crypto';
import { partitionedLogSuite } from '../conformance/partitioned-log.suite.js';
import { MemoryLog } from './memory-log.js';

partitionedLogSuite(
  'MemoryLog',
  async () => {
    const log = new MemoryLog();
    return {
      log,
      topic: async (partitions) => {
        const name = `t-${randomBytes(4).toString('hex')}`;
        log.createTopic(name, partitions);
        return name;
      },
      close: async () => {},
    };
  },
  { timeoutMs: 2_000 },
);
