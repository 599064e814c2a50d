/**
 * `parley migrate-cluster`: creates what cluster mode needs on the real engines, idempotently —
 * the Cassandra keyspace and tables, and the Kafka topics of the stages.
 * @module
 */
import type { ClusterMigration, MigrationReport } from '@parley/server/cluster/engine-package';
import { TOPICS } from '@parley/server/cluster/topics';
import { Client } from 'cassandra-driver';
import { Kafka, logLevel } from 'kafkajs';
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
        waitForLeaders: true,
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
    return {
      keyspace: m.cassandra.keyspace,
      topicsCreated: missing,
      topicsExisting: names.filter((n) => existing.has(n)),
    };
  } finally {
    await admin.disconnect();
  }
}
