import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  DEFAULT_CONVERSATIONS_LIMIT,
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_LIMITS,
  isConvId,
} from '@parley/protocol';
import type { Config } from '../config/schema.js';
import type { ChatApi } from '../core/api.js';
import { ParleyError } from '../domain/errors.js';
import type { Logger } from '../ports/logger.js';
import type { TokenVerifier } from './auth.js';
import type { Metrics } from './metrics.js';

export interface HttpApiOptions {
  config: Config;
  chat: ChatApi;
  verifier: TokenVerifier;
  metrics: Metrics;
  log: Logger;
  /** The Prometheus text of /metrics (a multi-process server aggregates its processes). */
  metricsText?: () => Promise<string>;
  /** Readiness: false while starting, draining, or with a failed store. */
  ready(): boolean | Promise<boolean>;
  /** False in a cluster process without the gateway role: the client API answers 503. */
  servesClients?: boolean;
}

/**
 * The HTTP side: health, readiness, Prometheus metrics, and the read-only chat API for clients
 * that sync history without a socket (same fields as the WebSocket replies).
 */
export function createHttpHandler(o: HttpApiOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(o, req, res).catch((err: unknown) => {
      const e = ParleyError.from(err);
      if (e.code === 'internal') o.log.error({ err: String(err), url: req.url }, 'http request failed');
      sendJson(res, e.httpStatus, { error: { code: e.code, message: e.message } });
    });
  };
}

async function handle(o: HttpApiOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const origin = req.headers.origin;
  if (origin !== undefined && o.config.origins.length > 0) {
    if (!o.config.origins.includes(origin)) throw new ParleyError('forbidden', 'origin not allowed');
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Vary', 'Origin');
  }
  if (req.method === 'OPTIONS') {
    res.setHeader('Access-Control-Allow-Methods', 'GET');
    res.setHeader('Access-Control-Allow-Headers', 'Authorization');
    res.writeHead(204).end();
    return;
  }
  if (req.method !== 'GET') throw new ParleyError('not_found', 'no such endpoint');
  const path = url.pathname;
  if (path === '/healthz') return sendJson(res, 200, { status: 'ok' });
  if (path === '/readyz') {
    const ready = await o.ready();
    return sendJson(res, ready ? 200 : 503, { ready });
  }
  if (path === '/metrics' && o.config.metrics) {
    res.writeHead(200, { 'content-type': o.metrics.registry.contentType });
    res.end(await (o.metricsText ? o.metricsText() : o.metrics.registry.metrics()));
    return;
  }
  if (path.startsWith('/v1/') && o.servesClients === false)
    throw new ParleyError('unavailable', 'this process has no gateway role');
  if (path === '/v1/conversations') {
    const user = await authenticate(o, req);
    const limit =
      intParam(url, 'limit', 1, DEFAULT_LIMITS.maxConversationsLimit) ?? DEFAULT_CONVERSATIONS_LIMIT;
    return sendJson(res, 200, await o.chat.conversations(user, limit, intParam(url, 'before_ts', 0)));
  }
  const m = /^\/v1\/conversations\/([^/]+)\/messages$/.exec(path);
  if (m) {
    const user = await authenticate(o, req);
    const conv = decodeURIComponent(m[1]!);
    if (!isConvId(conv)) throw new ParleyError('bad_request', '"conv" must be a conversation id');
    const before = intParam(url, 'before', 1);
    const after = intParam(url, 'after', 0);
    if (before !== undefined && after !== undefined)
      throw new ParleyError('bad_request', 'give "before" or "after", not both');
    const q: { before?: number; after?: number; limit: number } = {
      limit: intParam(url, 'limit', 1, DEFAULT_LIMITS.maxHistoryLimit) ?? DEFAULT_HISTORY_LIMIT,
    };
    if (before !== undefined) q.before = before;
    if (after !== undefined) q.after = after;
    return sendJson(res, 200, await o.chat.history(user, conv, q));
  }
  throw new ParleyError('not_found', 'no such endpoint');
}

async function authenticate(o: HttpApiOptions, req: IncomingMessage): Promise<string> {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!m) throw new ParleyError('unauthorized', 'missing "Authorization: Bearer <token>"');
  return (await o.verifier.verify(m[1]!)).user;
}

function intParam(url: URL, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ParleyError('bad_request', `"${name}" must be an integer from ${min} to ${max}`);
  }
  return n;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
