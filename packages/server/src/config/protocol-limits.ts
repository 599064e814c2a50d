import { DEFAULT_LIMITS, type Limits } from '@parley/protocol';
import type { Config } from './schema.js';

/** The protocol's limits as this server is configured: what every frame and API call is validated against. */
export function protocolLimits(config: Config): Limits {
  return {
    ...DEFAULT_LIMITS,
    maxFrameBytes: config.maxFrameBytes,
    maxBodyBytes: config.maxBodyBytes,
    maxGroupSize: config.maxGroupSize,
    maxPresenceUsers: config.maxPresenceSubscriptions,
  };
}
