import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openAndMigrate, SqliteStore } from './adapters/sqlite/sqlite-store.js';
import { DB_FILE } from './backend/embedded.js';
import { loadClusterEngines } from './cluster/engine-package.js';
import { logPushQueue, logWebhookQueue } from './cluster/log-job-queue.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import {
  type DlqTarget,
  dlqCommand,
  PUSH_DLQ_USAGE,
  pushDlq,
  WEBHOOKS_DLQ_USAGE,
  webhooksDlq,
} from './dlq.js';
import { formatDuration, mintToken, parseTtl, resolveKeys } from './gateway/auth.js';
import { ListenError } from './gateway/listener.js';
import { WebApp } from './gateway/web.js';
import { createLogger } from './logger.js';
import { createParleyServer } from './main.js';
import type { Logger } from './ports/logger.js';
import { runPrimary } from './workers/primary.js';
import { runWorker } from './workers/worker.js';

const USAGE = `usage: parley <command> [options]

commands:
  serve [--workers N]         run the server (what \`npm start\` runs); with N > 1, the backend runs
                              in this process and N gateway workers share the port
  token --user U [--device D] [--ttl 1h]
                              mint a client token with the configured HS256 secret
                              (or the development secret in the data directory)
  api <call> [--field value …] call the server API as an app backend does (\`parley api --help\`)
  migrate                     create or upgrade the embedded store's schema, then exit
  push dlq list [--limit N] [--after ID] | show ID | replay ID…|--all | purge ID…|--all
                              dead-lettered push jobs (the embedded store, or Cassandra in
                              cluster mode): list, inspect, queue again, or delete
  webhooks dlq list … | show ID | replay ID…|--all | purge ID…|--all
                              dead-lettered webhook deliveries, the same way
  migrate-cluster --cassandra HOST:PORT[,…] --kafka HOST:PORT[,…] [--cassandra-dc DC]
                  [--keyspace parley] [--replication-factor 3] [--partitions 64]
                  [--topic-prefix parley.] [--retention-days 7]
                              create the cluster mode's Cassandra keyspace and tables and its
                              Kafka topics (idempotent), then exit

options:
  --config FILE               JSON config file (environment variables PARLEY_* override it)
  -h, --help                  this text

Settings and their environment variables: docs/operations.md.`;

async function main(argv: string[]): Promise<number> {
  // The server API's client has flags of its own (one per field of each call).
  if (argv[0] === 'api')
    return (await import('./server-api/api-cli.js')).apiCommand(argv.slice(1), process.env);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      user: { type: 'string' },
      device: { type: 'string' },
      ttl: { type: 'string', default: '1h' },
      workers: { type: 'string' },
      cassandra: { type: 'string' },
      'cassandra-dc': { type: 'string', default: 'datacenter1' },
      keyspace: { type: 'string', default: 'parley' },
      'replication-factor': { type: 'string', default: '3' },
      kafka: { type: 'string' },
      partitions: { type: 'string', default: '64' },
      'topic-prefix': { type: 'string', default: 'parley.' },
      'retention-days': { type: 'string', default: '7' },
      all: { type: 'boolean' },
      limit: { type: 'string' },
      after: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0];
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  if (command === 'migrate-cluster') return migrateClusterCommand(values);
  const overrides = values.workers !== undefined ? { workers: Number(values.workers) } : {};
  const config = loadConfig({
    ...(values.config ? { file: values.config } : {}),
    env: process.env,
    overrides,
  });
  switch (command) {
    case 'serve':
      return serve(config);
    case 'token':
      return token(config, values);
    case 'push':
    case 'webhooks':
      return dlqCommandOf(command, config, positionals.slice(1), values);
    case 'migrate': {
      const path = join(config.dataDir, DB_FILE);
      const { db, applied } = openAndMigrate(path);
      db.close();
      console.log(
        applied.length > 0 ? `migrated ${path}: applied ${applied.join(', ')}` : `${path} is up to date`,
      );
      return 0;
    }
    default:
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

/** `parley push dlq …` and `parley webhooks dlq …` on the store the configuration names (see dlq.ts). */
async function dlqCommandOf(
  kind: 'push' | 'webhooks',
  config: Config,
  args: string[],
  values: { all?: boolean | undefined; limit?: string | undefined; after?: string | undefined },
): Promise<number> {
  if (args[0] !== 'dlq') {
    console.error(kind === 'push' ? PUSH_DLQ_USAGE : WEBHOOKS_DLQ_USAGE);
    return 2;
  }
  const opened = await openDlqTarget(kind, config);
  try {
    return await dlqCommand(
      opened.target,
      {
        action: args[1],
        ids: args.slice(2),
        all: values.all === true,
        ...(values.limit ? { limit: Number(values.limit) } : {}),
        ...(values.after ? { after: values.after } : {}),
      },
      (text) => console.log(text),
    );
  } finally {
    await opened.close();
  }
}

/** The dead letters and queue of the configured deployment, opened for one command. */
async function openDlqTarget(
  kind: 'push' | 'webhooks',
  config: Config,
): Promise<{ target: DlqTarget<{ id: string }>; close(): Promise<void> }> {
  if (config.cassandra === undefined) {
    const store = new SqliteStore(join(config.dataDir, DB_FILE));
    const target =
      kind === 'push'
        ? pushDlq(store.deadLetters, store.pushQueue)
        : webhooksDlq(store.webhookDeadLetters, store.webhookQueue);
    return { target: target as DlqTarget<{ id: string }>, close: () => store.close() };
  }
  const adapters = await (await loadClusterEngines()).openEngines(config, createLogger('warn'));
  const { store, log } = adapters;
  const target =
    kind === 'push'
      ? pushDlq(store.deadLetters, logPushQueue(log, config.topicPrefix))
      : webhooksDlq(store.webhookDeadLetters, logWebhookQueue(log, config.topicPrefix));
  return { target: target as DlqTarget<{ id: string }>, close: () => adapters.close() };
}

async function migrateClusterCommand(values: Record<string, string | boolean | undefined>): Promise<number> {
  const list = (v: unknown) => (typeof v === 'string' && v !== '' ? v.split(',') : []);
  const int = (name: string) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--${name} must be a positive integer`);
    return n;
  };
  const contactPoints = list(values.cassandra);
  const brokers = list(values.kafka);
  if (contactPoints.length === 0 || brokers.length === 0) {
    console.error('parley migrate-cluster: --cassandra and --kafka are required');
    return 2;
  }
  const rf = int('replication-factor');
  const { migrateCluster } = await loadClusterEngines();
  const report = await migrateCluster({
    cassandra: {
      contactPoints,
      localDataCenter: String(values['cassandra-dc']),
      keyspace: String(values.keyspace),
      replicationFactor: rf,
    },
    kafka: {
      brokers,
      topicPrefix: String(values['topic-prefix']),
      partitions: int('partitions'),
      replicationFactor: rf,
      retentionMs: int('retention-days') * 24 * 3600 * 1000,
    },
  });
  console.log(
    `keyspace ${report.keyspace} ready; topics created: ${report.topicsCreated.join(', ') || 'none'}; already there: ${report.topicsExisting.join(', ') || 'none'}`,
  );
  return 0;
}

async function token(
  config: Config,
  values: { user?: string | undefined; device?: string | undefined; ttl: string },
): Promise<number> {
  if (!values.user) {
    console.error('parley token: --user is required');
    return 2;
  }
  const keys = resolveKeys(config);
  if (!keys.secret) {
    console.error(
      'parley token: minting needs an HS256 secret (PARLEY_JWT_SECRET); this server verifies public-key tokens only',
    );
    return 2;
  }
  const ttlSeconds = parseTtl(values.ttl);
  if (ttlSeconds * 1000 > config.maxTokenLifetimeMs) {
    console.error(
      `parley token: --ttl ${values.ttl} is longer than the ${formatDuration(config.maxTokenLifetimeMs / 1000)} this server accepts (maxTokenLifetimeMs); the token would be refused`,
    );
    return 2;
  }
  const claims: Parameters<typeof mintToken>[1] = { user: values.user, ttlSeconds };
  if (values.device) claims.device = values.device;
  if (config.jwtIssuer) claims.issuer = config.jwtIssuer;
  if (config.jwtAudience) claims.audience = config.jwtAudience;
  console.log(await mintToken(keys.secret, claims));
  return 0;
}

async function serve(config: Config): Promise<number> {
  const log = createLogger(config.logLevel);
  if (config.workers > 1) return serveWorkers(config, log);
  const server = await createParleyServer(config, { log });
  const address = await server.start();
  if (server.devSecret) printDevBanner(config, address.address, address.port, log);
  logWebUrl(config, address.address, address.port, log);
  logAdmin(log, server.adminAddress);
  logServerApi(log, server.serverApiAddress);
  log.info({ host: address.address, port: address.port, dataDir: config.dataDir }, 'parley listening');
  onSignals(log, config, (drainMs) => server.stop(drainMs));
  return new Promise<number>(() => {});
}

/** Says where the admin listener is, before `parley listening` (tests and tools wait for that line). */
function logAdmin(log: Logger, address: AddressInfo | null): void {
  if (address) log.info({ host: address.address, port: address.port }, 'parley admin listening');
  else log.info({}, 'admin listener disabled (metrics: false or a negative adminPort)');
}

/** Says where the server API listens, when it does (before `parley listening`). */
function logServerApi(log: Logger, address: AddressInfo | null): void {
  if (address) log.info({ host: address.address, port: address.port }, 'parley server API listening');
}

function printDevBanner(config: Config, host: string, port: number, log: Logger): void {
  const banner = [
    '',
    '************************************************************************',
    '  DEVELOPMENT MODE: no token key is configured (PARLEY_JWT_SECRET,',
    '  PARLEY_JWT_PUBLIC_KEYS or PARLEY_JWKS_URL), so tokens are checked',
    `  against a generated secret in ${join(config.dataDir, 'dev-jwt-secret')}.`,
    '  Do not run like this in production. Mint a token with:',
    '      npx parley token --user alice',
    `  and connect to ws://${host}:${port}/v1/ws`,
    '************************************************************************',
    '',
  ].join('\n');
  process.stderr.write(banner);
  log.warn({}, 'development secret in use: configure PARLEY_JWT_SECRET or public keys for production');
}

/** Says where to open Parley Web, when this server serves it. */
function logWebUrl(config: Config, host: string, port: number, log: Logger): void {
  if (!WebApp.create(config, resolveKeys(config))) return;
  const shown = ['0.0.0.0', '::'].includes(host) ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = config.publicUrl ?? `http://${shown}:${port}/`;
  process.stderr.write(`\n  Parley Web: open ${url} in a browser\n\n`);
  log.info({ url }, 'parley web');
}

/** SIGTERM/SIGINT drain and stop; a second signal exits at once. */
function onSignals(log: Logger, config: Config, stop: (drainMs: number) => Promise<void>): void {
  let signals = 0;
  const onSignal = (signal: string) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal, drainMs: config.drainMs }, 'draining');
    stop(config.drainMs).then(
      () => {
        log.info({}, 'stopped');
        process.exit(0);
      },
      (err) => {
        log.error({ err: String(err) }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** `serve --workers N`: the primary runs the backend; each worker process runs a gateway. */
async function serveWorkers(config: Config, log: Logger): Promise<number> {
  if (cluster.isWorker) {
    await runWorker(config, log);
    return new Promise<number>(() => {});
  }
  const server = await runPrimary(config, config.workers, log);
  const devSecret = resolveKeys(config).devSecret;
  if (devSecret) printDevBanner(config, config.host, server.port, log);
  logWebUrl(config, config.host, server.port, log);
  logAdmin(log, server.adminAddress);
  logServerApi(log, server.serverApiAddress);
  log.info(
    { host: config.host, port: server.port, workers: config.workers, dataDir: config.dataDir },
    'parley listening',
  );
  onSignals(log, config, () => server.stop());
  return new Promise<number>(() => {});
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else if (err instanceof ListenError) console.error(`parley: ${err.message}`);
    else console.error(err);
    // Exit now: a server that failed to start may still hold handles (workers, the store's thread).
    process.exit(1);
  },
);
