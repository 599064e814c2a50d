import { ERROR_HTTP_STATUS, type ErrorCode } from '@parley/protocol';

/**
 * The one error type the domain and gateway throw on purpose. Its `code` is a protocol error code,
 * so the gateway can turn any failure into a reply (`error.code`), and HTTP into a status, through
 * the single table in `@parley/protocol` (`ERROR_HTTP_STATUS`). Anything else thrown is a bug or a
 * dependency failure and is reported to clients as `internal` without details.
 */
export class ParleyError extends Error {
  override readonly name = 'ParleyError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryAfterMs?: number,
    /** For errors that end the connection: the WebSocket close code to use after the reply. */
    readonly closeCode?: number,
  ) {
    // These errors are answers, not bugs: nobody reads their stack, and capturing one costs more
    // than the rest of a refused request (a client past its budget makes thousands a second).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
  }

  /** The HTTP status for this error's code. */
  get httpStatus(): number {
    return ERROR_HTTP_STATUS[this.code];
  }

  /** Wraps anything thrown into a ParleyError; unknown failures become `internal`. */
  static from(err: unknown): ParleyError {
    if (err instanceof ParleyError) return err;
    return new ParleyError('internal', 'internal error');
  }
}

export const forbidden = (message: string): ParleyError => new ParleyError('forbidden', message);
export const badRequest = (message: string): ParleyError => new ParleyError('bad_request', message);
export const unavailable = (message: string): ParleyError => new ParleyError('unavailable', message);
