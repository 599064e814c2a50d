import type { SendRequest } from '../../ports/conversation-writer.js';
import type { Logger } from '../../ports/logger.js';
import type { SendFilter, SendVerdict } from '../../ports/send-filter.js';
import { signature } from './signature.js';

export interface BeforeSendHookOptions {
  /** The operator's endpoint (http or https). */
  url: string;
  /** Signs each request (`Parley-Signature`), so the endpoint knows it comes from this server. */
  secret?: string | undefined;
  /** How long an answer may take; past it the call failed. */
  timeoutMs: number;
  /** On a failed call (timeout, error status, bad answer, too many in flight): allow the message, or refuse it as unavailable. */
  failOpen: boolean;
  /** Calls in flight at once; more fail at once (by the policy). */
  maxInFlight: number;
  log: Logger;
  now?: () => number;
}

/** The longest answer read, and the longest reason passed on to the sender. */
const MAX_ANSWER_BYTES = 4096;
const MAX_REASON_CHARS = 200;

/**
 * The "before send" hook over HTTP: POSTs each message (as JSON, with an HMAC-SHA256 signature
 * over the timestamp and body, as webhooks are signed) and reads `{"allow": true}` or
 * `{"allow": false, "reason": "…"}`. Anything else within the timeout, or nothing, is a failure,
 * decided by the policy.
 */
export class BeforeSendHook implements SendFilter {
  private inFlight = 0;

  constructor(private readonly o: BeforeSendHookOptions) {}

  async check(m: SendRequest): Promise<SendVerdict> {
    if (this.inFlight >= this.o.maxInFlight) return this.failed('too many checks in flight');
    this.inFlight++;
    try {
      const body = JSON.stringify(requestBody(m));
      const res = await fetch(this.o.url, {
        method: 'POST',
        headers: this.headers(body),
        body,
        signal: AbortSignal.timeout(this.o.timeoutMs),
        redirect: 'error',
      });
      if (!res.ok) {
        await res.body?.cancel();
        return this.failed(`answered ${res.status}`);
      }
      return this.verdict(await readCapped(res));
    } catch (err) {
      return this.failed(err instanceof Error ? err.message : String(err));
    } finally {
      this.inFlight--;
    }
  }

  private headers(body: string): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.o.secret)
      headers['parley-signature'] = signature(this.o.secret, body, this.o.now?.() ?? Date.now());
    return headers;
  }

  private verdict(text: string | null): SendVerdict {
    let answer: unknown;
    try {
      answer = text === null ? undefined : JSON.parse(text);
    } catch {
      answer = undefined;
    }
    const a = answer as { allow?: unknown; reason?: unknown } | undefined;
    if (a?.allow === true) return { allow: true };
    if (a?.allow === false) return { allow: false, reason: reasonOf(a.reason) };
    return this.failed('answer is not {"allow": true|false}');
  }

  private failed(why: string): SendVerdict {
    this.o.log.warn({ url: this.o.url, why, failOpen: this.o.failOpen }, 'before-send hook failed');
    return this.o.failOpen ? { allow: true } : { allow: false, unavailable: true };
  }
}

function requestBody(m: SendRequest): Record<string, unknown> {
  return {
    conv: m.conv,
    from: m.from,
    from_device: m.from_device,
    cmid: m.cmid,
    kind: m.kind,
    body: m.body,
    ...(m.reply_to === undefined ? {} : { reply_to: m.reply_to }),
    ...(m.media === undefined ? {} : { media: m.media }),
  };
}

/** The reason as the sender sees it: a short single line of text. */
function reasonOf(v: unknown): string {
  const text = typeof v === 'string' ? v.replace(/[\p{Cc}\p{Cf}]/gu, ' ').trim() : '';
  return text === '' ? 'refused by the server' : text.slice(0, MAX_REASON_CHARS);
}

/** The answer's text, or null past MAX_ANSWER_BYTES. */
async function readCapped(res: Response): Promise<string | null> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
