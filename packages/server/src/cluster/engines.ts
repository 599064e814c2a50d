import { randomBytes } from 'node:crypto';
import { Client, policies } from 'cassandra-driver';
import { CassandraStore } from '../adapters/cassandra/cassandra-store.js';
import { KafkaLog } from '../adapters/kafka/kafka-log.js';
import { RedisBus } from '../adapters/redis/redis-bus.js';
import { RedisPresence } from '../adapters/redis/redis-presence.js';
import { RedisRateLimiter } from '../adapters/redis/redis-rate-limiter.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../ports/logger.js';
import type { ClusterAdapters } from './adapters.js';

/**
 * Opens cluster mode's adapters on the real engines: Cassandra (the store), Kafka (the stage
 * topics), Redis (bus, presence, budgets). Resolves once every client is connected. The only
 * module of the server that loads the engines' drivers, so an embedded process never does.
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
  const store = new CassandraStore(client, {
    keyspace: config.keyspace,
    inboxTtlSeconds: Math.ceil(config.inboxRetentionMs / 1000),
  });
  const kafka = new KafkaLog({ brokers: config.kafka, clientId: `parley-${randomBytes(6).toString('hex')}` });
  const onError = (err: unknown) => log.warn({ err: String(err) }, 'redis: background work failed');
  try {
    const [bus, presence, limiter] = await Promise.all([
      RedisBus.open(config.redisUrl),
      RedisPresence.open(config.redisUrl, { onError }),
      RedisRateLimiter.open(config.redisUrl),
    ]);
    return {
      store,
      log: kafka,
      bus,
      presence,
      limiter,
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
