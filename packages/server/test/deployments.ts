// The deployments the behaviour suites run against, chosen by PARLEY_TEST_MODE: the same tests,
// the same client-visible behaviour, whatever adapters are underneath.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { migrateCluster } from '@parley/cluster';
import { inProcessAdapters } from '../src/cluster/adapters.js';
import { loadConfig } from '../src/config/load.js';
import { type ConfigInput, ENV_KEYS } from '../src/config/schema.js';
import { createParleyServer, type ParleyServer } from '../src/main.js';
import { silentLogger } from '../src/ports/logger.js';
import { spawnServer } from './child-server.js';
import { engineAddress } from './engines.js';

/**
 * `embedded`: one process, SQLite. `workers`: `parley serve --workers 2`, a child process.
 * `cluster-memory`: two cluster processes in this one, on shared in-process adapters. `cluster`:
 * two cluster processes in this one on the real engines (a keyspace and topics of their own).
 */
export type TestMode = 'embedded' | 'workers' | 'cluster-memory' | 'cluster';

const MODES: readonly TestMode[] = ['embedded', 'workers', 'cluster-memory', 'cluster'];

/** The mode PARLEY_TEST_MODE names (embedded when unset). */
export function testMode(): TestMode {
  const mode = (process.env.PARLEY_TEST_MODE ?? 'embedded') as TestMode;
  if (!MODES.includes(mode)) throw new Error(`PARLEY_TEST_MODE must be one of ${MODES.join(', ')}`);
  return mode;
}

/** A running deployment as the tests see it. */
export interface Deployment {
  /** The in-process server (the first process in cluster-memory; a handle on the child in workers mode). */
  server: ParleyServer;
  /** WebSocket URLs of its processes: clients are spread over them. */
  urls: string[];
  httpUrl: string;
  adminUrl: string | null;
  /** The server API listener (of the first process); null without a keys file. */
  serverApiUrl: string | null;
  stop(): Promise<void>;
}

export async function startDeployment(mode: TestMode, overrides: ConfigInput): Promise<Deployment> {
  if (mode === 'workers') return startWorkers(overrides);
  const config = loadConfig({ overrides });
  if (mode === 'embedded') {
    const server = await createParleyServer(config, { log: silentLogger });
    return deployment([server], [await server.start()]);
  }
  if (mode === 'cluster') return startOnEngines(overrides);
  const adapters = inProcessAdapters(config.topicPrefix);
  const shared = { ...adapters, close: async () => {} };
  const servers = [
    await createParleyServer(config, { log: silentLogger, adapters: shared }),
    await createParleyServer(config, { log: silentLogger, adapters: shared }),
  ];
  const addresses: AddressInfo[] = [];
  for (const s of servers) addresses.push(await s.start());
  const d = deployment(servers, addresses);
  return {
    ...d,
    async stop() {
      await d.stop();
      await adapters.close();
    },
  };
}

/** Two cluster processes (in this one) on the real engines, on a keyspace and topics of their own. */
async function startOnEngines(overrides: ConfigInput): Promise<Deployment> {
  const [cassandra, kafka, redis] = [
    engineAddress('cassandra'),
    engineAddress('kafka'),
    engineAddress('redis'),
  ];
  if (!cassandra || !kafka || !redis)
    throw new Error('PARLEY_TEST_MODE=cluster needs the engines (npm run engines:up)');
  const engines = { cassandra, kafka, redis };
  const id = randomBytes(3).toString('hex');
  const dc = process.env.PARLEY_TEST_CASSANDRA_DC ?? 'datacenter1';
  const config = loadConfig({
    overrides: {
      ...overrides,
      cassandra: [engines.cassandra],
      cassandraDc: dc,
      keyspace: `parley_mode_${id}`,
      kafka: [engines.kafka],
      topicPrefix: `parley-mode-${id}.`,
      redisUrl: engines.redis,
      ...s3Overrides(),
    },
  });
  await migrateCluster({
    cassandra: {
      contactPoints: [engines.cassandra],
      localDataCenter: dc,
      keyspace: config.keyspace,
      replicationFactor: 1,
    },
    kafka: {
      brokers: [engines.kafka],
      topicPrefix: config.topicPrefix,
      partitions: 4,
      replicationFactor: 1,
      retentionMs: 3_600_000,
    },
  });
  const servers = [
    await createParleyServer(config, { log: silentLogger }),
    await createParleyServer(config, { log: silentLogger }),
  ];
  const addresses: AddressInfo[] = [];
  for (const s of servers) addresses.push(await s.start());
  // Let the consumer groups settle on both members before the suites send.
  await new Promise((r) => setTimeout(r, 3_000));
  const d = deployment(servers, addresses);
  return {
    ...d,
    async stop() {
      await d.stop();
      // Each deployment's keyspace holds ~25 tables; the suites start dozens of deployments, and
      // Cassandra keeps every table's metadata and memtables on its heap.
      await dropKeyspace(engines.cassandra, dc, config.keyspace);
    },
  };
}

async function dropKeyspace(contactPoint: string, dc: string, keyspace: string): Promise<void> {
  const { Client } = await import('cassandra-driver');
  const client = new Client({ contactPoints: [contactPoint], localDataCenter: dc });
  try {
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], { readTimeout: 60_000 });
  } finally {
    await client.shutdown();
  }
}

function deployment(servers: ParleyServer[], addresses: AddressInfo[]): Deployment {
  const first = servers[0]!;
  return {
    server: first,
    urls: addresses.map((a) => `ws://127.0.0.1:${a.port}/v1/ws`),
    httpUrl: `http://127.0.0.1:${addresses[0]!.port}`,
    adminUrl: first.adminAddress ? `http://127.0.0.1:${first.adminAddress.port}` : null,
    serverApiUrl: first.serverApiAddress ? `http://127.0.0.1:${first.serverApiAddress.port}` : null,
    async stop() {
      for (const s of servers) await s.stop(0);
    },
  };
}

/** `parley serve --workers 2` from the sources, configured through its environment. */
async function startWorkers(overrides: ConfigInput): Promise<Deployment> {
  const env: Record<string, string> = { PARLEY_WORKERS: '2' };
  for (const [key, value] of Object.entries(overrides)) {
    const spec = ENV_KEYS[key as keyof typeof ENV_KEYS];
    if (!spec) throw new Error(`no variable for ${key}`);
    env[spec.env] = Array.isArray(value) ? value.join(',') : String(value);
  }
  env.PARLEY_PORT = '0';
  env.PARLEY_ADMIN_PORT = '0';
  env.PARLEY_SERVER_API_PORT = '0';
  const child = await spawnServer(env);
  const server: ParleyServer = {
    config: loadConfig({ overrides }),
    devSecret: false,
    adminAddress: null,
    serverApiAddress: null,
    start: async () => ({ address: '127.0.0.1', family: 'IPv4', port: child.port }),
    stop: async () => {
      child.kill('SIGTERM');
      await child.exited;
    },
  };
  return {
    server,
    urls: [child.url],
    httpUrl: child.httpUrl,
    adminUrl: child.adminUrl,
    serverApiUrl: child.serverApiUrl,
    stop: () => server.stop(0),
  };
}

/** The engine scripts' S3 server as the media store, when it is up. */
function s3Overrides(): ConfigInput {
  const endpoint = process.env.PARLEY_TEST_S3;
  if (!endpoint) return {};
  return {
    s3Endpoint: endpoint,
    s3Region: process.env.PARLEY_TEST_S3_REGION ?? 'us-east-1',
    s3Bucket: process.env.PARLEY_TEST_S3_BUCKET ?? 'parley-test',
    s3AccessKeyId: process.env.PARLEY_TEST_S3_ACCESS_KEY ?? '',
    s3SecretAccessKey: process.env.PARLEY_TEST_S3_SECRET_KEY ?? '',
  };
}
