import { isUserId } from '@parley/protocol';
import { z } from 'zod';
import { WEBHOOK_EVENT_TYPES } from '../ports/webhooks.js';

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
  /** Gateway processes: 1 runs everything in one process; N > 1 runs the backend in a primary and N gateway workers. */
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
  /**
   * Bytes a connection may leave unsent from earlier event-loop turns (what its socket has not
   * flushed); one more write closes it as too slow (1013; it resyncs on reconnect).
   */
  maxOutboundBytes: positiveInt.default(16 * 1024 * 1024),
  /** Malformed frames tolerated per connection per minute before closing it with 4400. */
  maxBadFramesPerMinute: positiveInt.default(20),
  /** Messages and group changes one user may send per second, over all devices (`rate_limited` beyond). */
  sendRatePerSecond: positiveInt.default(100),
  /** How many of them may come at once before the rate applies (the token bucket's size). */
  sendBurst: positiveInt.default(1000),
  // ---- Work budgets and backpressure (issue 10): what one user or connection may cost -----------
  /** Inbox entries one user's messages and group changes may write per second (a send costs its recipients). */
  fanoutRatePerSecond: positiveInt.default(2000),
  /** How many inbox entries may be written at once before that rate applies. */
  fanoutBurst: positiveInt.default(20_000),
  /** Read work per user per second: one per request, one per row, one per KiB of reply. */
  readRatePerSecond: positiveInt.default(2000),
  /** How much read work may come at once before that rate applies. */
  readBurst: positiveInt.default(10_000),
  /** Typing frames one user's typing events may deliver per second (one per member reached). */
  typingRatePerSecond: positiveInt.default(500),
  /** How many typing frames may be delivered at once before that rate applies. */
  typingBurst: positiveInt.default(2000),
  /** Users one user may newly subscribe to presence of per second, over all devices. */
  presenceRatePerSecond: positiveInt.default(500),
  /** How many presence subscriptions may be made at once before that rate applies. */
  presenceBurst: positiveInt.default(5000),
  /** Account changes one user may make per second: push registrations, mutes, device revocations and listings. */
  accountRatePerSecond: positiveInt.default(2),
  /** How many account changes may come at once before that rate applies. */
  accountBurst: positiveInt.default(60),
  /** Largest read reply (`sync`, `history`, HTTP history), in bytes: it stops early with `more: true`. */
  maxReplyBytes: z
    .number()
    .int()
    .min(256 * 1024)
    .default(1024 * 1024),
  /**
   * Requests one connection may have in progress or waiting; while any wait, the server stops
   * reading the socket, and one that pipelines past this many in one read is closed with 4400.
   */
  maxPipelinedRequests: positiveInt.default(64),
  /** Reads (`sync`, `history`, …) one connection runs at a time; more wait their turn. */
  maxConcurrentReads: positiveInt.default(2),
  /** How long a connection's unsent backlog may stay above 256 KiB before it is closed as slow (1013). */
  slowReaderMs: positiveInt.default(10_000),
  /** Sockets per remote address that have not completed `connect` (more are closed with 1008). */
  maxUnauthenticatedPerAddress: positiveInt.default(256),
  // ---- end of work budgets ----------------------------------------------------------------------
  // ---- Group admission (issue 10): who may put whom in groups, and invites --------------------
  /** Times one user may be put in groups by others (create or add) at once: the per-recipient bucket's size. */
  groupAddsPerRecipientBurst: positiveInt.default(20),
  /** Times per hour one user may be put in groups by others once the burst is spent (`rate_limited` beyond). */
  groupAddsPerRecipientPerHour: positiveInt.default(60),
  /** Invite codes one user may make at once (the bucket's size). */
  inviteCreateBurst: positiveInt.default(20),
  /** Invite codes one user may make per hour once the burst is spent. */
  inviteCreatePerHour: positiveInt.default(60),
  // ---- end of group admission -------------------------------------------------------------------
  /**
   * How long a write waits for others to join its commit when the store is idle: trades that
   * much latency for fewer, larger commits (less CPU and fsync per message). 0 commits at once.
   */
  commitDelayMs: z.number().min(0).max(50).default(0),
  /** How long inbox events are kept for `sync`. */
  inboxRetentionMs: positiveInt.default(30 * 24 * 3600 * 1000),
  /** How often expired inbox entries are deleted. */
  inboxPruneIntervalMs: positiveInt.default(3600 * 1000),
  /** Whether to serve /metrics (on the admin listener; false also disables that listener). */
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
  /** Cluster mode: the prefix of the stage topics, consumer groups, Redis keys and channels. */
  topicPrefix: z.string().default('parley.'),
  /** Cluster mode: Redis URL (presence, rate limits, the bus between processes). */
  redisUrl: z.string().min(1).optional(),
  /** Cluster mode: which stages this process runs (default all). */
  roles: z
    .array(z.enum(['gateway', 'sequencer', 'fanout', 'push', 'webhooks', 'maintenance']))
    .default(['gateway', 'sequencer', 'fanout', 'push', 'webhooks', 'maintenance']),

  // --- Push: providers and delivery (docs/operations.md, "Push") -----------------------------
  /** VAPID `sub`: how push services reach whoever runs this server (`mailto:` or `https:` URL). */
  webPushSubject: z
    .string()
    .regex(/^(mailto:|https:)/)
    .default('mailto:parley@localhost'),
  /** VAPID key pair (base64url); by default generated once and kept in the data directory. */
  vapidPublicKey: z.string().min(1).optional(),
  vapidPrivateKey: z.string().min(1).optional(),
  /** APNs: the team's `.p8` key file, its key id and the team id (all three turn APNs on). */
  apnsKeyFile: z.string().min(1).optional(),
  apnsKeyId: z.string().min(1).optional(),
  apnsTeamId: z.string().min(1).optional(),
  /** APNs: the environment of registrations that do not name one. */
  apnsEnvironment: z.enum(['production', 'sandbox']).default('production'),
  /** APNs hosts (`https://host:port`); default Apple's. For tests and relays. */
  apnsEndpoint: z.url().optional(),
  apnsSandboxEndpoint: z.url().optional(),
  /** FCM: the service-account JSON file of the Firebase project (turns FCM on). */
  fcmServiceAccountFile: z.string().min(1).optional(),
  /** FCM's API host (`https://host:port`); default Google's. For tests. */
  fcmEndpoint: z.url().optional(),
  /**
   * Let Web Push and UnifiedPush endpoints (chosen by clients) be loopback, private or link-local
   * addresses. Off: such a registration is refused as dead, so no client makes the server call
   * into its own network. For tests and push services running inside the deployment.
   */
  pushAllowPrivateEndpoints: z.boolean().default(false),
  /** Extra CA certificates (PEM file) the push providers trust: tests, private relays. */
  pushCaFile: z.string().min(1).optional(),
  /** One notification per device and conversation per this window (ms); later ones go as one at its end. */
  pushBurstMs: z.number().int().min(0).default(3000),
  /** Retries of a notification the provider asked to retry (429, 5xx, network), before dead-lettering it. */
  pushRetries: z.number().int().min(0).max(20).default(4),
  /** How long a provider keeps a notification for an unreachable device, in seconds. */
  pushTtlSeconds: z.number().int().min(0).default(86_400),

  // --- The before-send hook (adapters/http/before-send-hook.ts) -----------------------------
  /** The operator's moderation endpoint: every client message is POSTed to it before it is stored. Unset: none. */
  beforeSendUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Signs the hook's requests (`Parley-Signature: t=…,v1=<HMAC-SHA256>`); set it in production. */
  beforeSendSecret: z.string().min(16).optional(),
  /** How long the hook may take to answer. */
  beforeSendTimeoutMs: positiveInt.default(500),
  /** When the hook fails (timeout, error, bad answer): `open` stores the message, `closed` refuses it (unavailable). */
  beforeSendPolicy: z.enum(['open', 'closed']).default('open'),
  /** Hook calls in flight per process; past it a call fails at once (by the policy). */
  beforeSendMaxInFlight: positiveInt.default(256),

  /**
   * Service accounts (bots): users that act only through the server API. No token of theirs signs
   * a device in, and their messages carry `from_device: "bot"` so clients can mark them.
   */
  serviceAccounts: z.array(z.string().refine(isUserId, 'a user id')).default([]),

  // --- Webhooks (docs/server-api.md, "Webhooks") -----------------------------------------------
  /** Endpoints (http or https URLs) that receive every event of `webhookEvents`. None: webhooks off. */
  webhookUrls: z.array(z.url({ protocol: /^https?$/ })).default([]),
  /** Signs every webhook (`Parley-Signature: t=…,v1=<HMAC-SHA256>`); required with `webhookUrls`. */
  webhookSecret: z.string().min(16).optional(),
  /** The events sent (default all). */
  webhookEvents: z.array(z.enum(WEBHOOK_EVENT_TYPES)).default([...WEBHOOK_EVENT_TYPES]),
  /** Put message bodies in `message.stored` events (off: metadata only; bodies may be end-to-end encrypted). */
  webhookIncludeBodies: z.boolean().default(false),
  /** How long an endpoint may take to answer one event. */
  webhookTimeoutMs: positiveInt.default(5000),
  /** Retries of a failed delivery (with backoff) before it is dead-lettered. */
  webhookRetries: z.number().int().min(0).max(20).default(6),
  /** The longest wait between two attempts (backoff is capped here; so is a `Retry-After`). */
  webhookRetryMaxMs: positiveInt.default(30_000),

  // --- TLS on Parley's own listeners (gateway/tls.ts) -----------------------------------------
  /**
   * Certificate chain and private key (PEM files) for the client and server API listeners: with
   * both set they speak TLS only, and a change to either file is picked up without a restart.
   * Unset: plain TCP (terminate TLS at a proxy in front instead; docs/operations.md).
   */
  tlsCertFile: z.string().min(1).optional(),
  tlsKeyFile: z.string().min(1).optional(),
  /** The lowest TLS version accepted: 1.3, or 1.2 for old clients. */
  tlsMinVersion: z.enum(['TLSv1.3', 'TLSv1.2']).default('TLSv1.3'),
  /** `Strict-Transport-Security` max-age on the TLS listeners' HTTP responses (0: not sent). */
  hstsMaxAgeSeconds: z.number().int().min(0).default(31_536_000),

  // --- The server API for app backends (server-api/) ------------------------------------------
  /** Address of the server API listener (gRPC, gRPC-Web, Connect); keep it off the public network. */
  serverApiHost: z.string().min(1).default('127.0.0.1'),
  /** Port of the server API listener (0 picks a free one); it listens only with `serverApiKeysFile`. */
  serverApiPort: z.number().int().min(0).max(65535).default(8090),
  /**
   * The API keys file (JSON: `{"keys": [{"name", "key" or "sha256", "scopes"}]}`), read again when
   * it changes, so keys rotate without a restart. Unset: no server API.
   */
  serverApiKeysFile: z.string().min(1).optional(),
  /** Calls per second one API key may make, after a burst of `serverApiBurst`. */
  serverApiRate: positiveInt.default(1000),
  serverApiBurst: positiveInt.default(2000),
  /** Calls the server API runs at once, over all keys; more are refused (resource_exhausted). */
  serverApiMaxInFlight: positiveInt.default(512),

  // --- The edge: socket and HTTP limits, the admin listener, token lifetime -------------------
  // (one block: what a client can make the listener hold, and where operators read metrics)
  /** Address of the admin listener (/metrics, /healthz, /readyz); keep it off the public network. */
  adminHost: z.string().min(1).default('127.0.0.1'),
  /** Port of the admin listener: 0 picks a free one; a negative value disables it. */
  adminPort: z.number().int().max(65535).default(9090),
  /**
   * Most sockets the client listener holds at once (HTTP and WebSocket); one more is destroyed
   * as soon as it is accepted. Below the 20,000 open files a process may hold, leaving room for
   * the store's files.
   */
  maxSockets: positiveInt.default(16_000),
  /** Most sockets from one remote address (0: no limit; behind a load balancer, raise or disable it). */
  maxSocketsPerAddress: z.number().int().min(0).default(1000),
  /** New sockets per second from one remote address (0: no limit). */
  connectRatePerAddress: z.number().int().min(0).default(100),
  /** How many new sockets one address may open at once before that rate applies. */
  connectBurstPerAddress: positiveInt.default(500),
  /**
   * Time a socket has to send a complete request head, and the longest an HTTP socket may stay
   * silent (idle and slowloris sockets are closed; WebSockets have their heartbeat instead).
   */
  headersTimeoutMs: positiveInt.default(10_000),
  /** How long an idle keep-alive HTTP connection stays open between requests. */
  keepAliveTimeoutMs: positiveInt.default(5_000),
  /** Time an HTTP API response has, from its request, to be fully written; a client that does not read is dropped. */
  httpResponseTimeoutMs: positiveInt.default(30_000),
  /** HTTP API requests in progress at once (until each response is flushed); `rate_limited` (429) beyond. */
  maxHttpRequestsInFlight: positiveInt.default(256),
  /** HTTP API requests in progress at once for one user; `rate_limited` (429) beyond. */
  maxHttpRequestsInFlightPerUser: positiveInt.default(4),
  /** Longest token lifetime accepted (`exp` − `iat`, and `exp` − now); longer-lived tokens are refused. */
  maxTokenLifetimeMs: positiveInt.default(24 * 3600 * 1000),
  // --- end of the edge block ----------------------------------------------------------------

  // --- End-to-end encryption keys, to_device and media (docs/operations.md, "Media and keys") --
  /** `keys_upload`, `keys_count` and `to_device_ack` requests one user may make per second. */
  keysRatePerSecond: positiveInt.default(5),
  /** How many of them may come at once before that rate applies. */
  keysBurst: positiveInt.default(200),
  /** Device bundles one user may claim per second (a new member of a big group claims every member's). */
  keysClaimRatePerSecond: positiveInt.default(20),
  /** How many bundles may be claimed at once before that rate applies. */
  keysClaimBurst: positiveInt.default(2000),
  /** Bundles of one user that others may claim per second: nobody can drain someone's one-time prekeys. */
  keysClaimedRatePerSecond: positiveInt.default(1),
  /** How many of one user's bundles may be claimed at once before that rate applies. */
  keysClaimedBurst: positiveInt.default(200),
  /** `to_device` messages one user may send per second (a sender key goes to every member device). */
  toDeviceRatePerSecond: positiveInt.default(100),
  /** How many may be sent at once before that rate applies. */
  toDeviceBurst: positiveInt.default(5000),
  /** `to_device` messages that may wait for one device; past it a `to_device` is refused (`too_large`). */
  maxToDeviceQueue: positiveInt.default(5000),
  /** `media_upload` and `media_download` requests one user may make per second. */
  mediaRatePerSecond: positiveInt.default(10),
  /** How many may come at once before that rate applies. */
  mediaBurst: positiveInt.default(200),
  /** Largest media object, in bytes. */
  maxMediaBytes: positiveInt.default(100 * 1024 * 1024),
  /** Bytes one user may upload per day (declared sizes of `media_upload`). */
  mediaUploadBytesPerDay: positiveInt.default(2 * 1024 * 1024 * 1024),
  /** How long an upload URL works, in seconds. */
  mediaUploadUrlSeconds: positiveInt.default(3600),
  /** How long a download URL works, in seconds. */
  mediaDownloadUrlSeconds: positiveInt.default(300),
  /** Uploads no message listed within this time are deleted. */
  mediaUnreferencedMs: positiveInt.default(24 * 3600 * 1000),
  /** Media is deleted this long after the last message that listed it (the inbox retention by default). */
  mediaRetentionMs: positiveInt.default(30 * 24 * 3600 * 1000),
  /** How often media past those times is looked for and deleted. */
  mediaSweepIntervalMs: positiveInt.default(3600 * 1000),
  /** Embedded: the directory of media files (default `<dataDir>/media`). */
  mediaDir: z.string().min(1).optional(),
  /**
   * Embedded: the base URL clients reach this server at (`https://chat.example.com`), to which
   * media URLs point; default `http://<host>:<port>` of the client listener.
   */
  publicUrl: z.url().optional(),
  /** Cluster mode: the S3-compatible store of media (endpoint; omit for AWS S3 itself). */
  s3Endpoint: z.url().optional(),
  s3Region: z.string().min(1).default('us-east-1'),
  /** Cluster mode: the bucket of media (setting it turns S3 media on). */
  s3Bucket: z.string().min(1).optional(),
  s3AccessKeyId: z.string().min(1).optional(),
  s3SecretAccessKey: z.string().min(1).optional(),
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need. */
  s3ForcePathStyle: z.boolean().default(true),
  // --- end of keys and media ------------------------------------------------------------------

  // --- Parley Web -------------------------------------------------------------------------------
  /** Serve the web client (`@parley/web`, when built) at `/` on the client listener. */
  web: z.boolean().default(true),
  /** The web client's files (default: the built `packages/web/dist` beside the server). */
  webDir: z.string().min(1).optional(),
  /**
   * The development sign-in (`POST /v1/dev/token`: anyone may get a token for any user). On by
   * itself only with the generated development secret; this turns it on with a configured HS256
   * secret too. Never for a deployment real users reach.
   */
  devTokens: z.boolean().default(false),
});

/** The validated configuration with every default filled in. */
export type Config = z.infer<typeof configSchema>;

/** A partial configuration as written in a file or collected from the environment. */
export type ConfigInput = z.input<typeof configSchema>;

/** Each config key's environment variable, and how its text becomes a value. */
export const ENV_KEYS: Record<keyof Config, { env: string; parse: 'string' | 'int' | 'bool' | 'list' }> = {
  host: { env: 'PARLEY_HOST', parse: 'string' },
  webPushSubject: { env: 'PARLEY_WEB_PUSH_SUBJECT', parse: 'string' },
  vapidPublicKey: { env: 'PARLEY_VAPID_PUBLIC_KEY', parse: 'string' },
  vapidPrivateKey: { env: 'PARLEY_VAPID_PRIVATE_KEY', parse: 'string' },
  apnsKeyFile: { env: 'PARLEY_APNS_KEY_FILE', parse: 'string' },
  apnsKeyId: { env: 'PARLEY_APNS_KEY_ID', parse: 'string' },
  apnsTeamId: { env: 'PARLEY_APNS_TEAM_ID', parse: 'string' },
  apnsEnvironment: { env: 'PARLEY_APNS_ENVIRONMENT', parse: 'string' },
  apnsEndpoint: { env: 'PARLEY_APNS_ENDPOINT', parse: 'string' },
  apnsSandboxEndpoint: { env: 'PARLEY_APNS_SANDBOX_ENDPOINT', parse: 'string' },
  fcmServiceAccountFile: { env: 'PARLEY_FCM_SERVICE_ACCOUNT_FILE', parse: 'string' },
  fcmEndpoint: { env: 'PARLEY_FCM_ENDPOINT', parse: 'string' },
  pushCaFile: { env: 'PARLEY_PUSH_CA_FILE', parse: 'string' },
  pushAllowPrivateEndpoints: { env: 'PARLEY_PUSH_ALLOW_PRIVATE_ENDPOINTS', parse: 'bool' },
  pushBurstMs: { env: 'PARLEY_PUSH_BURST_MS', parse: 'int' },
  pushRetries: { env: 'PARLEY_PUSH_RETRIES', parse: 'int' },
  pushTtlSeconds: { env: 'PARLEY_PUSH_TTL_SECONDS', parse: 'int' },
  accountRatePerSecond: { env: 'PARLEY_ACCOUNT_RATE_PER_SECOND', parse: 'int' },
  accountBurst: { env: 'PARLEY_ACCOUNT_BURST', parse: 'int' },
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
  fanoutRatePerSecond: { env: 'PARLEY_FANOUT_RATE_PER_SECOND', parse: 'int' },
  fanoutBurst: { env: 'PARLEY_FANOUT_BURST', parse: 'int' },
  readRatePerSecond: { env: 'PARLEY_READ_RATE_PER_SECOND', parse: 'int' },
  readBurst: { env: 'PARLEY_READ_BURST', parse: 'int' },
  typingRatePerSecond: { env: 'PARLEY_TYPING_RATE_PER_SECOND', parse: 'int' },
  typingBurst: { env: 'PARLEY_TYPING_BURST', parse: 'int' },
  presenceRatePerSecond: { env: 'PARLEY_PRESENCE_RATE_PER_SECOND', parse: 'int' },
  presenceBurst: { env: 'PARLEY_PRESENCE_BURST', parse: 'int' },
  maxReplyBytes: { env: 'PARLEY_MAX_REPLY_BYTES', parse: 'int' },
  maxPipelinedRequests: { env: 'PARLEY_MAX_PIPELINED_REQUESTS', parse: 'int' },
  maxConcurrentReads: { env: 'PARLEY_MAX_CONCURRENT_READS', parse: 'int' },
  slowReaderMs: { env: 'PARLEY_SLOW_READER_MS', parse: 'int' },
  maxUnauthenticatedPerAddress: { env: 'PARLEY_MAX_UNAUTHENTICATED_PER_ADDRESS', parse: 'int' },
  // Group admission (issue 10).
  groupAddsPerRecipientBurst: { env: 'PARLEY_GROUP_ADDS_PER_RECIPIENT_BURST', parse: 'int' },
  groupAddsPerRecipientPerHour: { env: 'PARLEY_GROUP_ADDS_PER_RECIPIENT_PER_HOUR', parse: 'int' },
  inviteCreateBurst: { env: 'PARLEY_INVITE_CREATE_BURST', parse: 'int' },
  inviteCreatePerHour: { env: 'PARLEY_INVITE_CREATE_PER_HOUR', parse: 'int' },
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
  // The edge block.
  beforeSendUrl: { env: 'PARLEY_BEFORE_SEND_URL', parse: 'string' },
  beforeSendSecret: { env: 'PARLEY_BEFORE_SEND_SECRET', parse: 'string' },
  beforeSendTimeoutMs: { env: 'PARLEY_BEFORE_SEND_TIMEOUT_MS', parse: 'int' },
  beforeSendPolicy: { env: 'PARLEY_BEFORE_SEND_POLICY', parse: 'string' },
  beforeSendMaxInFlight: { env: 'PARLEY_BEFORE_SEND_MAX_IN_FLIGHT', parse: 'int' },
  serviceAccounts: { env: 'PARLEY_SERVICE_ACCOUNTS', parse: 'list' },
  webhookUrls: { env: 'PARLEY_WEBHOOK_URLS', parse: 'list' },
  webhookSecret: { env: 'PARLEY_WEBHOOK_SECRET', parse: 'string' },
  webhookEvents: { env: 'PARLEY_WEBHOOK_EVENTS', parse: 'list' },
  webhookIncludeBodies: { env: 'PARLEY_WEBHOOK_INCLUDE_BODIES', parse: 'bool' },
  webhookTimeoutMs: { env: 'PARLEY_WEBHOOK_TIMEOUT_MS', parse: 'int' },
  webhookRetries: { env: 'PARLEY_WEBHOOK_RETRIES', parse: 'int' },
  webhookRetryMaxMs: { env: 'PARLEY_WEBHOOK_RETRY_MAX_MS', parse: 'int' },
  tlsCertFile: { env: 'PARLEY_TLS_CERT_FILE', parse: 'string' },
  tlsKeyFile: { env: 'PARLEY_TLS_KEY_FILE', parse: 'string' },
  tlsMinVersion: { env: 'PARLEY_TLS_MIN_VERSION', parse: 'string' },
  hstsMaxAgeSeconds: { env: 'PARLEY_HSTS_MAX_AGE_SECONDS', parse: 'int' },
  serverApiHost: { env: 'PARLEY_SERVER_API_HOST', parse: 'string' },
  serverApiPort: { env: 'PARLEY_SERVER_API_PORT', parse: 'int' },
  serverApiKeysFile: { env: 'PARLEY_SERVER_API_KEYS_FILE', parse: 'string' },
  serverApiRate: { env: 'PARLEY_SERVER_API_RATE', parse: 'int' },
  serverApiBurst: { env: 'PARLEY_SERVER_API_BURST', parse: 'int' },
  serverApiMaxInFlight: { env: 'PARLEY_SERVER_API_MAX_IN_FLIGHT', parse: 'int' },
  adminHost: { env: 'PARLEY_ADMIN_HOST', parse: 'string' },
  adminPort: { env: 'PARLEY_ADMIN_PORT', parse: 'int' },
  maxSockets: { env: 'PARLEY_MAX_SOCKETS', parse: 'int' },
  maxSocketsPerAddress: { env: 'PARLEY_MAX_SOCKETS_PER_ADDRESS', parse: 'int' },
  connectRatePerAddress: { env: 'PARLEY_CONNECT_RATE_PER_ADDRESS', parse: 'int' },
  connectBurstPerAddress: { env: 'PARLEY_CONNECT_BURST_PER_ADDRESS', parse: 'int' },
  headersTimeoutMs: { env: 'PARLEY_HEADERS_TIMEOUT_MS', parse: 'int' },
  keepAliveTimeoutMs: { env: 'PARLEY_KEEP_ALIVE_TIMEOUT_MS', parse: 'int' },
  httpResponseTimeoutMs: { env: 'PARLEY_HTTP_RESPONSE_TIMEOUT_MS', parse: 'int' },
  maxHttpRequestsInFlight: { env: 'PARLEY_MAX_HTTP_REQUESTS_IN_FLIGHT', parse: 'int' },
  maxHttpRequestsInFlightPerUser: { env: 'PARLEY_MAX_HTTP_REQUESTS_IN_FLIGHT_PER_USER', parse: 'int' },
  maxTokenLifetimeMs: { env: 'PARLEY_MAX_TOKEN_LIFETIME_MS', parse: 'int' },
  // Keys, to_device and media.
  keysRatePerSecond: { env: 'PARLEY_KEYS_RATE_PER_SECOND', parse: 'int' },
  keysBurst: { env: 'PARLEY_KEYS_BURST', parse: 'int' },
  keysClaimRatePerSecond: { env: 'PARLEY_KEYS_CLAIM_RATE_PER_SECOND', parse: 'int' },
  keysClaimBurst: { env: 'PARLEY_KEYS_CLAIM_BURST', parse: 'int' },
  keysClaimedRatePerSecond: { env: 'PARLEY_KEYS_CLAIMED_RATE_PER_SECOND', parse: 'int' },
  keysClaimedBurst: { env: 'PARLEY_KEYS_CLAIMED_BURST', parse: 'int' },
  toDeviceRatePerSecond: { env: 'PARLEY_TO_DEVICE_RATE_PER_SECOND', parse: 'int' },
  toDeviceBurst: { env: 'PARLEY_TO_DEVICE_BURST', parse: 'int' },
  maxToDeviceQueue: { env: 'PARLEY_MAX_TO_DEVICE_QUEUE', parse: 'int' },
  mediaRatePerSecond: { env: 'PARLEY_MEDIA_RATE_PER_SECOND', parse: 'int' },
  mediaBurst: { env: 'PARLEY_MEDIA_BURST', parse: 'int' },
  maxMediaBytes: { env: 'PARLEY_MAX_MEDIA_BYTES', parse: 'int' },
  mediaUploadBytesPerDay: { env: 'PARLEY_MEDIA_UPLOAD_BYTES_PER_DAY', parse: 'int' },
  mediaUploadUrlSeconds: { env: 'PARLEY_MEDIA_UPLOAD_URL_SECONDS', parse: 'int' },
  mediaDownloadUrlSeconds: { env: 'PARLEY_MEDIA_DOWNLOAD_URL_SECONDS', parse: 'int' },
  mediaUnreferencedMs: { env: 'PARLEY_MEDIA_UNREFERENCED_MS', parse: 'int' },
  mediaRetentionMs: { env: 'PARLEY_MEDIA_RETENTION_MS', parse: 'int' },
  mediaSweepIntervalMs: { env: 'PARLEY_MEDIA_SWEEP_INTERVAL_MS', parse: 'int' },
  mediaDir: { env: 'PARLEY_MEDIA_DIR', parse: 'string' },
  publicUrl: { env: 'PARLEY_PUBLIC_URL', parse: 'string' },
  s3Endpoint: { env: 'PARLEY_S3_ENDPOINT', parse: 'string' },
  s3Region: { env: 'PARLEY_S3_REGION', parse: 'string' },
  s3Bucket: { env: 'PARLEY_S3_BUCKET', parse: 'string' },
  s3AccessKeyId: { env: 'PARLEY_S3_ACCESS_KEY_ID', parse: 'string' },
  s3SecretAccessKey: { env: 'PARLEY_S3_SECRET_ACCESS_KEY', parse: 'string' },
  s3ForcePathStyle: { env: 'PARLEY_S3_FORCE_PATH_STYLE', parse: 'bool' },
  web: { env: 'PARLEY_WEB', parse: 'bool' },
  webDir: { env: 'PARLEY_WEB_DIR', parse: 'string' },
  devTokens: { env: 'PARLEY_DEV_TOKENS', parse: 'bool' },
};
