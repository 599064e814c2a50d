/**
 * An app backend's webhook endpoint for the `webhooks` scenario, in the bench's own process: plain
 * HTTP on 127.0.0.1 (a free port unless told), `POST /hooks`, keep-alive. Every request's
 * `parley-signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` is checked as a
 * receiver should (the HMAC, compared in constant time, and `t` within 5 minutes of now); a request
 * that fails is answered 401 and counted (the server retries it), a malformed one 400. A good one
 * is answered 200 and its event recorded once per event id (a retry or a redelivery after a
 * crash carries the same id and is counted as a duplicate), with its arrival time on the wall
 * clock (aligned to `Date.now()`, the clock the server's `ts` comes from) taken when the request's
 * headers arrived, before its body was read.
 * @module
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WallClock } from './push-endpoint.js';

/** One `message.stored` event the receiver accepted (first delivery of its id). */
export interface WebhookArrival {
  id: string;
  conv: string;
  seq: number;
  /** The message's server timestamp (ms since the epoch, whole ms). */
  ts: number;
  /** Wall-clock arrival time, epoch ms, fractional (aligned to Date.now()). */
  at: number;
}

/** What the receiver counted, since it started. */
export interface ReceiverCounters {
  requests: number;
  accepted: number;
  /** Events whose id had been accepted before (answered 200 again, not recorded again). */
  duplicates: number;
  /** Requests refused with 401: no, malformed, stale or wrong `parley-signature`. */
  signatureFailures: number;
  /** Requests refused with 400 or 404: not JSON, not an event, wrong method or path. */
  malformed: number;
  /** Signed events of another type than `message.stored` (answered 200, not recorded). */
  otherTypes: number;
}

/** How far `t` may be from now (s), as a receiver guarding against replays would allow. */
const SIGNATURE_TOLERANCE_S = 300;

/** Checks `t=…,v1=…` against the body: the HMAC in constant time, and a recent `t`. */
export function verifySignature(secret: string, header: string | undefined, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest();
  const given = Buffer.from(m[2]!, 'hex');
  return (
    given.length === expected.length &&
    timingSafeEqual(given, expected) &&
    Math.abs(Date.now() / 1000 - Number(m[1])) <= SIGNATURE_TOLERANCE_S
  );
}

/** The webhook endpoint. */
export class WebhookReceiver {
  readonly counters: ReceiverCounters = {
    requests: 0,
    accepted: 0,
    duplicates: 0,
    signatureFailures: 0,
    malformed: 0,
    otherTypes: 0,
  };
  private arrivals: WebhookArrival[] = [];
  private readonly seen = new Set<string>();
  private sinceCount = 0;

  private constructor(
    private readonly server: Server,
    private readonly secret: string,
    private readonly clock: WallClock,
  ) {}

  /** Listens on 127.0.0.1:`port` (0: a free one). */
  static async start(secret: string, clock: WallClock, port = 0): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | null = null;
    const server = createServer((req, res) => receiver?.handle(req, res));
    // Keep the server's connections between bursts (its HTTP client reuses them).
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    receiver = new WebhookReceiver(server, secret, clock);
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    return receiver;
  }

  /** The URL to configure as the server's webhook endpoint. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  /** The events accepted since the last call. */
  take(): WebhookArrival[] {
    const out = this.arrivals;
    this.arrivals = [];
    return out;
  }

  /** Events accepted since the last call (for the per-second timeline). */
  countSince(): number {
    const n = this.sinceCount;
    this.sinceCount = 0;
    return n;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close').catch(() => {});
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const at = this.clock();
    this.counters.requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => {});
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/hooks') {
        this.counters.malformed++;
        answer(res, 404);
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      const sig = req.headers['parley-signature'];
      if (!verifySignature(this.secret, typeof sig === 'string' ? sig : undefined, body)) {
        this.counters.signatureFailures++;
        answer(res, 401);
        return;
      }
      const event = parseEvent(body);
      if (!event) {
        this.counters.malformed++;
        answer(res, 400);
        return;
      }
      if (event.type !== 'message.stored') this.counters.otherTypes++;
      else if (this.seen.has(event.id)) this.counters.duplicates++;
      else {
        this.seen.add(event.id);
        this.counters.accepted++;
        this.sinceCount++;
        this.arrivals.push({ id: event.id, conv: event.conv, seq: event.seq, ts: event.ts, at });
      }
      answer(res, 200);
    });
  }
}

function answer(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'content-length': '0' });
  res.end();
}

/** The fields the scenario needs of an event body, or null when they are not there. */
function parseEvent(
  body: string,
): { id: string; type: string; ts: number; conv: string; seq: number } | null {
  let e: unknown;
  try {
    e = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof e !== 'object' || e === null) return null;
  const { id, type, ts, data } = e as Record<string, unknown>;
  if (typeof id !== 'string' || typeof type !== 'string' || typeof ts !== 'number') return null;
  const d = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const conv = typeof d.conv === 'string' ? d.conv : '';
  const seq = typeof d.seq === 'number' ? d.seq : -1;
  if (type === 'message.stored' && (conv === '' || seq < 0)) return null;
  return { id, type, ts, conv, seq };
}
