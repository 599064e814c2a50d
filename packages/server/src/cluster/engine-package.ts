/**
 * The server's side of `@parley/cluster`, the package that holds the adapters of the real engines
 * (Cassandra, Kafka, Redis, S3) and their drivers: what it provides, and how the server loads it.
 * @module
 */
import type { Config } from '../config/schema.js';
import type { Logger } from '../ports/logger.js';
import type { ClusterAdapters } from './adapters.js';

/** What `parley migrate-cluster` creates, and where. */
export interface ClusterMigration {
  cassandra: {
    contactPoints: string[];
    localDataCenter: string;
    keyspace: string;
    replicationFactor: number;
  };
  kafka: {
    brokers: string[];
    topicPrefix: string;
    partitions: number;
    replicationFactor: number;
    retentionMs: number;
  };
}

/** What `migrate-cluster` created (existing things are left as they are). */
export interface MigrationReport {
  keyspace: string;
  topicsCreated: string[];
  topicsExisting: string[];
}

/** What `@parley/cluster` exports (the package checks that it matches). */
export interface ClusterEngines {
  /** Opens cluster mode's adapters on the real engines; resolves once every client is connected. */
  openEngines(config: Config, log: Logger): Promise<ClusterAdapters>;
  /** Creates the keyspace, tables and topics that do not exist yet (idempotent). */
  migrateCluster(migration: ClusterMigration): Promise<MigrationReport>;
}

/**
 * Loads `@parley/cluster`: called only when cluster mode is configured or `migrate-cluster` runs,
 * so that an embedded process never loads that package nor the drivers
 * (test/embedded-loads-no-drivers.test.ts checks it).
 */
export async function loadClusterEngines(): Promise<ClusterEngines> {
  // Not a string literal, so TypeScript neither resolves nor types the module: `@parley/cluster`
  // depends on this package and is built after it. The cast is checked on the other side, in
  // packages/cluster/src/index.ts.
  return (await import('@parley/cluster' as string)) as ClusterEngines;
}
