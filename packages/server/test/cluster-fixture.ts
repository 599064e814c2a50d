/**
 * A Parley cluster for tests: `parley migrate-cluster` on a keyspace and topics of its own, N
 * `parley serve` processes (all roles) on the real engines, and HAProxy in front of them.
 * @module
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { mintToken } from '../src/gateway/auth.js';
import { type ChildServer, SOURCE_CLI, spawnServer } from './child-server.js';
import { engineAddress } from './engines.js';
import { type RunningHaproxy, startHaproxy } from './haproxy.js';
import { TEST_SECRET, TestClient } from './helpers.js';

const run = promisify(execFile);
const secret = new TextEncoder().encode(TEST_SECRET);

export interface TestCluster {
  id: string;
  servers: (ChildServer | null)[];
  haproxy: RunningHaproxy | null;
  env: Record<string, string>;
  /** Connects `user` to server `i`, or through HAProxy when `i` is 'lb'. */
  connect(at: number | 'lb', user: string, device?: string): Promise<TestClient>;
  /** Starts server `i` again (after a kill). */
  restart(i: number): Promise<ChildServer>;
  stop(): Promise<void>;
}

/** The engines' addresses, or undefined when one is not running. */
export function clusterEngines(): { cassandra: string; kafka: string; redis: string } | undefined {
  const cassandra = engineAddress('cassandra');
  const kafka = engineAddress('kafka');
  const redis = engineAddress('redis');
  return cassandra && kafka && redis ? { cassandra, kafka, redis } : undefined;
}

export async function startCluster(
  n: number,
  options: {
    haproxy?: boolean;
    env?: Record<string, string>;
    /** Variables of server `i` only (e.g. its roles), over `env`. */
    serverEnv?: Record<string, string>[];
  } = {},
): Promise<TestCluster> {
  const engines = clusterEngines();
  if (!engines) throw new Error('the engines are not running');
  const id = randomBytes(3).toString('hex');
  const dc = process.env.PARLEY_TEST_CASSANDRA_DC ?? 'datacenter1';
  const env: Record<string, string> = {
    PARLEY_JWT_SECRET: TEST_SECRET,
    PARLEY_CASSANDRA: engines.cassandra,
    PARLEY_CASSANDRA_DC: dc,
    PARLEY_KEYSPACE: `parley_cluster_${id}`,
    PARLEY_KAFKA: engines.kafka,
    PARLEY_TOPIC_PREFIX: `parley-cluster-${id}.`,
    PARLEY_REDIS_URL: engines.redis,
    PARLEY_DRAIN_MS: '0',
    ...options.env,
  };
  await run(process.execPath, [
    ...SOURCE_CLI,
    'migrate-cluster',
    '--cassandra',
    engines.cassandra,
    '--cassandra-dc',
    dc,
    '--keyspace',
    env.PARLEY_KEYSPACE!,
    '--replication-factor',
    '1',
    '--kafka',
    engines.kafka,
    '--partitions',
    '6',
    '--topic-prefix',
    env.PARLEY_TOPIC_PREFIX!,
  ]);
  const servers: (ChildServer | null)[] = await Promise.all(
    Array.from({ length: n }, (_, i) => spawnServer({ ...env, ...options.serverEnv?.[i] }, 60_000)),
  );
  const haproxy = options.haproxy ? await startHaproxy(servers.map((s) => s!.port)) : null;
  // Let the consumer groups settle on every member.
  await new Promise((r) => setTimeout(r, 4_000));
  const cluster: TestCluster = {
    id,
    servers,
    haproxy,
    env,
    async connect(at, user, device = 'd1') {
      const url = at === 'lb' ? haproxy!.url : servers[at]!.url;
      const c = await TestClient.open(url);
      const r = await c.request(
        { type: 'connect', token: await mintToken(secret, { user, ttlSeconds: 3600 }), device },
        15_000,
      );
      assert.equal(r.ok, true, JSON.stringify(r));
      return c;
    },
    async restart(i) {
      // The same port, so HAProxy's backend entry finds it again.
      const s = await spawnServer(
        { ...env, ...options.serverEnv?.[i], PARLEY_PORT: String(servers[i]?.port ?? 0) },
        60_000,
      );
      servers[i] = s;
      return s;
    },
    async stop() {
      await haproxy?.stop();
      for (const s of servers) s?.kill('SIGKILL');
      await Promise.all(servers.map((s) => s?.exited));
    },
  };
  return cluster;
}
