/**
 * What the push adapters share: a concurrency bound, `Retry-After` parsing, collapse keys fitted
 * to a provider's limits, and one HTTPS/1.1 request with a deadline (FCM, Web Push, UnifiedPush;
 * APNs speaks HTTP/2 in `apns.ts`).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { Agent, type AgentOptions, request } from 'node:https';
import type { PushResult } from '../../ports/push-provider.js';

/**
 * A counting semaphore: at most `limit` holders at once, the rest wait in arrival order. Each
 * provider runs every request inside one, so a burst of jobs cannot open unbounded requests.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be ≥ 1, got ${limit}`);
  }

  /** Runs `fn` once a slot is free, and frees the slot when it settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * A `Retry-After` header (delay in seconds, or an HTTP date) as milliseconds from `now`;
 * `undefined` when absent or unreadable, so the caller falls back to its own backoff.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const at = Date.parse(s);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * A collapse key as a provider takes it: a base64url SHA-256 digest cut to `maxLength` (Web Push
 * `Topic`: 32 characters of the base64url alphabet; APNs `apns-collapse-id`: 64 bytes). The
 * digest keeps equal keys equal and keeps conversation and user ids away from the provider.
 */
export function collapseToken(key: string, maxLength: number): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, maxLength);
}

/** A `retry` result, with the provider's wait when it gave one. */
export function retry(reason: string, retryAfterMs: number | undefined): PushResult {
  return retryAfterMs === undefined ? { status: 'retry', reason } : { status: 'retry', reason, retryAfterMs };
}

/** An HTTP response, read whole (push services answer with small bodies). */
export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Raised by `httpsRequest` when the deadline passes before the response is read. */
export class RequestTimeout extends Error {
  constructor(ms: number) {
    super(`no response within ${ms} ms`);
    this.name = 'RequestTimeout';
  }
}

/**
 * An HTTPS agent with kept-alive connections, trusting `ca` when given (tests, private
 * deployments), resolving names with `lookup` when given (to refuse some addresses).
 */
export function keepAliveAgent(
  ca: string | Buffer | undefined,
  maxSockets: number,
  lookup?: AgentOptions['lookup'],
): Agent {
  return new Agent({
    keepAlive: true,
    maxSockets,
    ...(ca === undefined ? {} : { ca }),
    ...(lookup === undefined ? {} : { lookup }),
  });
}

/** Cap on a response body read (push services answer with a few hundred bytes of JSON). */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * One HTTPS request, its response read whole, within `timeoutMs` from start to the last byte
 * (rejects with `RequestTimeout`; the socket is destroyed). Network errors reject as they come.
 */
export function httpsRequest(
  url: string,
  init: { method: string; headers: Record<string, string | number>; body?: Buffer | string; agent: Agent },
  timeoutMs: number,
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method, headers: init.headers, agent: init.agent });
    const timer = setTimeout(() => {
      req.destroy(new RequestTimeout(timeoutMs));
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    req.end(init.body);
  });
}

/** The reason of a failure that is not an HTTP answer (timeout, reset, refused), for a `retry`. */
export function networkReason(err: unknown): string {
  if (err instanceof RequestTimeout) return 'timeout';
  const code = (err as { code?: unknown } | null)?.code;
  return `network: ${typeof code === 'string' ? code : err instanceof Error ? err.message : String(err)}`;
}
