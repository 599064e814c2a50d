import type { WebhookEvent, WebhookResult, WebhookSender } from '../../ports/webhooks.js';
import { signature } from './signature.js';

export interface HttpWebhookSenderOptions {
  /** Signs every request (`Parley-Signature`), so endpoints know it comes from this server. */
  secret: string;
  /** How long an endpoint may take to answer; past it the attempt failed. */
  timeoutMs: number;
  now?: () => number;
}

/** The longest `Retry-After` honoured (an endpoint asking for more gets the dispatcher's backoff cap). */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * Posts each event as JSON with `Parley-Signature` (HMAC-SHA256 over the timestamp and the body),
 * `Parley-Event-Id` and `Parley-Event-Type`. Any 2xx answer is delivered; anything else (another
 * status, a timeout, a refused connection) is worth retrying, with the endpoint's `Retry-After`.
 * Answers' bodies are not read. Redirects are not followed: an endpoint is configured, not found.
 */
export class HttpWebhookSender implements WebhookSender {
  constructor(private readonly o: HttpWebhookSenderOptions) {}

  async post(endpoint: string, event: WebhookEvent): Promise<WebhookResult> {
    const body = JSON.stringify(event);
    try {
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'parley-signature': signature(this.o.secret, body, this.o.now?.() ?? Date.now()),
          'parley-event-id': event.id,
          'parley-event-type': event.type,
        },
        body,
        signal: AbortSignal.timeout(this.o.timeoutMs),
        redirect: 'manual',
      });
      await res.body?.cancel();
      if (res.status >= 200 && res.status < 300) return { status: 'delivered' };
      const retryAfterMs = retryAfter(res.headers.get('retry-after'));
      return {
        status: 'retry',
        reason: `answered ${res.status}`,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      };
    } catch (err) {
      return {
        status: 'retry',
        reason:
          err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err),
      };
    }
  }
}

/** `Retry-After` in seconds or as an HTTP date, in ms from now (undefined when absent or malformed). */
function retryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) && ms >= 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : undefined;
}
