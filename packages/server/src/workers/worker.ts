import cluster from 'node:cluster';
import { createServer } from 'node:http';
import type { Config } from '../config/schema.js';
import type { ChatApi, CoreApi, SessionsApi } from '../core/api.js';
import { resolveKeys, TokenVerifier } from '../gateway/auth.js';
import { createHttpHandler } from '../gateway/http.js';
import { Metrics } from '../gateway/metrics.js';
import { Gateway } from '../gateway/ws-gateway.js';
import { listen } from '../main.js';
import { systemClock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import { IpcChannel } from './ipc.js';

const CHAT_METHODS: (keyof ChatApi)[] = [
  'send',
  'sync',
  'history',
  'conversations',
  'receipt',
  'receipts',
  'createGroup',
  'changeGroup',
  'groupInfo',
  'typing',
  'settings',
  'block',
  'unblock',
  'inboxHead',
];
const SESSION_METHODS: (keyof SessionsApi)[] = ['open', 'close', 'subscribe', 'unsubscribe'];

/** A proxy whose methods call `prefix.method` on the core over IPC. */
function remote<T>(channel: IpcChannel, prefix: string, methods: readonly string[]): T {
  const api: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const m of methods) api[m] = (...args) => channel.call(`${prefix}.${m}`, ...args);
  return api as T;
}

/**
 * A gateway worker of `parley serve --workers N`: it holds sockets, validates and authenticates,
 * and calls the core in the primary for everything else. Live frames from the core arrive as IPC
 * messages and are written to the sockets here.
 */
export async function runWorker(config: Config, log: Logger): Promise<void> {
  const metrics = new Metrics();
  const verifier = new TokenVerifier(resolveKeys(config), config);
  let gateway: Gateway | null = null;
  let draining = false;
  const http = createServer();
  const channel = new IpcChannel(process as unknown as ConstructorParameters<typeof IpcChannel>[0], {
    call: (method) => {
      if (method === 'metrics') return metrics.registry.getMetricsAsJSON();
      throw new Error(`unknown worker method ${method}`);
    },
    message: (kind, a) => {
      if (kind === 'd') gateway?.deliver(a[0] as string, a[1] as string);
      else if (kind === 's') gateway?.send(a[0] as string, a[1] as string);
      else if (kind === 'c') gateway?.close(a[0] as string, a[1] as number, a[2] as string);
      else if (kind === 'drain') {
        draining = true;
        http.close();
        void gateway!.drain(a[0] as number).then(() => process.exit(0));
      }
    },
  });
  const core: CoreApi = {
    chat: remote<ChatApi>(channel, 'chat', CHAT_METHODS),
    sessions: remote<SessionsApi>(channel, 'sessions', SESSION_METHODS),
  };
  gateway = new Gateway({
    config,
    id: `w${cluster.worker?.id ?? process.pid}`,
    core,
    verifier,
    clock: systemClock,
    log: log.child({ worker: cluster.worker?.id }),
    metrics,
  });
  http.on(
    'request',
    createHttpHandler({
      config,
      chat: core.chat,
      verifier,
      metrics,
      log,
      metricsText: () => channel.call<string>('metrics'),
      ready: async () => !draining && (await channel.call<boolean>('ready')),
    }),
  );
  const g = gateway;
  http.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/v1/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    g.handleUpgrade(req, socket, head);
  });
  http.headersTimeout = 10_000;
  http.requestTimeout = 30_000;
  // The primary drains workers; a signal sent to the whole process group is left to it.
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  await listen(http, config);
}
