import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { GatewayLink } from '../core/api.js';
import { type Core, createCore } from '../core/core.js';
import { resolveKeys } from '../gateway/auth.js';
import { Metrics } from '../gateway/metrics.js';
import { systemClock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import { IpcChannel } from './ipc.js';

/** The chat and session methods workers may call on the core. */
const CORE_METHODS = new Set([
  'chat.send',
  'chat.sync',
  'chat.history',
  'chat.conversations',
  'chat.receipt',
  'chat.receipts',
  'chat.createGroup',
  'chat.changeGroup',
  'chat.groupInfo',
  'chat.typing',
  'chat.settings',
  'chat.block',
  'chat.unblock',
  'chat.inboxHead',
  'sessions.open',
  'sessions.close',
  'sessions.subscribe',
  'sessions.unsubscribe',
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
  /** Drains every worker, then closes the core. */
  stop(): Promise<void>;
}

/**
 * `parley serve --workers N`: the primary process runs the core (the store and every single
 * writer: one writer per conversation and per inbox, as in one process), and N gateway workers
 * (Node's cluster module, sharing the listening port round-robin) hold the sockets. Workers call
 * the core over IPC; the core routes live frames to the workers that hold each user's devices, so
 * routing, device replacement, per-user limits and presence are deployment-wide. This is how one
 * node gets past the per-process open-file limit and uses every core for sockets.
 */
export async function runPrimary(config: Config, workers: number, log: Logger): Promise<PrimaryServer> {
  resolveKeys(config); // creates the development secret once, before workers read it
  const metrics = new Metrics();
  const core = createCore(config, { log, clock: systemClock, metrics });
  await core.start();
  const handles = new Map<number, WorkerHandle>();
  let stopping = false;

  const fork = (): Worker => {
    const worker = cluster.fork();
    const channel = new IpcChannel(worker, {
      call: (method, args) => call(core, handles, metrics, method, args),
    });
    const link: GatewayLink = {
      deliver: (user, frame) => channel.message('d', user, String(frame)),
      send: (conn, frame) => channel.message('s', conn, frame),
      close: (conn, code, reason) => channel.message('c', conn, code, reason),
    };
    const detach = core.sessions.attach(`w${worker.id}`, link);
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

  const listening = Array.from(
    { length: workers },
    () =>
      new Promise<number>((resolve, reject) => {
        const w = fork();
        w.once('listening', (address) => resolve(address.port));
        w.once('exit', (code) => reject(new Error(`gateway worker exited (${code}) before listening`)));
      }),
  );
  const ports = await Promise.all(listening);

  return {
    port: ports[0]!,
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
      await core.stop();
      metrics.stop();
    },
  };
}

async function call(
  core: Core,
  handles: Map<number, WorkerHandle>,
  metrics: Metrics,
  method: string,
  args: unknown[],
): Promise<unknown> {
  if (method === 'ready') return core.healthy();
  if (method === 'metrics') return aggregateMetrics(handles, metrics);
  if (!CORE_METHODS.has(method)) throw new Error(`unknown core method ${method}`);
  const [target, name] = method.split('.') as ['chat' | 'sessions', string];
  const obj = core.api[target] as unknown as Record<string, (...a: unknown[]) => unknown>;
  return obj[name]!.apply(obj, args);
}

/** The deployment's metrics: the core's and every worker's, summed (gauges of maxima keep the max). */
async function aggregateMetrics(handles: Map<number, WorkerHandle>, metrics: Metrics): Promise<string> {
  const parts = await Promise.all([
    metrics.registry.getMetricsAsJSON(),
    ...[...handles.values()].map((h) => h.channel.call<MetricsJson>('metrics').catch((): MetricsJson => [])),
  ]);
  return AggregatorRegistry.aggregate(parts).metrics();
}
