import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { FileMediaStore } from '../adapters/files/file-media-store.js';
import type { Config } from '../config/schema.js';
import type { MediaService } from '../domain/media.js';
import type { Logger } from '../ports/logger.js';
import type { MediaStore } from '../ports/media-store.js';

/** The key of the embedded media URLs' signatures, kept in the data directory. */
export const MEDIA_SECRET_FILE = 'media-url.key';

/**
 * Where clients reach this server: `publicUrl` when configured, else the client listener's own
 * address once it listens (`set` by whoever started it).
 */
export class PublicAddress {
  private listening: string | undefined;

  constructor(private readonly config: Pick<Config, 'publicUrl' | 'host' | 'port'>) {}

  set(port: number): void {
    const host = ['0.0.0.0', '::', ''].includes(this.config.host) ? '127.0.0.1' : this.config.host;
    this.listening = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  url(): string {
    return (this.config.publicUrl ?? this.listening ?? `http://127.0.0.1:${this.config.port}`).replace(
      /\/$/,
      '',
    );
  }
}

/**
 * The embedded media store: files under `mediaDir` (default `<dataDir>/media`), URLs signed with a
 * key generated once into the data directory, so every process of the node (workers included)
 * signs and checks alike, and URLs survive a restart.
 */
export function embeddedMediaStore(config: Config, address: PublicAddress): FileMediaStore {
  return new FileMediaStore({
    dir: config.mediaDir ?? join(config.dataDir, 'media'),
    baseUrl: () => address.url(),
    secret: loadOrCreateSecret(join(config.dataDir, MEDIA_SECRET_FILE)),
  });
}

function loadOrCreateSecret(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    mkdirSync(join(path, '..'), { recursive: true });
    const secret = randomBytes(32);
    try {
      // Another process of the node may have written it meanwhile: `wx` keeps the first one.
      writeFileSync(path, secret, { flag: 'wx', mode: 0o600 });
      return secret;
    } catch {
      return readFileSync(path);
    }
  }
}

/** Deletes media nobody needs any more, every `mediaSweepIntervalMs` (the `maintenance` role). */
export function sweepMedia(media: MediaService, config: Config, log: Logger): NodeJS.Timeout {
  const timer = setInterval(() => {
    media.sweep().then(
      (n) => n > 0 && log.info({ media: n }, 'deleted media no message needs'),
      (err) => log.warn({ err: String(err) }, 'media sweep failed'),
    );
  }, config.mediaSweepIntervalMs);
  timer.unref();
  return timer;
}

/**
 * A media store whose URLs point at Parley's own HTTP server (the embedded file store): the client
 * listener hands it every request under `path`. A store on S3 is not one: bytes never pass
 * through Parley there.
 */
export interface ServedMediaStore extends MediaStore {
  readonly path: string;
  /** Serves one presigned request (upload or download), streaming the body. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

/** Whether `store` is served by Parley's own HTTP server. */
export function isServed(store: MediaStore): store is ServedMediaStore {
  return typeof (store as Partial<ServedMediaStore>).handle === 'function';
}
