/**
 * The receiving side of RFC 8291 (Message Encryption for Web Push) over RFC 8188 `aes128gcm`,
 * written from the RFCs with `node:crypto` only, so the Web Push test server checks the adapter's
 * encryption independently of the library that produced it.
 * @module
 */
import { createDecipheriv, createECDH, type ECDH, hkdfSync, randomBytes } from 'node:crypto';

/** A browser's push subscription keys: the P-256 key pair (`p256dh`) and the 16-byte auth secret. */
export interface SubscriptionKeys {
  ecdh: ECDH;
  /** Uncompressed public point, base64url: the subscription's `keys.p256dh`. */
  p256dh: string;
  /** base64url: the subscription's `keys.auth`. */
  auth: string;
}

/** Fresh subscription keys, as a browser makes them for `pushManager.subscribe`. */
export function subscriptionKeys(): SubscriptionKeys {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return {
    ecdh,
    p256dh: ecdh.getPublicKey().toString('base64url'),
    auth: randomBytes(16).toString('base64url'),
  };
}

/**
 * Decrypts an `aes128gcm` Web Push body for the subscription `keys` (RFC 8291 §3.4, RFC 8188 §2):
 * header `salt(16) | rs(4) | idlen(1) | keyid` with keyid the sender's ephemeral P-256 public key;
 * IKM = HKDF(auth, ECDH, "WebPush: info\0" | ua_public | as_public); CEK and NONCE from HKDF(salt,
 * IKM); each record is AES-128-GCM with the nonce XORed with its sequence number, and ends with a
 * padding delimiter (2 in the last record, 1 before) followed by zeros. Throws on any violation.
 */
export function decryptAes128gcm(body: Buffer, keys: SubscriptionKeys): Buffer {
  if (body.length < 21) throw new Error('body shorter than the aes128gcm header');
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20] ?? 0;
  if (rs < 18) throw new Error(`record size ${rs} below 18`);
  if (idlen !== 65) throw new Error(`keyid of ${idlen} bytes; RFC 8291 requires the 65-byte sender key`);
  const asPublic = body.subarray(21, 21 + idlen);
  if (asPublic[0] !== 0x04) throw new Error('keyid is not an uncompressed P-256 point');
  const uaPublic = keys.ecdh.getPublicKey();
  const ecdhSecret = keys.ecdh.computeSecret(asPublic);
  const authSecret = Buffer.from(keys.auth, 'base64url');
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));

  const records = body.subarray(21 + idlen);
  if (records.length === 0) throw new Error('no records');
  const out: Buffer[] = [];
  let seq = 0;
  for (let at = 0; at < records.length; at += rs, seq++) {
    const record = records.subarray(at, Math.min(at + rs, records.length));
    const last = at + rs >= records.length;
    if (record.length < 17) throw new Error(`record ${seq} too short`);
    const iv = Buffer.from(nonce);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ seq) >>> 0, 8); // seq < 2^32: only the low 4 bytes change
    const decipher = createDecipheriv('aes-128-gcm', cek, iv);
    decipher.setAuthTag(record.subarray(record.length - 16));
    const plain = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
    let end = plain.length - 1;
    while (end >= 0 && plain[end] === 0) end--;
    if (end < 0) throw new Error(`record ${seq} has no padding delimiter`);
    const delimiter = plain[end];
    if (delimiter !== (last ? 2 : 1))
      throw new Error(`record ${seq} has delimiter ${delimiter}, expected ${last ? 2 : 1}`);
    out.push(plain.subarray(0, end));
  }
  return Buffer.concat(out);
}
