import { createServer as createHttp1Server } from 'node:http';
import { createServer as createHttp2Server, createSecureServer } from 'node:http2';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { Code, ConnectError, type Interceptor, type ServiceImpl } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { ServerApiService } from '@parley/server-client';
import type { Config } from '../config/schema.js';
import { ParleyError } from '../domain/errors.js';
import { reloadCertificates, tlsOptions, withHsts } from '../gateway/tls.js';
import type { Logger } from '../ports/logger.js';
import type { RateLimiter } from '../ports/rate-limiter.js';
import type { ApiKeys, ApiScope } from './api-keys.js';
import { type ServerApiDeps, serverApiHandlers } from './service.js';

/** The scope each call needs (checked before the call runs). */
const CALL_SCOPES: Record<keyof ServiceImpl<typeof ServerApiService>, ApiScope> = {
  sendMessage: 'messages',
  createGroup: 'groups',
  addMembers: 'groups',
  removeMembers: 'groups',
  renameGroup: 'groups',
  setRole: 'groups',
  leaveGroup: 'groups',
  deleteGroup: 'groups',
  getGroup: 'read',
  getHistory: 'read',
  listConversations: 'read',
  updateSettings: 'users',
  block: 'users',
  unblock: 'users',
  listDevices: 'users',
  revokeDevice: 'users',
  disconnectUser: 'users',
  publishEvent: 'users',
  getPresence: 'read',
  mintToken: 'tokens',
};

/** Each Parley error code as a Connect (and gRPC) status code. */
const STATUS: Record<ParleyError['code'], Code> = {
  bad_request: Code.InvalidArgument,
  unauthorized: Code.Unauthenticated,
  forbidden: Code.PermissionDenied,
  not_found: Code.NotFound,
  too_large: Code.InvalidArgument,
  rate_limited: Code.ResourceExhausted,
  conflict: Code.FailedPrecondition,
  unavailable: Code.Unavailable,
  internal: Code.Internal,
  gone: Code.FailedPrecondition,
};

/** A request's largest body: a message (64 KiB by default) or a 512-member list, with room. */
const READ_MAX_BYTES = 1024 * 1024;
/** Most sockets the listener holds; app backends keep a few long-lived HTTP/2 connections. */
const MAX_SOCKETS = 1024;

export interface ServerApiOptions {
  config: Config;
  log: Logger;
  keys: ApiKeys;
  /** The deployment's token buckets: a key's budget holds over every process (Redis in cluster mode). */
  limiter: RateLimiter;
  deps: ServerApiDeps;
}

/** The listening side of the server API. */
export interface ServerApiListener {
  server: Server;
  /** Stops accepting and closes every connection (calls in progress fail: clients retry). */
  close(): void;
}

/**
 * The server API listener: Connect's handlers for `ServerApiService` behind one port that speaks
 * HTTP/1.1 and HTTP/2 (told apart by ALPN with TLS, by the HTTP/2 preface without), so gRPC,
 * gRPC-Web and Connect clients all reach it. Every call is authenticated, scoped, rate limited per key and logged.
 */
export function createServerApiListener(o: ServerApiOptions): ServerApiListener {
  const handler = connectNodeAdapter({
    routes: (router) => router.service(ServerApiService, serverApiHandlers(o.deps)),
    interceptors: [guard(o)],
    readMaxBytes: READ_MAX_BYTES,
    // JSON with the client protocol's field names (`as_user`); both spellings are read.
    jsonOptions: { useProtoFieldName: true },
  });
  const tls = tlsOptions(o.config);
  return tls ? secureListener(o, tls, handler) : cleartextListener(o, handler);
}

type Handler = ReturnType<typeof connectNodeAdapter>;

/** With TLS: HTTP/2 or HTTP/1.1 as the client's ALPN asks, TLS 1.3 unless 1.2 is allowed. */
function secureListener(o: ServerApiOptions, tls: SecureContextOptions, handler: Handler): ServerApiListener {
  const server = createSecureServer(
    {
      ...tls,
      allowHTTP1: true,
      settings: { maxConcurrentStreams: 100 },
      handshakeTimeout: o.config.headersTimeoutMs,
    },
    withHsts(o.config, handler),
  );
  server.setTimeout(Math.max(o.config.keepAliveTimeoutMs, 30_000));
  const stopReloading = reloadCertificates(o.config, server, o.log);
  return tracked(server, stopReloading);
}

/** Without TLS: HTTP/1.1 and cleartext HTTP/2 (prior knowledge) on one port. */
function cleartextListener(o: ServerApiOptions, handler: Handler): ServerApiListener {
  const http1 = createHttp1Server(
    {
      headersTimeout: o.config.headersTimeoutMs,
      requestTimeout: Math.max(o.config.headersTimeoutMs, o.config.httpResponseTimeoutMs),
      keepAliveTimeout: o.config.keepAliveTimeoutMs,
    },
    handler,
  );
  const http2 = createHttp2Server({ settings: { maxConcurrentStreams: 100 } }, handler);
  // An HTTP/2 connection silent this long is closed (no 'timeout' listener: Node destroys it).
  http2.setTimeout(Math.max(o.config.keepAliveTimeoutMs, 30_000));
  const server = createNetServer((socket) => route(socket, http1, http2, o.config.headersTimeoutMs));
  return tracked(server, () => {});
}

/** Caps the listener's sockets and closes them all on `close`. */
function tracked(server: Server, onClose: () => void): ServerApiListener {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.maxConnections = MAX_SOCKETS;
  return {
    server,
    close() {
      onClose();
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0');

/** Hands a new socket to the HTTP/2 server when its first bytes are the HTTP/2 preface. */
function route(socket: Socket, http1: Server, http2: Server, timeoutMs: number): void {
  let seen = Buffer.alloc(0);
  socket.setTimeout(timeoutMs, () => socket.destroy());
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, HTTP2_PREFACE.length);
    const isHttp2 = seen.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
    if (isHttp2 && n < HTTP2_PREFACE.length) return;
    socket.off('data', onData);
    socket.pause();
    socket.setTimeout(0);
    socket.unshift(seen);
    // HTTP/2 reads what is buffered and then the socket's handle itself; HTTP/1.1 reads the stream.
    if (isHttp2) http2.emit('connection', socket);
    else {
      http1.emit('connection', socket);
      socket.resume();
    }
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
}

/** Authentication, scope, the per-key budget, the in-flight cap, errors as statuses, and the log line. */
function guard(o: ServerApiOptions): Interceptor {
  const limit = { ratePerSecond: o.config.serverApiRate, burst: o.config.serverApiBurst };
  let inFlight = 0;
  return (next) => async (req) => {
    const call = req.method.name;
    const bearer = /^Bearer ([\x21-\x7e]{1,512})$/.exec(req.header.get('authorization') ?? '');
    const caller = bearer ? o.keys.authenticate(bearer[1]!) : null;
    if (!caller) {
      o.log.warn({ call }, 'server API call refused: no valid API key');
      throw new ConnectError(
        'a valid API key is required (Authorization: Bearer <key>)',
        Code.Unauthenticated,
      );
    }
    const scope = CALL_SCOPES[req.method.localName as keyof typeof CALL_SCOPES];
    const log = o.log.child({ key: caller.name, call });
    if (!caller.scopes.has(scope)) {
      log.warn({ scope }, 'server API call refused: missing scope');
      throw new ConnectError(`the key "${caller.name}" lacks the scope "${scope}"`, Code.PermissionDenied);
    }
    const waitMs = await o.limiter.take(`api-key:${caller.name}`, 1, limit).catch((err: unknown) => {
      log.warn({ err: String(err) }, 'server API call refused: rate limiter unavailable');
      throw asConnectError(new ParleyError('unavailable', 'rate limiter unavailable; retry', 1000));
    });
    if (waitMs > 0)
      throw asConnectError(new ParleyError('rate_limited', 'API key call budget spent', waitMs));
    if (inFlight >= o.config.serverApiMaxInFlight)
      throw asConnectError(new ParleyError('unavailable', 'too many server API calls in progress', 100));
    inFlight++;
    const started = performance.now();
    try {
      const res = await next(req);
      log.info({ ms: Math.round(performance.now() - started) }, 'server API call');
      return res;
    } catch (err) {
      const e = asConnectError(err, log);
      log.info({ ms: Math.round(performance.now() - started), code: Code[e.code] }, 'server API call failed');
      throw e;
    } finally {
      inFlight--;
    }
  };
}

/**
 * A domain error as a status, with Parley's own code (and when to retry) in the metadata, so a
 * client can branch as a WebSocket client does; anything else is `internal`, and logged.
 */
function asConnectError(err: unknown, log?: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof ParleyError) {
    const metadata: Record<string, string> = { 'parley-error': err.code };
    if (err.retryAfterMs !== undefined) metadata['retry-after-ms'] = String(err.retryAfterMs);
    return new ConnectError(err.message, STATUS[err.code], metadata);
  }
  log?.error({ err: String(err) }, 'server API call failed unexpectedly');
  return new ConnectError('internal error', Code.Internal, { 'parley-error': 'internal' });
}
