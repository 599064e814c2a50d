/**
 * Parley Web, served by the client listener: the built files of `@parley/web` (no separate web
 * server in production) with caching headers and a strict Content-Security-Policy, and, in
 * development mode only, the token endpoint its sign-in form uses.
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { isDeviceId, isUserId } from '@parley/protocol';
import type { Config } from '../config/schema.js';
import { ParleyError } from '../domain/errors.js';
import { mintToken } from './auth.js';

/** Where `npm run build` puts the web client, relative to this file in `src/` and in `dist/`. */
const BUILT_WEB = fileURLToPath(new URL('../../../web/dist/', import.meta.url));

/** The path of the development token endpoint. */
export const DEV_TOKEN_PATH = '/v1/dev/token';

/** Lifetime of a development token: a working day. */
const DEV_TOKEN_TTL_S = 12 * 3600;

/**
 * The page may load only its own files, talk to this server (and media URLs, which are HTTP(S) in
 * cluster mode), show its own and decrypted (blob:) images; no inline script or style, no frames.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self' ws: wss: http: https:",
  "worker-src 'self'",
  "manifest-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** One file as served: its bytes, gzipped when that is smaller, and its ETag. */
interface Asset {
  body: Buffer;
  gzip: Buffer | null;
  type: string;
  etag: string;
  immutable: boolean;
}

/** The web client's files and the development token endpoint. */
export class WebApp {
  private readonly assets = new Map<string, Asset | null>();

  private constructor(
    private readonly root: string,
    /** The HS256 secret dev tokens are signed with; absent: no token endpoint. */
    private readonly devSecret: Uint8Array | undefined,
  ) {}

  /**
   * The web client of this configuration: `webDir`, or the built `@parley/web` beside the server;
   * undefined when `web` is off or nothing is built. The token endpoint exists only with the
   * generated development secret or `devTokens: true`, and never without an HS256 secret.
   */
  static create(config: Config, keys: { secret?: Uint8Array; devSecret: boolean }): WebApp | undefined {
    if (!config.web) return undefined;
    const root = config.webDir ?? BUILT_WEB;
    if (!existsSync(join(root, 'index.html'))) return undefined;
    const devTokens = (keys.devSecret || config.devTokens) && keys.secret !== undefined;
    return new WebApp(root, devTokens ? keys.secret : undefined);
  }

  /** Whether the development token endpoint is on. */
  get devTokens(): boolean {
    return this.devSecret !== undefined;
  }

  /** `POST /v1/dev/token` `{user, device}` → `{token}`. */
  async mintDevToken(req: IncomingMessage, res: ServerResponse, config: Config): Promise<void> {
    if (!this.devSecret) throw new ParleyError('not_found', 'no such endpoint');
    if (req.method !== 'POST') throw new ParleyError('bad_request', 'POST {"user", "device"}');
    const body = (await readSmallJson(req)) as { user?: unknown; device?: unknown };
    if (!isUserId(body.user)) throw new ParleyError('bad_request', '"user" must be a user id');
    if (!isDeviceId(body.device)) throw new ParleyError('bad_request', '"device" must be a device id');
    const ttlSeconds = Math.min(DEV_TOKEN_TTL_S, Math.floor(config.maxTokenLifetimeMs / 1000));
    const token = await mintToken(this.devSecret, { user: body.user, device: body.device, ttlSeconds });
    const text = JSON.stringify({ token });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
  }

  /**
   * Serves a file for GET or HEAD (`/` is the page; the client routes in the URL's hash, so no
   * other path stands for it); false when there is no such file.
   */
  serve(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const asset = this.asset(path);
    if (!asset) return false;
    const headers: Record<string, string | number> = {
      'content-type': asset.type,
      etag: asset.etag,
      'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      vary: 'Accept-Encoding',
    };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers).end();
      return true;
    }
    const gzip = asset.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? asset.gzip! : asset.body;
    if (gzip) headers['content-encoding'] = 'gzip';
    headers['content-length'] = body.length;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }

  /** A file under the root, loaded once; null when there is none (or the path leaves the root). */
  private asset(path: string): Asset | null {
    const name = path === '/' ? '/index.html' : path;
    const cached = this.assets.get(name);
    if (cached !== undefined) return cached;
    const decoded = decodePath(name);
    if (decoded === null) return null;
    const file = normalize(join(this.root, decoded));
    let asset: Asset | null = null;
    if (file.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep) && isFile(file)) {
      const body = readFileSync(file);
      const gzip = gzipSync(body);
      asset = {
        body,
        gzip: gzip.length < body.length ? gzip : null,
        type: TYPES[extname(file)] ?? 'application/octet-stream',
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
        immutable: name.startsWith('/assets/'),
      };
    }
    // Bounded: only names that exist are cached beyond a few misses.
    if (asset || this.assets.size < 1000) this.assets.set(name, asset);
    return asset;
  }
}

function decodePath(path: string): string | null {
  try {
    return decodeURIComponent(path);
  } catch {
    return null;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Reads a JSON body of at most 1 KiB. */
async function readSmallJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 1024) throw new ParleyError('too_large', 'the body is limited to 1 KiB');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ParleyError('bad_request', 'the body must be JSON');
  }
}
