// Runs the PartitionedLog conformance suite against the in-process log, and the webhook queue's
// suite against cluster mode's queue (`logWebhookQueue`) over it.
import { randomBytes } from 'node:crypto';
import { logWebhookQueue } from '../../cluster/log-job-queue.js';
import { TOPICS } from '../../cluster/topics.js';
import { partitionedLogSuite } from '../conformance/partitioned-log.suite.js';
import { webhookQueueSuite } from '../conformance/webhook-queue.suite.js';
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

webhookQueueSuite(
  'LogJobQueue over MemoryLog',
  async () => {
    const log = new MemoryLog();
    const topic = `prefix.${TOPICS.webhooks}`;
    log.createTopic(topic, 8);
    return {
      queue: logWebhookQueue(log, 'prefix.'),
      mayHold: async (a, b) => (await log.partitionOf(topic, a)) === (await log.partitionOf(topic, b)),
      close: async () => {},
    };
  },
  {
    timeoutMs: 2_000,
    skip: {
      'a batch still being handled at a crash is handed out again after the restart':
        'one process: a member cannot crash apart from it (the PartitionedLog suite covers records unhandled at an ownership change)',
    },
  },
);
