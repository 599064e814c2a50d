/** What the store knows of a stored media object. */
export interface MediaObjectInfo {
  key: string;
  size: number;
  contentType: string;
}

/** A presigned request: the client sends it as given (method, URL and every header) before `expiresAt`. */
export interface PresignedRequest {
  method: 'PUT' | 'GET';
  url: string;
  /** Headers the signature covers; the client must send exactly these. */
  headers: Record<string, string>;
  /** When the URL stops working (ms since the epoch). */
  expiresAt: number;
}

/**
 * Media bytes (images, voice notes, encrypted attachments) in an object store. Clients move the
 * bytes directly to and from the store with presigned URLs, so media never passes through a
 * gateway; the server only signs, checks and deletes. Keys are chosen by the server.
 * Embedded: files in the data directory, served by Parley's HTTP server. Cluster: S3-compatible.
 */
export interface MediaStore {
  /** Stores an object (server-side writes: thumbnails, tests); resolves once durable. */
  put(key: string, body: Uint8Array, contentType: string): Promise<void>;
  /** The object's size and type, or null when there is none. */
  head(key: string): Promise<MediaObjectInfo | null>;
  /** The object's bytes, or null when there is none. */
  get(key: string): Promise<Uint8Array | null>;
  /**
   * A URL for uploading exactly `size` bytes of `contentType` to `key`: a request with another
   * length or type is refused by the store, so the size the client declared is the size stored.
   */
  presignPut(key: string, contentType: string, size: number, expiresInS: number): Promise<PresignedRequest>;
  /** A URL for downloading `key`. */
  presignGet(key: string, expiresInS: number): Promise<PresignedRequest>;
  /** Deletes the object; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
}
