import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClusterCore } from './cluster/cluster-core.js';
import type { Config } from './config/schema.js';
import { createCore } from './core/core.js';
import { resolveKeys, TokenVerifier } from './gateway/auth.js';
import { createHttpHandler } from './gateway/http.js';
import { Metrics } from './gateway/metrics.js';
import { Gateway } from './gateway/ws-gateway.js';
import { type Clock, systemClock } from './ports/clock.js';
import type { Logger } from './ports/logger.js';

/** A running (or ready to run) Parley server. */
export interface ParleyServer {
  /** Recovers unfinished fan-out, then listens. Resolves with the bound address. */
  start(): Promise<AddressInfo>;
  /** Graceful stop: drain sockets over `drainMs`, flush and close the store. */
  stop(drainMs?: number): Promise<void>;
  /** True when the development secret is in use (no key configured). */
  readonly devSecret: boolean;
  readonly config: Config;
}

/**
 * The composition root of the embedded, single-process server: the core (store, single writers,
 * fan-out, inboxes, sessions) and one gateway in the same process, behind one HTTP server.
 */
export function createParleyServer(config: Config, deps: { log: Logger; clock?: Clock }): ParleyServer {
  const { log } = deps;
  const clock = deps.clock ?? systemClock;
  const metrics = new Metrics();
  const keys = resolveKeys(config);
  const verifier = new TokenVerifier(keys, config);
  const core = config.cassandra
    ? createClusterCore(config, { log, clock, metrics })
    : createCore(config, { log, clock, metrics });
  // A cluster process without the gateway role runs its stages only: no client connections.
  const servesClients = !config.cassandra || config.roles.includes('gateway');
  const gateway = new Gateway({ config, id: core.gatewayId, core: core.api, verifier, clock, log, metrics });
  core.sessions.attach(core.gatewayId, gateway);

  let ready = false;
  let stopping = false;
  const http: Server = createServer(
    createHttpHandler({
      config,
      chat: core.api.chat,
      verifier,
      metrics,
      log,
      ready: async () => ready && !stopping && core.healthy(),
      servesClients,
    }),
  );
  http.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/v1/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    if (!servesClients) {
      socket.end(
        'HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nthis process has no gateway role',
      );
      return;
    }
    gateway.handleUpgrade(req, socket, head);
  });
  http.headersTimeout = 10_000;
  http.requestTimeout = 30_000;

  return {
    config,
    devSecret: keys.devSecret,
    async start() {
      await core.start();
      await listen(http, config);
      ready = true;
      return http.address() as AddressInfo;
    },
    async stop(drainMs = config.drainMs) {
      if (stopping) return;
      stopping = true;
      http.close();
      await gateway.drain(drainMs);
      http.closeAllConnections();
      await core.stop();
      metrics.stop();
    },
  };
}

/** Listens on the configured address; rejects on errors such as a port in use. */
export function listen(http: Server, config: Pick<Config, 'host' | 'port'>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    // A reconnect storm needs a deep accept queue (Node's default backlog is 511).
    http.listen({ port: config.port, host: config.host, backlog: 4096 }, () => {
      http.off('error', reject);
      resolve();
    });
  });
}
