import type { Config } from '../config/schema.js';
import type { KeySetup } from '../gateway/auth.js';
import type { Logger } from '../ports/logger.js';
import type { ServerApi, ServerApiBackend } from './server-api.js';

/**
 * The server API when a keys file is configured, else null, loading its module (and Connect and
 * protobuf with it) only then: a server without the API never loads them.
 */
export async function loadServerApi(
  config: Config,
  backend: ServerApiBackend,
  keys: KeySetup,
  log: Logger,
): Promise<ServerApi | null> {
  if (config.serverApiKeysFile === undefined) return null;
  const { createServerApi } = await import('./server-api.js');
  return createServerApi(config, backend, keys, log);
}
