/**
 * The listeners of a Parley process, built in one place for the single-process server (main.ts)
 * and the gateway workers (workers/worker.ts): the client listener (HTTP API and WebSocket
 * upgrades, with the socket limits enforced as sockets are accepted) and the admin listener
 * (/metrics, /healthz, /readyz on a separate, by default loopback-only, address).
 * @module
 */
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerOptions,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions } from 'node:tls';
import { MemoryRateLimiter } from '../adapters/memory/memory-rate-limiter.js';
import type { Config } from '../config/schema.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../ports/logger.js';
import { reloadCertificates, tlsOptions, withHsts } from './tls.js';

/**
 * How often Node looks for sockets past `headersTimeout`/`requestTimeout`. Its default (30 s)
 * lets an idle or slowloris socket live up to 30 s past the timeout; 1 s bounds that to ~1 s.
 */
const CONNECTIONS_CHECK_MS = 1000;

/** A reconnect storm needs a deep accept queue (Node's default backlog is 511). */
const BACKLOG = 4096;

/** Takes a WebSocket upgrade (the gateway's `handleUpgrade`). */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface ClientListenerOptions {
  config: Config;
  metrics: Metrics;
  /** Where a certificate reload is reported (with TLS on). */
  log: Logger;
  /** Serves plain HTTP requests: the API, /healthz, /readyz. */
  onRequest: RequestListener;
  /** Takes /v1/ws upgrades; absent in a process without the gateway role (upgrades answer 503). */
  onUpgrade?: UpgradeHandler;
}

/**
 * The client listener. Sockets are counted and refused on accept, before a byte is parsed (see
 * `SocketGuard`); a socket that has not sent a complete request head within `headersTimeoutMs`
 * is closed within about a second after it (idle and slowloris sockets); a request must arrive
 * within `httpResponseTimeoutMs`. Upgrades other than /v1/ws answer 404.
 */
export function createClientListener(o: ClientListenerOptions): Server {
  const tls = tlsOptions(o.config);
  const server = tls
    ? httpsServer(o.config, tls, o.log, withHsts(o.config, o.onRequest))
    : httpServer(o.config, o.onRequest);
  const guard = new SocketGuard(o.config);
  server.on('connection', (socket: Socket) => {
    const address = addressKey(socket.remoteAddress ?? '');
    const refused = guard.admit(address);
    if (refused) {
      o.metrics.socketsRefused.inc({ reason: refused });
      socket.destroy();
      return;
    }
    socket.once('close', () => guard.release(address));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node drops its error handling on upgraded sockets; a reset here must not crash the process.
    socket.on('error', () => socket.destroy());
    if (pathOf(req) !== '/v1/ws') return refuseUpgrade(socket, '404 Not Found', '');
    if (!o.onUpgrade)
      return refuseUpgrade(socket, '503 Service Unavailable', 'this process has no gateway role');
    o.onUpgrade(req, socket, head);
  });
  return server;
}

/**
 * The admin listener, or null when disabled (`metrics: false` or a negative `adminPort`): it
 * keeps /metrics off the client port, where anyone could read the server's internals.
 */
export function createAdminListener(config: Config, onRequest: RequestListener): Server | null {
  if (!config.metrics || config.adminPort < 0) return null;
  return httpServer(config, onRequest);
}

/** The edge's HTTP timeouts (both listeners, plain or TLS). */
function httpOptions(config: Config): ServerOptions {
  return {
    connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
    headersTimeout: config.headersTimeoutMs,
    // Node requires requestTimeout ≥ headersTimeout.
    requestTimeout: Math.max(config.headersTimeoutMs, config.httpResponseTimeoutMs),
    keepAliveTimeout: config.keepAliveTimeoutMs,
  };
}

/**
 * The client listener over TLS: the same timeouts, the configured certificate (reloaded when its
 * files change, until the server closes) and lowest version. A socket that has not finished its
 * handshake within `headersTimeoutMs` is closed.
 */
function httpsServer(
  config: Config,
  tls: SecureContextOptions,
  log: Logger,
  onRequest: RequestListener,
): Server {
  const server = createHttpsServer(
    { ...httpOptions(config), ...tls, handshakeTimeout: config.headersTimeoutMs },
    onRequest,
  );
  const stop = reloadCertificates(config, server, log);
  server.once('close', stop);
  server.timeout = config.headersTimeoutMs;
  return server;
}

/** An HTTP server with the edge's timeouts, for both listeners. */
function httpServer(config: Config, onRequest: RequestListener): Server {
  const server = createServer(httpOptions(config), onRequest);
  // Node's headersTimeout starts at a request's first byte: a socket that never sends one would
  // stay forever. The inactivity timeout closes it (and any HTTP socket silent that long); the
  // WebSocket library clears it on the sockets it takes over.
  server.timeout = config.headersTimeoutMs;
  return server;
}

/** Why a socket was refused on accept (the `reason` label of `parley_sockets_refused_total`). */
export type SocketRefusal = 'max_sockets' | 'per_address' | 'connect_rate';

/**
 * Socket limits of one listener: at most `maxSockets` open (below the process's open-file limit,
 * so accept never fails with EMFILE and the store can still open its files), at most
 * `maxSocketsPerAddress` from one address, and new sockets per address at most
 * `connectRatePerAddress` per second after a burst of `connectBurstPerAddress`. So one client
 * (or one host) cannot take the sockets every other client needs.
 */
export class SocketGuard {
  private open = 0;
  private readonly byAddress = new Map<string, number>();
  private readonly connects = new MemoryRateLimiter();

  constructor(
    private readonly limits: Pick<
      Config,
      'maxSockets' | 'maxSocketsPerAddress' | 'connectRatePerAddress' | 'connectBurstPerAddress'
    >,
  ) {}

  /** Counts a new socket from `address` in, or answers why it must be refused (nothing counted then). */
  admit(address: string): SocketRefusal | null {
    const l = this.limits;
    if (this.open >= l.maxSockets) return 'max_sockets';
    const held = this.byAddress.get(address) ?? 0;
    if (l.maxSocketsPerAddress > 0 && held >= l.maxSocketsPerAddress) return 'per_address';
    if (
      l.connectRatePerAddress > 0 &&
      this.connects.takeNow(address, 1, {
        ratePerSecond: l.connectRatePerAddress,
        burst: l.connectBurstPerAddress,
      }) > 0
    )
      return 'connect_rate';
    this.open++;
    this.byAddress.set(address, held + 1);
    return null;
  }

  /** Counts an admitted socket from `address` out once it closed. */
  release(address: string): void {
    this.open--;
    const left = (this.byAddress.get(address) ?? 1) - 1;
    if (left === 0) this.byAddress.delete(address);
    else this.byAddress.set(address, left);
  }
}

/**
 * The key limits are counted under: the address itself for IPv4, the /64 network for IPv6 (one
 * host is usually given a whole /64, so per-address limits on single IPv6 addresses bind nothing).
 */
export function addressKey(address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? front
      : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** A listen failure explained in one line for an operator (the CLI prints it and exits). */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this machine',
};

/** Which listener, for messages that name the setting to change. */
export type ListenerKind = 'client' | 'admin' | 'server API';

/** Listens on `host:port`; resolves with the bound address, rejects with a `ListenError`. */
export function listen(
  server: NetServer,
  host: string,
  port: number,
  kind: ListenerKind,
): Promise<AddressInfo> {
  return new Promise<AddressInfo>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenError(err, host, port, kind));
    server.once('error', onError);
    server.listen({ port, host, backlog: BACKLOG }, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

function listenError(
  err: NodeJS.ErrnoException,
  host: string,
  port: number,
  kind: ListenerKind,
): ListenError {
  const prefix = { client: 'PARLEY_', admin: 'PARLEY_ADMIN_', 'server API': 'PARLEY_SERVER_API_' }[kind];
  const what = kind === 'client' ? '' : `${kind} listener: `;
  const code = err.code ?? 'unknown error';
  const reason = LISTEN_FAILURES[code] ?? err.message;
  const hint =
    code === 'EADDRINUSE'
      ? `set ${prefix}PORT or stop the other process`
      : `check ${prefix}HOST and ${prefix}PORT`;
  return new ListenError(`${what}cannot listen on ${host}:${port}: ${reason} (${code}); ${hint}`);
}

/**
 * How long the listener stays open into a drain at least, even once no socket is left: long
 * enough for a load balancer polling /readyz every few seconds to see the 503, short enough that
 * stopping an idle server (Ctrl-C in development) does not sit out the whole drain window.
 */
const READINESS_GRACE_MS = 5000;

/**
 * Drains with the listener still open, then closes it: through the drain /readyz answers 503
 * and new upgrades 503 with `Retry-After` (the gateway refuses them once draining), so a load
 * balancer sees the drain instead of refused connections. The drain ends when the window does,
 * or once no socket is left and the readiness grace has passed. Then every HTTP connection left
 * is dropped.
 */
export async function drainThenClose(
  servers: readonly (Server | null)[],
  drain: (windowMs: number) => Promise<void>,
  windowMs: number,
): Promise<void> {
  const grace = Math.min(windowMs, READINESS_GRACE_MS);
  await Promise.all([drain(windowMs), new Promise((r) => setTimeout(r, grace))]);
  for (const s of servers) closeListener(s);
}

/** Stops accepting and drops idle and in-progress HTTP connections (upgraded sockets are the gateway's). */
export function closeListener(server: Server | null): void {
  if (!server) return;
  server.close();
  server.closeAllConnections();
}

function pathOf(req: IncomingMessage): string | null {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return null;
  }
}

function refuseUpgrade(socket: Duplex, status: string, body: string): void {
  socket.end(
    `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
