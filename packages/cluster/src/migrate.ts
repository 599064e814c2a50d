/**
 * `parley migrate-cluster`: creates what cluster mode needs on the real engines, idempotently —
 * the Cassandra keyspace and tables, and the Kafka topics of the stages.
 * @module
 */
import type { ClusterMigration, MigrationReport } from '@parley/server/cluster/engine-package';
import { TOPICS } from '@parley/server/cluster/topics';
import { Client } from 'cassandra-driver';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import { migrateCassandra, type Replication } from './cassandra/schema.js';

/** Creates the keyspace, tables and topics that do not exist yet. */
export async function migrateCluster(m: ClusterMigration): Promise<MigrationReport> {
  const cassandra = new Client({
    contactPoints: m.cassandra.contactPoints,
    localDataCenter: m.cassandra.localDataCenter,
  });
  try {
    const replication: Replication = {
      class: 'NetworkTopologyStrategy',
      [m.cassandra.localDataCenter]: m.cassandra.replicationFactor,
    };
    await migrateCassandra(cassandra, m.cassandra.keyspace, replication);
  } finally {
    await cassandra.shutdown();
  }
  const admin = new Kafka({
    clientId: 'parley-migrate',
    brokers: m.kafka.brokers,
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const names = Object.values(TOPICS).map((t) => `${m.kafka.topicPrefix}${t}`);
    const missing = names.filter((n) => !existing.has(n));
    const rf = m.kafka.replicationFactor;
    if (missing.length > 0)
      await admin.createTopics({
        // Waited for below: kafkajs's own wait gives up at the first UNKNOWN_TOPIC_OR_PARTITION,
        // which a busy KRaft broker answers for a moment after creating the topic.
        waitForLeaders: false,
        timeout: TOPIC_WAIT_MS,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: m.kafka.partitions,
          replicationFactor: rf,
          configEntries: [
            // acks=all then means "on every in-sync replica, and at least this many".
            { name: 'min.insync.replicas', value: String(rf >= 3 ? 2 : 1) },
            { name: 'retention.ms', value: String(m.kafka.retentionMs) },
            // A replica that fell behind never becomes leader: no acknowledged record is lost.
            { name: 'unclean.leader.election.enable', value: 'false' },
          ],
        })),
      });
    await waitForLeaders(admin, names);
    return {
      keyspace: m.cassandra.keyspace,
      topicsCreated: missing,
      topicsExisting: names.filter((n) => existing.has(n)),
    };
  } finally {
    await admin.disconnect();
  }
}

/** How long topic creation may take before the migration fails (a loaded broker is slow). */
const TOPIC_WAIT_MS = 60_000;

/**
 * Polls the topics' metadata until every partition has a leader (or `TOPIC_WAIT_MS` passes). Use
 * it after `createTopics({ waitForLeaders: false })`: kafkajs's own wait fails at the first
 * UNKNOWN_TOPIC_OR_PARTITION, which a busy KRaft broker answers for a moment after creating a topic.
 */
export async function waitForLeaders(admin: Admin, topics: readonly string[]): Promise<void> {
  const end = Date.now() + TOPIC_WAIT_MS;
  for (;;) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [...topics] });
      const ready = meta.topics.every(
        (t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0),
      );
      if (ready && meta.topics.length === topics.length) return;
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (type !== 'UNKNOWN_TOPIC_OR_PARTITION' && type !== 'LEADER_NOT_AVAILABLE') throw err;
    }
    if (Date.now() > end)
      throw new Error(`topics ${topics.join(', ')} have no leaders after ${TOPIC_WAIT_MS} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
