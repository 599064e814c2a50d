import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { MediaObjectInfo, MediaStore, PresignedRequest } from '../../ports/media-store.js';

/** The URL path under which the embedded server serves media. */
export const MEDIA_PATH = '/v1/media/';

/** Where the files live and how URLs are made. */
export interface FileMediaStoreOptions {
  /** Directory of the objects (created if missing). */
  dir: string;
  /** The public base URL of Parley's HTTP server (`http://host:port`), to which URLs point. */
  baseUrl: () => string;
  /** Secret for the URL signatures (HMAC-SHA256). */
  secret: string | Buffer;
  /** Wall clock in ms (injectable for tests). */
  now?: () => number;
}

interface Meta {
  key: string;
  size: number;
  contentType: string;
}

/**
 * The media store of the embedded mode: objects as files in the data directory, presigned URLs
 * signed with HMAC and served by Parley's own HTTP server (`handle`). A URL's signature covers the
 * method, key, expiry and, for uploads, the content type and exact size, as S3's do. Files are
 * written to a temporary name, fsync'd and renamed, so an object is whole or absent.
 */
/**
 * (It is a `ServedMediaStore`, `backend/media.ts`: the client listener serves its `path`.)
 */
export class FileMediaStore implements MediaStore {
  readonly path = MEDIA_PATH;
  private readonly now: () => number;

  constructor(private readonly options: FileMediaStoreOptions) {
    this.now = options.now ?? Date.now;
  }

  async put(key: string, body: Uint8Array, contentType: string): Promise<void> {
    const { data, meta } = await this.paths(key);
    await writeDurably(data, body);
    await writeDurably(
      meta,
      Buffer.from(JSON.stringify({ key, size: body.length, contentType } satisfies Meta)),
    );
  }

  async head(key: string): Promise<MediaObjectInfo | null> {
    const meta = await this.meta(key);
    return meta && { key: meta.key, size: meta.size, contentType: meta.contentType };
  }

  async get(key: string): Promise<Uint8Array | null> {
    if (!(await this.meta(key))) return null;
    return new Uint8Array(await readFile((await this.paths(key)).data));
  }

  async presignPut(
    key: string,
    contentType: string,
    size: number,
    expiresInS: number,
  ): Promise<PresignedRequest> {
    const exp = this.now() + expiresInS * 1000;
    const query = new URLSearchParams({ exp: String(exp), type: contentType, size: String(size) });
    query.set('sig', this.sign('PUT', key, query));
    return {
      method: 'PUT',
      url: this.url(key, query),
      headers: { 'content-type': contentType },
      expiresAt: exp,
    };
  }

  async presignGet(key: string, expiresInS: number): Promise<PresignedRequest> {
    const exp = this.now() + expiresInS * 1000;
    const query = new URLSearchParams({ exp: String(exp) });
    query.set('sig', this.sign('GET', key, query));
    return { method: 'GET', url: this.url(key, query), headers: {}, expiresAt: exp };
  }

  async delete(key: string): Promise<void> {
    const { data, meta } = await this.paths(key);
    // The metadata goes first: without it the object does not exist, even if the data file lingers.
    await rm(meta, { force: true });
    await rm(data, { force: true });
  }

  /**
   * Serves a presigned request (`PUT` or `GET` under `MEDIA_PATH`); answers 403 for a bad or
   * expired signature, 400 for a body of another size or type than signed, 404 for a missing object.
   */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const key = decodeURIComponent(url.pathname.slice(MEDIA_PATH.length));
    const method = req.method === 'PUT' ? 'PUT' : req.method === 'GET' ? 'GET' : null;
    if (!method) return reply(res, 405, 'method not allowed');
    const sig = url.searchParams.get('sig') ?? '';
    url.searchParams.delete('sig');
    if (!this.valid(method, key, url.searchParams, sig)) return reply(res, 403, 'signature does not match');
    if (Number(url.searchParams.get('exp')) < this.now()) return reply(res, 403, 'request has expired');
    if (method === 'GET') return this.serve(key, res);
    const size = Number(url.searchParams.get('size'));
    const type = url.searchParams.get('type') ?? '';
    if (Number(req.headers['content-length']) !== size)
      return reply(res, 400, `the body must be exactly ${size} bytes`);
    if (req.headers['content-type'] !== type) return reply(res, 400, `the content type must be ${type}`);
    await this.receive(key, type, size, req, res);
  }

  private async serve(key: string, res: ServerResponse): Promise<void> {
    const meta = await this.meta(key);
    if (!meta) return reply(res, 404, 'no such object');
    res.writeHead(200, { 'content-type': meta.contentType, 'content-length': meta.size });
    await pipeline(createReadStream((await this.paths(key)).data), res);
  }

  private async receive(
    key: string,
    type: string,
    size: number,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const { data, meta } = await this.paths(key);
    const tmp = `${data}.${process.pid}.${Date.now()}.part`;
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    try {
      await pipeline(req, createWriteStream(tmp));
      if (received !== size) throw new Error(`received ${received} of ${size} bytes`);
      await fsyncPath(tmp);
      await rename(tmp, data);
      await writeDurably(meta, Buffer.from(JSON.stringify({ key, size, contentType: type } satisfies Meta)));
    } catch (err) {
      await rm(tmp, { force: true });
      return reply(res, 400, err instanceof Error ? err.message : 'upload failed');
    }
    reply(res, 200, '');
  }

  private async meta(key: string): Promise<Meta | null> {
    try {
      return JSON.parse(await readFile((await this.paths(key)).meta, 'utf8')) as Meta;
    } catch {
      return null;
    }
  }

  /** Files of a key: named by its hash (keys are opaque; no path ever comes from a client). */
  private async paths(key: string): Promise<{ data: string; meta: string }> {
    const h = createHash('sha256').update(key).digest('hex');
    const dir = join(this.options.dir, h.slice(0, 2));
    await mkdir(dir, { recursive: true });
    return { data: join(dir, h), meta: join(dir, `${h}.json`) };
  }

  private url(key: string, query: URLSearchParams): string {
    return `${this.options.baseUrl()}${MEDIA_PATH}${encodeURIComponent(key).replaceAll('%2F', '/')}?${query}`;
  }

  private sign(method: string, key: string, query: URLSearchParams): string {
    const text = [method, key, query.get('exp'), query.get('type') ?? '', query.get('size') ?? ''].join('\n');
    return createHmac('sha256', this.options.secret).update(text).digest('base64url');
  }

  private valid(method: string, key: string, query: URLSearchParams, sig: string): boolean {
    const want = Buffer.from(this.sign(method, key, query));
    const got = Buffer.from(sig);
    return want.length === got.length && timingSafeEqual(want, got);
  }
}

function reply(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(message);
}

async function writeDurably(path: string, body: Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, body);
  await fsyncPath(tmp);
  await rename(tmp, path);
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
