/**
 * Types of `http_ece` (Encrypted Content-Encoding for HTTP, RFC 8188; web-push's own dependency),
 * which ships none: the part the push endpoint uses. A CommonJS module: `import ece from 'http_ece'`.
 */
declare module 'http_ece' {
  import type { ECDH } from 'node:crypto';

  namespace ece {
    /** Parameters of a decryption; with `aes128gcm` the sender's public key and salt come from the body. */
    interface DecryptParams {
      version: 'aes128gcm' | 'aesgcm' | 'aesgcm128';
      /** The receiver's ECDH key pair (P-256). */
      privateKey?: ECDH;
      /** The Web Push auth secret, base64url or bytes. */
      authSecret?: string | Buffer;
      dh?: string | Buffer;
      salt?: string | Buffer;
      key?: string | Buffer;
      keyid?: string | Buffer;
      rs?: number;
    }

    /** Decrypts a body; throws when it does not decrypt. */
    function decrypt(buffer: Buffer, params: DecryptParams): Buffer;
  }

  export = ece;
}
