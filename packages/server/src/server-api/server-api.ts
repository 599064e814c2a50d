import type { AddressInfo } from 'node:net';
import type { BackendApi, OperatorApi } from '../backend/api.js';
import { protocolLimits } from '../config/protocol-limits.js';
import type { Config } from '../config/schema.js';
import { type KeySetup, mintToken } from '../gateway/auth.js';
import { listen } from '../gateway/listener.js';
import type { Logger } from '../ports/logger.js';
import type { RateLimiter } from '../ports/rate-limiter.js';
import { ApiKeys } from './api-keys.js';
import { createServerApiListener } from './listener.js';

/** Tokens minted without a lifetime live this long (as `parley token`'s default), in seconds. */
const DEFAULT_TOKEN_TTL_S = 3600;

/** What the server API calls: the gateways' backend API, the operator's, and the budgets. */
export interface ServerApiBackend {
  api: BackendApi;
  operator: OperatorApi;
  limiter: RateLimiter;
}

/** The server API of one process, ready to listen. */
export interface ServerApi {
  listen(): Promise<AddressInfo>;
  close(): void;
}

/**
 * The server API over a backend, with the configured keys file (`loadServerApi` calls it only then). It
 * mints tokens with the server's own secret when it has one.
 */
export function createServerApi(
  config: Config,
  backend: ServerApiBackend,
  keys: KeySetup,
  log: Logger,
): ServerApi {
  const secret = keys.secret;
  const maxTokenTtlSeconds = Math.floor(config.maxTokenLifetimeMs / 1000);
  const listener = createServerApiListener({
    config,
    log: log.child({ listener: 'server-api' }),
    keys: new ApiKeys(config.serverApiKeysFile!, log),
    limiter: backend.limiter,
    deps: {
      api: backend.api,
      operator: backend.operator,
      limits: protocolLimits(config),
      tokenTtlSeconds: Math.min(DEFAULT_TOKEN_TTL_S, maxTokenTtlSeconds),
      maxTokenTtlSeconds,
      serviceAccounts: new Set(config.serviceAccounts),
      ...(secret
        ? {
            mint: (user: string, device: string, ttlSeconds: number) =>
              mintToken(secret, {
                user,
                device,
                ttlSeconds,
                ...(config.jwtIssuer ? { issuer: config.jwtIssuer } : {}),
                ...(config.jwtAudience ? { audience: config.jwtAudience } : {}),
              }),
          }
        : {}),
    },
  });
  return {
    listen: () => listen(listener.server, config.serverApiHost, config.serverApiPort, 'server API'),
    close: () => listener.close(),
  };
}
