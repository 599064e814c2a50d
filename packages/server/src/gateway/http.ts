import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import {
  DEFAULT_CONVERSATIONS_LIMIT,
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_LIMITS,
  isConvId,
} from '@parley/protocol';
import type { AccountApi, ChatApi } from '../backend/api.js';
import type { ServedMediaStore } from '../backend/media.js';
import type { Config } from '../config/schema.js';
import { ParleyError } from '../domain/errors.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../ports/logger.js';
import type { TokenVerifier } from './auth.js';
import { DEV_TOKEN_PATH, type WebApp } from './web.js';

export interface HttpApiOptions {
  config: Config;
  chat: ChatApi;
  /** Refuses tokens of revoked devices, and knows the VAPID public key. */
  account: Pick<AccountApi, 'checkToken' | 'vapidPublicKey'>;
  verifier: TokenVerifier;
  metrics: Metrics;
  log: Logger;
  /** Readiness: false while starting, draining, or with a failed store. */
  ready(): boolean | Promise<boolean>;
  /** False in a cluster process without the gateway role: the client API answers 503. */
  servesClients?: boolean;
  /** Parley's own media file store (embedded), served under its path; absent with S3. */
  media?: ServedMediaStore | undefined;
  /** The web client and the development token endpoint, when served. */
  web?: WebApp | undefined;
}

/** What the admin listener serves: the operators' view of one server (or of all its processes). */
export interface AdminOptions {
  metrics: Metrics;
  log: Logger;
  /** The Prometheus text of /metrics (a multi-process server aggregates its processes). */
  metricsText?: () => Promise<string>;
  /** Readiness, as on the client port. */
  ready(): boolean | Promise<boolean>;
}

/**
 * The client port's HTTP side: health and readiness (load balancers check them there), and the
 * read-only chat API for clients that sync history without a socket (same fields as the
 * WebSocket replies). Metrics are not here: they are on the admin listener.
 */
export function createHttpHandler(o: HttpApiOptions): RequestListener {
  const slots = new RequestSlots(o.config, o.metrics);
  const transfers = new MediaTransfers(o.config.maxHttpRequestsInFlight);
  return (req, res) => {
    const media = o.media;
    const served =
      media && req.url?.startsWith(media.path)
        ? serveMedia(o, media, transfers, req, res)
        : handle(o, slots, req, res);
    served.catch((err: unknown) => sendError(o.log, req, res, err));
  };
}

/**
 * Media transfers in progress: each may stream up to `maxMediaBytes` for as long as its URL
 * allows, so they have no response deadline and do not take the API's slots, but their number
 * is capped apart (503 beyond).
 */
class MediaTransfers {
  private active = 0;

  constructor(private readonly max: number) {}

  /** Runs `transfer` in a slot; `unavailable` when none is free. */
  async run(res: ServerResponse, transfer: () => Promise<void>): Promise<void> {
    if (this.active >= this.max) throw new ParleyError('unavailable', 'too many media transfers in progress');
    this.active++;
    res.once('close', () => this.active--);
    await transfer();
  }
}

/**
 * Uploads and downloads through Parley's own media store (embedded): presigned URLs, checked by
 * the store (signature, expiry, exact size and type), bodies streamed with backpressure. CORS
 * preflights are answered so that browsers can PUT with a content type.
 */
async function serveMedia(
  o: HttpApiOptions,
  media: ServedMediaStore,
  transfers: MediaTransfers,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const origin = req.headers.origin;
  if (origin !== undefined && o.config.origins.length > 0) {
    if (!o.config.origins.includes(origin)) throw new ParleyError('forbidden', 'origin not allowed');
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Vary', 'Origin');
  } else if (origin !== undefined) {
    res.setHeader('Access-Control-Allow-Origin', '*');
  }
  if (req.method === 'OPTIONS') {
    res.setHeader('Access-Control-Allow-Methods', 'GET, PUT');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type');
    res.writeHead(204).end();
    return;
  }
  await transfers.run(res, () => media.handle(req, res));
}

/** The admin listener's handler: /metrics, /healthz and /readyz, nothing else. */
export function createAdminHandler(o: AdminOptions): RequestListener {
  return (req, res) => {
    serveAdmin(o, req, res).catch((err: unknown) => sendError(o.log, req, res, err));
  };
}

async function serveAdmin(o: AdminOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET') throw new ParleyError('not_found', 'no such endpoint');
  const path = parseUrl(req).pathname;
  if (await serveHealth(path, o.ready, res)) return;
  if (path !== '/metrics') throw new ParleyError('not_found', 'no such endpoint');
  const text = await (o.metricsText ? o.metricsText() : o.metrics.registry.metrics());
  res.writeHead(200, {
    'content-type': o.metrics.registry.contentType,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Answers /healthz and /readyz; false for any other path. */
async function serveHealth(
  path: string,
  ready: () => boolean | Promise<boolean>,
  res: ServerResponse,
): Promise<boolean> {
  if (path === '/healthz') {
    sendJson(res, 200, { status: 'ok' });
    return true;
  }
  if (path !== '/readyz') return false;
  const ok = await ready();
  sendJson(res, ok ? 200 : 503, { ready: ok });
  return true;
}

async function handle(
  o: HttpApiOptions,
  slots: RequestSlots,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = parseUrl(req);
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
  const path = url.pathname;
  if (path === DEV_TOKEN_PATH && o.web?.devTokens) {
    slots.enter(res);
    return o.web.mintDevToken(req, res, o.config);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new ParleyError('not_found', 'no such endpoint');
  if (await serveHealth(path, o.ready, res)) return;
  if (!path.startsWith('/v1/')) {
    if (o.web?.serve(req, res, path)) return;
    throw new ParleyError('not_found', 'no such endpoint');
  }
  if (o.servesClients === false) throw new ParleyError('unavailable', 'this process has no gateway role');
  if (path === '/v1/push/vapid') {
    const key = await o.account.vapidPublicKey();
    if (key === undefined) throw new ParleyError('not_found', 'Web Push is not configured');
    return sendJson(res, 200, { vapid_public_key: key });
  }
  slots.enter(res);
  if (path === '/v1/conversations') {
    const user = await authenticate(o, req);
    slots.enterUser(user, res);
    const limit =
      intParam(url, 'limit', 1, DEFAULT_LIMITS.maxConversationsLimit) ?? DEFAULT_CONVERSATIONS_LIMIT;
    return sendJson(res, 200, await o.chat.conversations(user, limit, intParam(url, 'before_ts', 0)));
  }
  const m = /^\/v1\/conversations\/([^/]+)\/messages$/.exec(path);
  if (!m) throw new ParleyError('not_found', 'no such endpoint');
  const user = await authenticate(o, req);
  slots.enterUser(user, res);
  const conv = decodeSegment(m[1]!, 'conv');
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

/**
 * HTTP API requests in progress, over the whole listener and per user. A request keeps its slot
 * until its response is flushed to the kernel or its socket closes, so a client that never reads
 * keeps its slot too: replies buffered for such clients are bounded by the caps times the largest
 * reply, where without caps 100 idle readers could pin gigabytes. A response that is not fully
 * written within `httpResponseTimeoutMs` of its request loses its socket, which frees the slot.
 */
class RequestSlots {
  private total = 0;
  private readonly byUser = new Map<string, number>();

  constructor(
    private readonly limits: Pick<
      Config,
      'maxHttpRequestsInFlight' | 'maxHttpRequestsInFlightPerUser' | 'httpResponseTimeoutMs'
    >,
    private readonly metrics: Metrics,
  ) {}

  /** Takes one of the listener's slots for `res`, with its deadline; `rate_limited` when none is free. */
  enter(res: ServerResponse): void {
    if (this.total >= this.limits.maxHttpRequestsInFlight) this.refuse('in_flight');
    this.total++;
    const deadline = setTimeout(() => {
      this.metrics.httpRefused.inc({ reason: 'response_timeout' });
      res.destroy();
    }, this.limits.httpResponseTimeoutMs);
    deadline.unref();
    res.once('close', () => {
      this.total--;
      clearTimeout(deadline);
    });
  }

  /** Takes one of `user`'s slots for `res` (held as long as its listener slot). */
  enterUser(user: string, res: ServerResponse): void {
    const held = this.byUser.get(user) ?? 0;
    if (held >= this.limits.maxHttpRequestsInFlightPerUser) this.refuse('in_flight_user');
    this.byUser.set(user, held + 1);
    res.once('close', () => {
      const left = (this.byUser.get(user) ?? 1) - 1;
      if (left === 0) this.byUser.delete(user);
      else this.byUser.set(user, left);
    });
  }

  private refuse(reason: 'in_flight' | 'in_flight_user'): never {
    this.metrics.httpRefused.inc({ reason });
    throw new ParleyError('rate_limited', 'too many HTTP requests in progress; retry later', 1000);
  }
}

async function authenticate(o: HttpApiOptions, req: IncomingMessage): Promise<string> {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  if (!m) throw new ParleyError('unauthorized', 'missing "Authorization: Bearer <token>"');
  const claims = await o.verifier.verify(m[1]!);
  if (claims.device !== undefined) await o.account.checkToken(claims.user, claims.device, claims.issuedAt);
  return claims.user;
}

/** The request's URL; a target that is not a valid URL is the client's error, not the server's. */
function parseUrl(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    throw new ParleyError('bad_request', 'invalid request target');
  }
}

/** Decodes one percent-encoded path segment; malformed encoding (`%E0%A4%A`) is `bad_request`. */
function decodeSegment(raw: string, name: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ParleyError('bad_request', `"${name}" is not valid percent-encoding`);
  }
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

/** Answers an error as JSON (with `Retry-After` when the error says when); logs only real failures. */
function sendError(log: Logger, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const e = ParleyError.from(err);
  if (e.code === 'internal') log.error({ err: String(err), url: req.url }, 'http request failed');
  if (res.headersSent) {
    // Part of a reply is out: no error can follow it, so the client must see the cut.
    res.destroy();
    return;
  }
  if (e.retryAfterMs !== undefined)
    res.setHeader('Retry-After', Math.max(1, Math.ceil(e.retryAfterMs / 1000)));
  sendJson(res, e.httpStatus, { error: { code: e.code, message: e.message } });
}

/** Writes a JSON body in one piece, with its length (no chunked encoding, one write). */
function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
