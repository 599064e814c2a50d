import cluster, { type Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry } from 'prom-client';
import {
  ACCOUNT_METHODS,
  CHAT_METHODS,
  KEYS_METHODS,
  MEDIA_METHODS,
  SESSION_METHODS,
} from '../backend/api.js';
import { type Backend, createEmbeddedBackend } from '../backend/embedded.js';
import { PublicAddress } from '../backend/media.js';
import { frameText } from '../backend/sessions.js';
import type { Config } from '../config/schema.js';
import { resolveKeys } from '../gateway/auth.js';
import { createAdminHandler } from '../gateway/http.js';
import { closeListener, createAdminListener, ListenError, listen } from '../gateway/listener.js';
import { Metrics } from '../metrics.js';
import { systemClock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { GatewayLink } from '../ports/sessions.js';
import { loadServerApi } from '../server-api/load.js';
import { IpcChannel } from './ipc.js';

/** The backend methods workers may call. */
const BACKEND_METHODS = new Set<string>([
  ...CHAT_METHODS.map((m) => `chat.${m}`),
  ...SESSION_METHODS.map((m) => `sessions.${m}`),
  ...ACCOUNT_METHODS.map((m) => `account.${m}`),
  ...KEYS_METHODS.map((m) => `keys.${m}`),
  ...MEDIA_METHODS.map((m) => `media.${m}`),
]);

type MetricsJson = Awaited<ReturnType<Metrics['registry']['getMetricsAsJSON']>>;

interface WorkerHandle {
  worker: Worker;
  channel: IpcChannel;
  detach: () => void;
}

/** A running multi-process server (the primary's view). */
export interface PrimaryServer {
  port: number;
  /** The admin listener's address (served by the primary); null when it is disabled. */
  adminAddress: AddressInfo | null;
  /** The server API's address (served by the primary, on the backend); null without a keys file. */
  serverApiAddress: AddressInfo | null;
  /** Drains every worker, then closes the admin listener and the backend. */
  stop(): Promise<void>;
}

/**
 * `parley serve --workers N`: the primary process runs the backend (the store and every single
 * writer: one writer per conversation and per inbox, as in one process), and N gateway workers
 * (Node's cluster module, sharing the listening port round-robin) hold the sockets. Workers call
 * the backend over IPC; the backend routes live frames to the workers that hold each user's devices, so
 * routing, device replacement, per-user limits and presence are deployment-wide. This is how one
 * node gets past the per-process open-file limit and uses every CPU core for sockets. The primary
 * also serves the admin listener, with every process's metrics aggregated.
 */
export async function runPrimary(config: Config, workers: number, log: Logger): Promise<PrimaryServer> {
  const keys = resolveKeys(config); // creates the development secret once, before workers read it
  const metrics = new Metrics();
  const address = new PublicAddress(config);
  const backend = createEmbeddedBackend(config, { log, clock: systemClock, metrics, address });
  await backend.start();
  const handles = new Map<number, WorkerHandle>();
  let stopping = false;
  let failListen: (message: string) => void = () => {};
  const listenFailed = new Promise<never>((_, reject) => {
    failListen = (message) => reject(new ListenError(message));
  });
  const admin = createAdminListener(
    config,
    createAdminHandler({
      metrics,
      log,
      metricsText: () => aggregateMetrics(handles, metrics),
      ready: () => !stopping && backend.healthy(),
    }),
  );

  const serverApi = await loadServerApi(config, backend, keys, log);

  const fork = (): Worker => {
    const worker = cluster.fork();
    const channel = new IpcChannel(worker, {
      call: (method, args) => call(backend, method, args),
      message: (kind, a) => {
        if (kind === 'listen-failed') failListen(String(a[0]));
      },
    });
    const link: GatewayLink = {
      deliver: (user, frame) => channel.message('d', user, frameText(frame)),
      send: (conn, frame) => channel.message('s', conn, frame),
      close: (conn, code, reason) => channel.message('c', conn, code, reason),
      toDeviceWaiting: (conn) => channel.message('t', conn),
    };
    const detach = backend.sessions.attach(`w${worker.id}`, link);
    handles.set(worker.id, { worker, channel, detach });
    worker.on('exit', (code, signal) => {
      channel.failAll('worker exited');
      detach();
      handles.delete(worker.id);
      if (!stopping) {
        log.error({ worker: worker.id, code, signal }, 'gateway worker exited; starting another');
        fork();
      }
    });
    return worker;
  };

  /** Stops what started when the server cannot come up, so the error reaches the operator alone. */
  const abandon = async (): Promise<void> => {
    stopping = true;
    for (const h of handles.values()) h.worker.process.kill('SIGKILL');
    closeListener(admin);
    serverApi?.close();
    await backend.stop();
    metrics.stop();
  };

  let port: number;
  let adminAddress: AddressInfo | null = null;
  let serverApiAddress: AddressInfo | null = null;
  try {
    if (admin) adminAddress = await listen(admin, config.adminHost, config.adminPort, 'admin');
    if (serverApi) serverApiAddress = await serverApi.listen();
    const listening = Array.from(
      { length: workers },
      () =>
        new Promise<number>((resolve, reject) => {
          const w = fork();
          w.once('listening', (address) => resolve(address.port));
          w.once('exit', (code) => reject(new Error(`gateway worker exited (${code}) before listening`)));
        }),
    );
    port = (await Promise.race([Promise.all(listening), listenFailed]))[0]!;
    address.set(port);
  } catch (err) {
    await abandon();
    throw err;
  }

  return {
    port,
    adminAddress,
    serverApiAddress,
    async stop() {
      if (stopping) return;
      stopping = true;
      const exits = [...handles.values()].map(
        (h) =>
          new Promise<void>((resolve) => {
            h.worker.once('exit', () => resolve());
            h.channel.message('drain', config.drainMs);
          }),
      );
      await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, config.drainMs + 10_000))]);
      for (const h of handles.values()) h.worker.process.kill('SIGKILL');
      closeListener(admin);
      serverApi?.close();
      await backend.stop();
      metrics.stop();
    },
  };
}

async function call(backend: Backend, method: string, args: unknown[]): Promise<unknown> {
  if (method === 'ready') return backend.healthy();
  if (!BACKEND_METHODS.has(method)) throw new Error(`unknown backend method ${method}`);
  const [target, name] = method.split('.') as [keyof Backend['api'], string];
  const obj = backend.api[target] as unknown as Record<string, (...a: unknown[]) => unknown>;
  return obj[name]!.apply(obj, args);
}

/** The deployment's metrics: the backend's and every worker's, summed (gauges of maxima keep the max). */
async function aggregateMetrics(handles: Map<number, WorkerHandle>, metrics: Metrics): Promise<string> {
  const parts = await Promise.all([
    metrics.registry.getMetricsAsJSON(),
    ...[...handles.values()].map((h) => h.channel.call<MetricsJson>('metrics').catch((): MetricsJson => [])),
  ]);
  return AggregatorRegistry.aggregate(parts).metrics();
}
