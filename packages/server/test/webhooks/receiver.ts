import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const WEBHOOK_SECRET = 'webhook-test-secret-0123456789abcdef';

/** An event as an endpoint receives it. */
export interface ReceivedEvent {
  id: string;
  type: string;
  ts: number;
  data: Record<string, unknown>;
}

/** Checks `t=…,v1=…` as a receiver should: the HMAC of "<t>.<body>", and a recent t. */
export function verifySignature(header: string, body: string, secret = WEBHOOK_SECRET): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest('hex');
  return expected === m[2] && Math.abs(Date.now() / 1000 - Number(m[1])) < 300;
}

/**
 * An app backend's webhook endpoint: verifies every request's signature and headers, records each
 * attempt and each accepted event (deduplicated by id, as a receiver should), and answers as
 * `answer` decides (200 by default).
 */
export class WebhookReceiver {
  /** Every request, accepted or not, in arrival order. */
  readonly attempts: ReceivedEvent[] = [];
  /** Events answered 2xx, first delivery of each id only, in arrival order; with arrival times. */
  readonly accepted: (ReceivedEvent & { at: number })[] = [];
  /** Requests whose signature or headers were wrong (must stay empty). */
  readonly violations: string[] = [];
  answer: (e: ReceivedEvent, res: ServerResponse) => unknown = (_e, res) => res.end('ok');
  private readonly seen = new Set<string>();
  private readonly server: Server = createServer((req, res) => void this.handle(req, res));

  async start(port = 0): Promise<string> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
  }

  /** Accepted events of one type (and, for conversation events, one conversation). */
  of(type: string, conv?: string): ReceivedEvent[] {
    return this.accepted.filter((e) => e.type === type && (conv === undefined || e.data.conv === conv));
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close').catch(() => {});
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    for await (const c of req) body += c;
    const event = JSON.parse(body) as ReceivedEvent;
    if (!verifySignature(String(req.headers['parley-signature'] ?? ''), body))
      this.violations.push(`bad signature on ${event.id}`);
    if (req.headers['parley-event-id'] !== event.id) this.violations.push(`event id header of ${event.id}`);
    if (req.headers['parley-event-type'] !== event.type)
      this.violations.push(`event type header of ${event.id}`);
    this.attempts.push(event);
    const ok = { done: false };
    res.on('finish', () => {
      ok.done = res.statusCode >= 200 && res.statusCode < 300;
      if (ok.done && !this.seen.has(event.id)) {
        this.seen.add(event.id);
        this.accepted.push({ ...event, at: Date.now() });
      }
    });
    await this.answer(event, res);
  }
}

/** Fails the test with what arrived when `cond` does not hold within `ms`. */
export async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
