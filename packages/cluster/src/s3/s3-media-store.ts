import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { MediaObjectInfo, MediaStore, PresignedRequest } from '@parley/server/ports/media-store';

/** Where and how to reach the bucket. */
export interface S3MediaStoreOptions {
  /** The S3 endpoint (`http://127.0.0.1:19000` for a local server); omit for AWS itself. */
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need (default true). */
  forcePathStyle?: boolean;
}

/**
 * The media store on any S3-compatible object store (AWS S3, versitygw, SeaweedFS, Ceph, …).
 * Uploads are presigned with their Content-Type and Content-Length in the signature (SigV4), so
 * the store itself refuses an upload of another size or type than the one the server agreed to.
 */
export class S3MediaStore implements MediaStore {
  private readonly s3: S3Client;
  private readonly bucket: string;

  constructor(options: S3MediaStoreOptions) {
    this.bucket = options.bucket;
    this.s3 = new S3Client({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      forcePathStyle: options.forcePathStyle ?? true,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
    });
  }

  async put(key: string, body: Uint8Array, contentType: string): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }),
    );
  }

  async head(key: string): Promise<MediaObjectInfo | null> {
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { key, size: r.ContentLength ?? 0, contentType: r.ContentType ?? 'application/octet-stream' };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async get(key: string): Promise<Uint8Array | null> {
    try {
      const r = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.Body ? await r.Body.transformToByteArray() : new Uint8Array();
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async presignPut(
    key: string,
    contentType: string,
    size: number,
    expiresInS: number,
  ): Promise<PresignedRequest> {
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ContentType: contentType,
      ContentLength: size,
    });
    const url = await getSignedUrl(this.s3, command, {
      expiresIn: expiresInS,
      signableHeaders: new Set(['content-type', 'content-length']),
    });
    // Content-Length is set by the client's HTTP library from the body (fetch refuses to set it).
    return {
      method: 'PUT',
      url,
      headers: { 'content-type': contentType },
      expiresAt: Date.now() + expiresInS * 1000,
    };
  }

  async presignGet(key: string, expiresInS: number): Promise<PresignedRequest> {
    const url = await getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: expiresInS,
    });
    return { method: 'GET', url, headers: {}, expiresAt: Date.now() + expiresInS * 1000 };
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** Closes the client's connections. */
  close(): void {
    this.s3.destroy();
  }
}

function isNotFound(err: unknown): boolean {
  return (
    err instanceof S3ServiceException &&
    (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404)
  );
}
