// Runs the PartitionedLog conformance suite against a real Kafka broker (KRaft, started by
// `npm run engines:up`); each test gets a fresh topic.
import { randomBytes } from 'node:crypto';
import { partitionedLogSuite } from '@parley/server/adapters/conformance/partitioned-log.suite';
import { requireEngine } from '@parley/server/test/engines';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaLog } from './kafka-log.js';

const brokers = requireEngine('kafka', 'KafkaLog against a real Kafka broker');

if (brokers !== undefined) {
  partitionedLogSuite('KafkaLog', async () => {
    const bootstrapBrokers = brokers.split(',');
    const admin = new Kafka({
      clientId: 'parley-test-admin',
      brokers: bootstrapBrokers,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    const log = new KafkaLog({ brokers: bootstrapBrokers, clientId: 'parley-test', sessionTimeoutMs: 6_000 });
    const topics: string[] = [];
    return {
      log,
      topic: async (partitions) => {
        const name = `parley-test-${randomBytes(4).toString('hex')}`;
        await admin.createTopics({
          topics: [{ topic: name, numPartitions: partitions, replicationFactor: 1 }],
          waitForLeaders: true,
        });
        topics.push(name);
        return name;
      },
      close: async () => {
        await log.close();
        await admin.deleteTopics({ topics });
        await admin.disconnect();
      },
    };
  });
}
