import { z } from 'zod';

const level = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const positiveInt = z.number().int().positive();

/**
 * Every setting of the server, with its default. A JSON config file uses these keys; each key is
 * also read from the environment as PARLEY_<KEY IN UPPER SNAKE CASE> (see `ENV_KEYS`). Unknown
 * keys are rejected, so a typo is an error, not a silently ignored setting.
 */
export const configSchema = z.strictObject({
  /** Address to listen on. */
  host: z.string().min(1).default('127.0.0.1'),
  /** Port to listen on (0 picks a free one). */
  port: z.number().int().min(0).max(65535).default(8080),
  /** Gateway processes: 1 runs everything in one process; N > 1 runs the core in a primary and N gateway workers. */
  workers: z.number().int().min(1).max(64).default(1),
  /** Where the embedded store (and the development secret) live. */
  dataDir: z.string().min(1).default('./data'),
  /** HS256 secret for client tokens (at least 32 bytes). */
  jwtSecret: z.string().min(32, 'must be at least 32 characters').optional(),
  /** PEM public keys (Ed25519, ES256 P-256 or RS256), one or more concatenated. */
  jwtPublicKeys: z.string().min(1).optional(),
  /** A JWKS URL to fetch verification keys from. */
  jwksUrl: z.url().optional(),
  /** Required `iss` claim, when set. */
  jwtIssuer: z.string().min(1).optional(),
  /** Required `aud` claim, when set. */
  jwtAudience: z.string().min(1).optional(),
  /** Allowed browser origins for WebSocket and HTTP (empty: any origin). */
  origins: z.array(z.string().min(1)).default([]),
  logLevel: level.default('info'),
  /** Heartbeat interval told to clients; a connection silent for twice this is closed. */
  heartbeatMs: positiveInt.default(30_000),
  /** The drain window on shutdown: reconnect hints are spread over it, then sockets close with 1012. */
  drainMs: z.number().int().min(0).default(30_000),
  /** Time a socket has to send `connect`. */
  connectTimeoutMs: positiveInt.default(10_000),
  /** Largest accepted frame, in bytes. */
  maxFrameBytes: positiveInt.default(128 * 1024),
  /** Largest message body, in UTF-8 bytes. */
  maxBodyBytes: positiveInt.default(64 * 1024),
  /** Most members of a group (`too_large` beyond). */
  maxGroupSize: z.number().int().min(2).max(100_000).default(512),
  /** Most presence subscriptions one connection may hold. */
  maxPresenceSubscriptions: positiveInt.default(1000),
  /** How long receipt updates of a conversation gather before they are applied together. */
  receiptCoalesceMs: z.number().int().min(0).max(10_000).default(50),
  /** Live connections one user may hold at once (one per device). */
  maxConnectionsPerUser: positiveInt.default(8),
  /** Bytes queued to one slow client before it is disconnected (it resyncs on reconnect). */
  maxOutboundBytes: positiveInt.default(4 * 1024 * 1024),
  /** Malformed frames tolerated per connection per minute before closing it with 4400. */
  maxBadFramesPerMinute: positiveInt.default(20),
  /** Messages and group changes one user may send per second, over all devices (`rate_limited` beyond). */
  sendRatePerSecond: positiveInt.default(100),
  /** How many of them may come at once before the rate applies (the token bucket's size). */
  sendBurst: positiveInt.default(1000),
  /**
   * How long a write waits for others to join its commit when the store is idle: trades that
   * much latency for fewer, larger commits (less CPU and fsync per message). 0 commits at once.
   */
  commitDelayMs: z.number().min(0).max(50).default(0),
  /** How long inbox events are kept for `sync`. */
  inboxRetentionMs: positiveInt.default(30 * 24 * 3600 * 1000),
  /** How often expired inbox entries are deleted. */
  inboxPruneIntervalMs: positiveInt.default(3600 * 1000),
  /** Whether to expose /metrics. */
  metrics: z.boolean().default(true),
  /**
   * Cluster mode: Cassandra contact points (`host:port`). When set, the server runs on the real
   * engines below instead of the embedded store (`parley migrate-cluster` creates their schema).
   */
  cassandra: z.array(z.string().min(1)).optional(),
  /** Cluster mode: the Cassandra datacenter this process is in. */
  cassandraDc: z.string().min(1).default('datacenter1'),
  /** Cluster mode: the keyspace. */
  keyspace: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,47}$/)
    .default('parley'),
  /** Cluster mode: Kafka bootstrap brokers (`host:port`). */
  kafka: z.array(z.string().min(1)).optional(),
  /** Cluster mode: the prefix of the stage topics. */
  topicPrefix: z.string().default('parley.'),
  /** Cluster mode: Redis URL (presence, rate limits, the bus between processes). */
  redisUrl: z.string().min(1).optional(),
  /** Cluster mode: which stages this process runs (default all). */
  roles: z.array(z.enum(['gateway', 'sequencer', 'fanout'])).default(['gateway', 'sequencer', 'fanout']),
});

/** The validated configuration with every default filled in. */
export type Config = z.infer<typeof configSchema>;

/** A partial configuration as written in a file or collected from the environment. */
export type ConfigInput = z.input<typeof configSchema>;

/** Each config key's environment variable, and how its text becomes a value. */
export const ENV_KEYS: Record<keyof Config, { env: string; parse: 'string' | 'int' | 'bool' | 'list' }> = {
  host: { env: 'PARLEY_HOST', parse: 'string' },
  port: { env: 'PARLEY_PORT', parse: 'int' },
  workers: { env: 'PARLEY_WORKERS', parse: 'int' },
  dataDir: { env: 'PARLEY_DATA_DIR', parse: 'string' },
  jwtSecret: { env: 'PARLEY_JWT_SECRET', parse: 'string' },
  jwtPublicKeys: { env: 'PARLEY_JWT_PUBLIC_KEYS', parse: 'string' },
  jwksUrl: { env: 'PARLEY_JWKS_URL', parse: 'string' },
  jwtIssuer: { env: 'PARLEY_JWT_ISSUER', parse: 'string' },
  jwtAudience: { env: 'PARLEY_JWT_AUDIENCE', parse: 'string' },
  origins: { env: 'PARLEY_ORIGINS', parse: 'list' },
  logLevel: { env: 'PARLEY_LOG_LEVEL', parse: 'string' },
  heartbeatMs: { env: 'PARLEY_HEARTBEAT_MS', parse: 'int' },
  drainMs: { env: 'PARLEY_DRAIN_MS', parse: 'int' },
  connectTimeoutMs: { env: 'PARLEY_CONNECT_TIMEOUT_MS', parse: 'int' },
  maxFrameBytes: { env: 'PARLEY_MAX_FRAME_BYTES', parse: 'int' },
  maxBodyBytes: { env: 'PARLEY_MAX_BODY_BYTES', parse: 'int' },
  maxGroupSize: { env: 'PARLEY_MAX_GROUP_SIZE', parse: 'int' },
  maxPresenceSubscriptions: { env: 'PARLEY_MAX_PRESENCE_SUBSCRIPTIONS', parse: 'int' },
  receiptCoalesceMs: { env: 'PARLEY_RECEIPT_COALESCE_MS', parse: 'int' },
  maxConnectionsPerUser: { env: 'PARLEY_MAX_CONNECTIONS_PER_USER', parse: 'int' },
  maxOutboundBytes: { env: 'PARLEY_MAX_OUTBOUND_BYTES', parse: 'int' },
  maxBadFramesPerMinute: { env: 'PARLEY_MAX_BAD_FRAMES_PER_MINUTE', parse: 'int' },
  sendRatePerSecond: { env: 'PARLEY_SEND_RATE_PER_SECOND', parse: 'int' },
  sendBurst: { env: 'PARLEY_SEND_BURST', parse: 'int' },
  commitDelayMs: { env: 'PARLEY_COMMIT_DELAY_MS', parse: 'int' },
  inboxRetentionMs: { env: 'PARLEY_INBOX_RETENTION_MS', parse: 'int' },
  inboxPruneIntervalMs: { env: 'PARLEY_INBOX_PRUNE_INTERVAL_MS', parse: 'int' },
  metrics: { env: 'PARLEY_METRICS', parse: 'bool' },
  cassandra: { env: 'PARLEY_CASSANDRA', parse: 'list' },
  cassandraDc: { env: 'PARLEY_CASSANDRA_DC', parse: 'string' },
  keyspace: { env: 'PARLEY_KEYSPACE', parse: 'string' },
  kafka: { env: 'PARLEY_KAFKA', parse: 'list' },
  topicPrefix: { env: 'PARLEY_TOPIC_PREFIX', parse: 'string' },
  redisUrl: { env: 'PARLEY_REDIS_URL', parse: 'string' },
  roles: { env: 'PARLEY_ROLES', parse: 'list' },
};
