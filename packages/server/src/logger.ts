import pino from 'pino';
import type { Logger } from './ports/logger.js';

/**
 * The production logger: pino, JSON lines on stdout. Tokens and bodies are never passed in log
 * fields by the code; `redact` is the second line of defence should one slip in.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'parley' },
    redact: {
      paths: [
        'token',
        '*.token',
        'body',
        '*.body',
        'authorization',
        '*.authorization',
        'headers.authorization',
        'secret',
        '*.secret',
      ],
      censor: '[redacted]',
    },
  }) as unknown as Logger;
}
