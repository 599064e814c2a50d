import cluster from 'node:cluster';
import type { Server } from 'node:http';
import {
  ACCOUNT_METHODS,
  type AccountApi,
  type BackendApi,
  CHAT_METHODS,
  type ChatApi,
  KEYS_METHODS,
  type KeysApi,
  MEDIA_METHODS,
  type MediaApi,
  SESSION_METHODS,
} from '../backend/api.js';
import { embeddedMediaStore, PublicAddress } from '../backend/media.js';
import type { Config } from '../config/schema.js';
import { resolveKeys, TokenVerifier } from '../gateway/auth.js';
import { createHttpHandler } from '../gateway/http.js';
import { createClientListener, drainThenClose, ListenError, listen } from '../gateway/listener.js';
import { WebApp } from '../gateway/web.js';
import { Gateway } from '../gateway/ws-gateway.js';
import { Metrics } from '../metrics.js';
import { systemClock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { SessionsApi } from '../ports/sessions.js';
import { IpcChannel } from './ipc.js';

/** A proxy whose methods call `prefix.method` on the backend over IPC. */
function remote<T>(channel: IpcChannel, prefix: string, methods: readonly string[]): T {
  const api: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const m of methods) api[m] = (...args) => channel.call(`${prefix}.${m}`, ...args);
  return api as T;
}

/**
 * A gateway worker of `parley serve --workers N`: it holds sockets, validates and authenticates,
 * and calls the backend in the primary for everything else. Live frames from the backend arrive as IPC
 * messages and are written to the sockets here. Metrics are served by the primary's admin
 * listener (it asks each worker for its own). A worker that cannot listen tells the primary why
 * (`listen-failed`), which stops the whole server with that one message.
 */
export async function runWorker(config: Config, log: Logger): Promise<void> {
  const metrics = new Metrics();
  const keys = resolveKeys(config);
  const verifier = new TokenVerifier(keys, config);
  let gateway: Gateway | null = null;
  let client: Server | null = null;
  let draining = false;
  const channel = new IpcChannel(process as unknown as ConstructorParameters<typeof IpcChannel>[0], {
    call: (method) => {
      if (method === 'metrics') return metrics.registry.getMetricsAsJSON();
      throw new Error(`unknown worker method ${method}`);
    },
    message: (kind, a) => {
      if (kind === 'd') gateway?.deliver(a[0] as string, a[1] as string);
      else if (kind === 's') gateway?.send(a[0] as string, a[1] as string);
      else if (kind === 'c') gateway?.close(a[0] as string, a[1] as number, a[2] as string);
      else if (kind === 't') gateway?.toDeviceWaiting(a[0] as string);
      else if (kind === 'drain') {
        draining = true;
        const g = gateway!;
        void drainThenClose([client], (windowMs) => g.drain(windowMs), a[0] as number).then(() =>
          process.exit(0),
        );
      }
    },
  });
  const backend: BackendApi = {
    chat: remote<ChatApi>(channel, 'chat', CHAT_METHODS),
    sessions: remote<SessionsApi>(channel, 'sessions', SESSION_METHODS),
    account: remote<AccountApi>(channel, 'account', ACCOUNT_METHODS),
    keys: remote<KeysApi>(channel, 'keys', KEYS_METHODS),
    media: remote<MediaApi>(channel, 'media', MEDIA_METHODS),
  };
  const g = new Gateway({
    config,
    id: `w${cluster.worker?.id ?? process.pid}`,
    backend,
    verifier,
    clock: systemClock,
    log: log.child({ worker: cluster.worker?.id }),
    metrics,
  });
  gateway = g;
  client = createClientListener({
    config,
    metrics,
    log,
    onRequest: createHttpHandler({
      config,
      chat: backend.chat,
      account: backend.account,
      verifier,
      metrics,
      log,
      ready: async () => !draining && (await channel.call<boolean>('ready')),
      // The primary signs media URLs; every worker serves them from the same files and key.
      media: embeddedMediaStore(config, new PublicAddress(config)),
      web: WebApp.create(config, keys),
    }),
    onUpgrade: (req, socket, head) => g.handleUpgrade(req, socket, head),
  });
  // The primary drains workers; a signal sent to the whole process group is left to it.
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  try {
    await listen(client, config.host, config.port, 'client');
  } catch (err) {
    if (!(err instanceof ListenError)) throw err;
    channel.message('listen-failed', err.message);
  }
}
