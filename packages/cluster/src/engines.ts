import { randomBytes } from 'node:crypto';
import type { ClusterAdapters } from '@parley/server/cluster/adapters';
import type { Config } from '@parley/server/config/schema';
import type { Logger } from '@parley/server/ports/logger';
import { Client, policies } from 'cassandra-driver';
import { CassandraStore, REVOCATION_TTL_SECONDS } from './cassandra/cassandra-store.js';
import { KafkaLog } from './kafka/kafka-log.js';
import { RedisBus } from './redis/redis-bus.js';
import { RedisPresence } from './redis/redis-presence.js';
import { RedisRateLimiter } from './redis/redis-rate-limiter.js';
import { S3MediaStore } from './s3/s3-media-store.js';

/**
 * Opens cluster mode's adapters on the real engines: Cassandra (the store), Kafka (the stage
 * topics), Redis (bus, presence, budgets). Resolves once every client is connected. The server
 * loads it (through `loadClusterEngines`) only in cluster mode, so an embedded process never loads
 * the drivers.
 */
export async function openEngines(config: Config, log: Logger): Promise<ClusterAdapters> {
  if (!config.cassandra || !config.kafka || !config.redisUrl)
    throw new Error(
      'cluster mode needs cassandra, kafka and redisUrl (PARLEY_CASSANDRA, PARLEY_KAFKA, PARLEY_REDIS_URL)',
    );
  const client = new Client({
    contactPoints: config.cassandra,
    localDataCenter: config.cassandraDc,
    // Reconnect to a node that went away every 0.5-5 s (the driver's default backs off to 10 min),
    // so service resumes within seconds of Cassandra coming back.
    policies: { reconnection: new policies.reconnection.ExponentialReconnectionPolicy(500, 5_000, false) },
  });
  // The store carries every store port of cluster mode (`ClusterStore`: devices and push dead
  // letters included). A revocation must outlive every token issued before it: 7 days, or longer
  // when the accepted token lifetime is.
  const store = new CassandraStore(client, {
    keyspace: config.keyspace,
    inboxTtlSeconds: Math.ceil(config.inboxRetentionMs / 1000),
    revocationTtlSeconds: Math.max(
      REVOCATION_TTL_SECONDS,
      Math.ceil(config.maxTokenLifetimeMs / 1000) + 3600,
    ),
  });
  const kafka = new KafkaLog({
    brokers: config.kafka,
    clientId: `parley-${randomBytes(6).toString('hex')}`,
    onCommitError: (err) =>
      log.info(
        { err: String(err) },
        'kafka: offset commit failed; retried next interval (normal in a rebalance)',
      ),
  });
  const onError = (err: unknown) => log.warn({ err: String(err) }, 'redis: background work failed');
  try {
    // Deployments sharing a Redis keep apart by the same prefix as their Kafka topics.
    const prefix = config.topicPrefix;
    const [bus, presence, limiter] = await Promise.all([
      RedisBus.open(config.redisUrl, { prefix }),
      RedisPresence.open(config.redisUrl, { onError, prefix }),
      RedisRateLimiter.open(config.redisUrl, { prefix }),
    ]);
    const media = s3MediaStore(config);
    return {
      store,
      log: kafka,
      bus,
      presence,
      limiter,
      ...(media ? { media: () => media } : {}),
      requests: () => ({ cassandra: { ...store.statements }, kafka: { ...kafka.counts } }),
      async close() {
        await kafka.close().catch(() => {});
        await Promise.allSettled([bus.close(), presence.close(), limiter.close()]);
        await store.close();
      },
    };
  } catch (err) {
    await kafka.close().catch(() => {});
    await store.close().catch(() => {});
    throw err;
  }
}

/**
 * The media store on the configured bucket (`s3Bucket`; endpoint, region, credentials and path
 * style beside it), or undefined when no bucket is configured.
 */
function s3MediaStore(config: Config): S3MediaStore | undefined {
  if (!config.s3Bucket) return undefined;
  if (!config.s3AccessKeyId || !config.s3SecretAccessKey)
    throw new Error(
      's3Bucket needs s3AccessKeyId and s3SecretAccessKey (PARLEY_S3_ACCESS_KEY_ID, _SECRET_ACCESS_KEY)',
    );
  return new S3MediaStore({
    ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
    region: config.s3Region,
    bucket: config.s3Bucket,
    accessKeyId: config.s3AccessKeyId,
    secretAccessKey: config.s3SecretAccessKey,
    forcePathStyle: config.s3ForcePathStyle,
  });
}
