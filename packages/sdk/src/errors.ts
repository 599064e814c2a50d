/**
 * The one error class of the SDK. Server error replies keep their protocol code; failures the
 * client detects itself get codes of their own, so callers branch on `err.code`, never on
 * message text.
 *
 * @module
 */

import type { ErrorCode } from '@parley/protocol';

/**
 * Error codes the client produces itself (not sent by a server):
 * - `timeout`: no reply within `requestTimeoutMs` (a request may or may not have been applied).
 * - `disconnected`: the connection ended while the request was in flight (same caveat).
 * - `closed`: the client was closed (by `close()` or a close code that stops it).
 */
export type ClientErrorCode = 'timeout' | 'disconnected' | 'closed';

/** Every code a {@link ParleyError} can carry: the protocol's error codes and the client's own. */
export type ParleyErrorCode = ErrorCode | ClientErrorCode;

/**
 * A failed request or a client-side failure. `code` is a protocol error code
 * (`forbidden`, `rate_limited`, …) or a {@link ClientErrorCode}; an unknown code from a newer
 * server is passed through unchanged.
 */
export class ParleyError extends Error {
  override readonly name = 'ParleyError';
  /** The error code (see {@link ParleyErrorCode}). */
  readonly code: ParleyErrorCode;
  /** For `rate_limited`: how long the server asked the client to wait. */
  readonly retryAfterMs: number | undefined;
  /** For a failed `send`: the client message id, so the caller can retry it idempotently later. */
  readonly cmid: string | undefined;

  constructor(code: ParleyErrorCode, message?: string, extra?: { retryAfterMs?: number; cmid?: string }) {
    super(message && message.length > 0 ? message : code);
    this.code = code;
    this.retryAfterMs = extra?.retryAfterMs;
    this.cmid = extra?.cmid;
  }

  /** Wraps anything thrown into a ParleyError (an existing one is returned as is). */
  static from(err: unknown, fallback: ParleyErrorCode = 'internal'): ParleyError {
    if (err instanceof ParleyError) return err;
    if (err instanceof Error) return new ParleyError(fallback, err.message);
    return new ParleyError(fallback, String(err));
  }

  /** Builds the error of an `ok: false` reply's `error` object. */
  static fromReply(error: unknown): ParleyError {
    const e = (typeof error === 'object' && error !== null ? error : {}) as {
      code?: unknown;
      message?: unknown;
      retry_after_ms?: unknown;
    };
    const code = (typeof e.code === 'string' ? e.code : 'internal') as ParleyErrorCode;
    const message = typeof e.message === 'string' ? e.message : '';
    return typeof e.retry_after_ms === 'number'
      ? new ParleyError(code, message, { retryAfterMs: e.retry_after_ms })
      : new ParleyError(code, message);
  }
}

/**
 * Whether a failed `send` may be retried with the same `cmid`: the server stored nothing
 * (`unavailable`, `rate_limited`), or it cannot be known (`internal`, `timeout`, `disconnected`);
 * retrying is safe because the server deduplicates by `cmid`. Everything else (`bad_request`,
 * `forbidden`, `not_found`, `too_large`, `conflict`, `unauthorized`, unknown codes) would fail
 * the same way again.
 */
export function isRetryableSendError(code: string): boolean {
  return (
    code === 'unavailable' ||
    code === 'internal' ||
    code === 'rate_limited' ||
    code === 'timeout' ||
    code === 'disconnected'
  );
}
