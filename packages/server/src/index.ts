export { ConfigError, loadConfig } from './config/load.js';
export { type Config, type ConfigInput, configSchema } from './config/schema.js';
export { mintToken } from './gateway/auth.js';
export { createLogger } from './logger.js';
export { createParleyServer, type ParleyServer } from './main.js';
