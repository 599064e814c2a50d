import { readFileSync, type StatWatcher, unwatchFile, watchFile } from 'node:fs';
import type { RequestListener } from 'node:http';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Config } from '../config/schema.js';
import type { Logger } from '../ports/logger.js';

/** How often the certificate and key files are looked at for a change. */
const WATCH_INTERVAL_MS = 1_000;

/** A TLS server whose certificate can be swapped for new connections (https, http2, tls). */
interface SecureServer {
  setSecureContext(options: SecureContextOptions): void;
}

/**
 * The listeners' TLS settings from the configuration, or null when TLS is off: the certificate
 * chain and key files as read now, and the lowest version accepted (TLS 1.3 unless the operator
 * allows 1.2 for old clients).
 */
export function tlsOptions(config: Config): SecureContextOptions | null {
  if (config.tlsCertFile === undefined || config.tlsKeyFile === undefined) return null;
  return {
    cert: readFileSync(config.tlsCertFile),
    key: readFileSync(config.tlsKeyFile),
    minVersion: config.tlsMinVersion,
  };
}

/**
 * Reads the certificate and key again when either file changes and gives new connections the new
 * pair; connections already open keep theirs, so a renewal drops nobody. A pair that does not
 * load (a half-written renewal: the new chain with the old key) is logged and the current one
 * kept; the next change tries again. Returns a function that stops watching.
 */
export function reloadCertificates(config: Config, server: SecureServer, log: Logger): () => void {
  const files = [config.tlsCertFile, config.tlsKeyFile].filter((f): f is string => f !== undefined);
  if (files.length < 2) return () => {};
  const reload = () => {
    try {
      const options = tlsOptions(config)!;
      createSecureContext(options); // throws on a mismatched or unreadable pair
      server.setSecureContext(options);
      log.info({ cert: config.tlsCertFile }, 'TLS certificate reloaded');
    } catch (err) {
      log.error(
        { cert: config.tlsCertFile, err: String(err) },
        'TLS certificate not reloaded: keeping the current one',
      );
    }
  };
  const watchers: StatWatcher[] = files.map((f) =>
    watchFile(f, { interval: WATCH_INTERVAL_MS, persistent: false }, (now, before) => {
      if (now.mtimeMs !== before.mtimeMs || now.ino !== before.ino || now.size !== before.size) reload();
    }),
  );
  return () => {
    for (const f of files) unwatchFile(f);
    watchers.length = 0;
  };
}

/**
 * Adds `Strict-Transport-Security` to every response of a TLS listener, so browsers that reached
 * it once never use plain HTTP for it again (`hstsMaxAgeSeconds`: 0 leaves it out).
 */
export function withHsts<L extends RequestListener>(config: Config, listener: L): L {
  if (config.hstsMaxAgeSeconds === 0) return listener;
  const value = `max-age=${config.hstsMaxAgeSeconds}`;
  return ((req, res) => {
    res.setHeader('strict-transport-security', value);
    listener(req, res);
  }) as L;
}
