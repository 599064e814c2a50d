import type { AddressInfo } from 'node:net';
import { CloseCode } from '@parley/protocol';
import { createEmbeddedBackend } from './backend/embedded.js';
import { isServed, PublicAddress } from './backend/media.js';
import type { ClusterAdapters } from './cluster/adapters.js';
import { createClusterBackend } from './cluster/cluster-backend.js';
import { loadClusterEngines } from './cluster/engine-package.js';
import type { Config } from './config/schema.js';
import { resolveKeys, TokenVerifier } from './gateway/auth.js';
import { createAdminHandler, createHttpHandler } from './gateway/http.js';
import {
  closeListener,
  createAdminListener,
  createClientListener,
  drainThenClose,
  listen,
} from './gateway/listener.js';
import { WebApp } from './gateway/web.js';
import { Gateway } from './gateway/ws-gateway.js';
import { Metrics } from './metrics.js';
import { type Clock, systemClock } from './ports/clock.js';
import type { Logger } from './ports/logger.js';
import { loadServerApi } from './server-api/load.js';

/** Opens the real engines, loading `@parley/cluster` only then: embedded mode never loads their drivers. */
async function openEngines(config: Config, log: Logger): Promise<ClusterAdapters> {
  return (await loadClusterEngines()).openEngines(config, log);
}

/** A running (or ready to run) Parley server. */
export interface ParleyServer {
  /**
   * Recovers unfinished fan-out, then listens (admin listener first). Resolves with the client
   * listener's address; rejects with a `ListenError` (after closing the store) when it cannot listen.
   */
  start(): Promise<AddressInfo>;
  /**
   * Graceful stop: drain over `drainMs` with the listeners still open (readiness 503, upgrades
   * 503), then close them, flush and close the store.
   */
  stop(drainMs?: number): Promise<void>;
  /** The admin listener's address once started; null when it is disabled. */
  readonly adminAddress: AddressInfo | null;
  /** The server API listener's address once started; null without `serverApiKeysFile`. */
  readonly serverApiAddress: AddressInfo | null;
  /** True when the development secret is in use (no key configured). */
  readonly devSecret: boolean;
  readonly config: Config;
}

/** What a server is built with besides its configuration. */
export interface ServerDeps {
  log: Logger;
  clock?: Clock;
  /**
   * Cluster mode's adapters. Absent, a process with `cassandra` configured opens the real engines
   * (`@parley/cluster`, loaded only then, so an embedded process never loads their drivers).
   */
  adapters?: ClusterAdapters;
}

/**
 * The composition root: builds a server from its configuration and an adapter set — embedded
 * (the SQLite store and in-process presence, buckets and writers) or cluster (the engines, or any
 * `ClusterAdapters`) — with one gateway behind the client listener (HTTP API and WebSocket
 * upgrades) and metrics on the admin listener. Everything is built and wired before it resolves;
 * `start` recovers and listens.
 */
export async function createParleyServer(config: Config, deps: ServerDeps): Promise<ParleyServer> {
  const { log } = deps;
  const clock = deps.clock ?? systemClock;
  const metrics = new Metrics();
  const keys = resolveKeys(config);
  const verifier = new TokenVerifier(keys, config);
  const clustered = deps.adapters !== undefined || config.cassandra !== undefined;
  const address = new PublicAddress(config);
  const backend = clustered
    ? createClusterBackend(config, deps.adapters ?? (await openEngines(config, log)), {
        log,
        clock,
        metrics,
        address,
      })
    : createEmbeddedBackend(config, { log, clock, metrics, address });
  // A cluster process without the gateway role runs its stages only: no client connections.
  const servesClients = !clustered || config.roles.includes('gateway');
  const gateway = new Gateway({
    config,
    id: backend.gatewayId,
    backend: backend.api,
    verifier,
    clock,
    log,
    metrics,
  });
  backend.sessions.attach(backend.gatewayId, gateway);

  let ready = false;
  let stopping = false;
  const readiness = async () => ready && !stopping && backend.healthy();
  const client = createClientListener({
    config,
    metrics,
    log,
    onRequest: createHttpHandler({
      config,
      chat: backend.api.chat,
      account: backend.api.account,
      verifier,
      metrics,
      log,
      ready: readiness,
      servesClients,
      media: backend.mediaStore && isServed(backend.mediaStore) ? backend.mediaStore : undefined,
      web: servesClients ? WebApp.create(config, keys) : undefined,
    }),
    ...(servesClients ? { onUpgrade: (req, socket, head) => gateway.handleUpgrade(req, socket, head) } : {}),
  });
  const admin = createAdminListener(config, createAdminHandler({ metrics, log, ready: readiness }));
  let adminAddress: AddressInfo | null = null;
  // The server API runs where clients are served: it calls the backend as a gateway does.
  const serverApi = servesClients ? await loadServerApi(config, backend, keys, log) : null;
  let serverApiAddress: AddressInfo | null = null;

  return {
    config,
    devSecret: keys.devSecret,
    get adminAddress() {
      return adminAddress;
    },
    get serverApiAddress() {
      return serverApiAddress;
    },
    async start() {
      await backend.start();
      try {
        // The admin listener first: a process whose client port is open is taken as serving.
        if (admin) adminAddress = await listen(admin, config.adminHost, config.adminPort, 'admin');
        if (serverApi) serverApiAddress = await serverApi.listen();
        const listening = await listen(client, config.host, config.port, 'client');
        address.set(listening.port);
        ready = true;
        return listening;
      } catch (err) {
        closeListener(admin);
        serverApi?.close();
        gateway.closeAll(CloseCode.ServiceRestart, 'server restart');
        await backend.stop();
        metrics.stop();
        throw err;
      }
    },
    async stop(drainMs = config.drainMs) {
      if (stopping) return;
      stopping = true;
      await drainThenClose([client, admin], (windowMs) => gateway.drain(windowMs), drainMs);
      serverApi?.close();
      await backend.stop();
      metrics.stop();
    },
  };
}
