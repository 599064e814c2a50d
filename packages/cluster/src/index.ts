/**
 * `@parley/cluster`: cluster mode on the real engines — Cassandra, Kafka, Redis and S3 adapters,
 * the only code of Parley that loads their drivers. The server loads this entry point on demand
 * (`loadClusterEngines`); the adapters are exported by path (`@parley/cluster/kafka/kafka-log`),
 * so that loading this entry point does not load the S3 client, which cluster mode does not use yet.
 * @module
 */
import type { ClusterEngines } from '@parley/server/cluster/engine-package';
import { openEngines } from './engines.js';
import { migrateCluster } from './migrate.js';

export { migrateCluster, openEngines };

// The server cannot import this package (it depends on the server and is built after it): it
// casts what it loads to its own `ClusterEngines`. This is where that cast is checked.
({ openEngines, migrateCluster }) satisfies ClusterEngines;
