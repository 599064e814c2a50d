/**
 * The writer thread's part of the `KeyDirectory`: uploads, claims and removals, each applied in
 * the batch's transaction (so a claim's pick and delete of a one-time prekey is one step no other
 * claim, of this process or another, can come between).
 * @module
 */
import type Database from 'better-sqlite3';
import type { ClaimedBundle, KeyUpload } from '../../ports/key-directory.js';
import type { OpAnswer } from './write-ops.js';

type Statement = Database.Statement<unknown[]>;

/** The writer thread's prepared statements of the key directory. */
export type KeyStatements = Record<
  | 'keyIdentity'
  | 'keySetIdentity'
  | 'keySetSigned'
  | 'keyClearSigned'
  | 'keyBundles'
  | 'keyDelete'
  | 'prekeyCount'
  | 'prekeyInsert'
  | 'prekeyFirst'
  | 'prekeyDelete'
  | 'prekeyDeleteAll',
  Statement
>;

export function prepareKeyStatements(db: Database.Database): KeyStatements {
  return {
    keyIdentity: db.prepare('SELECT identity_key FROM device_keys WHERE user = ? AND device = ?'),
    keySetIdentity: db.prepare(
      `INSERT INTO device_keys (user, device, identity_key) VALUES (?, ?, ?)
       ON CONFLICT (user, device) DO UPDATE SET identity_key = excluded.identity_key`,
    ),
    keySetSigned: db.prepare(
      `INSERT INTO device_keys (user, device, signed_key_id, signed_key, signed_signature) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (user, device) DO UPDATE SET signed_key_id = excluded.signed_key_id,
       signed_key = excluded.signed_key, signed_signature = excluded.signed_signature`,
    ),
    keyClearSigned: db.prepare(
      `UPDATE device_keys SET signed_key_id = NULL, signed_key = NULL, signed_signature = NULL
       WHERE user = ? AND device = ?`,
    ),
    keyBundles: db.prepare(
      `SELECT device, identity_key, signed_key_id, signed_key, signed_signature FROM device_keys
       WHERE user = ? AND identity_key IS NOT NULL AND signed_key IS NOT NULL ORDER BY device`,
    ),
    keyDelete: db.prepare('DELETE FROM device_keys WHERE user = ? AND device = ?'),
    prekeyCount: db.prepare('SELECT count(*) AS n FROM one_time_prekeys WHERE user = ? AND device = ?'),
    prekeyInsert: db.prepare(
      `INSERT INTO one_time_prekeys (user, device, key_id, key) VALUES (?, ?, ?, ?)
       ON CONFLICT (user, device, key_id) DO NOTHING`,
    ),
    prekeyFirst: db.prepare(
      'SELECT key_id, key FROM one_time_prekeys WHERE user = ? AND device = ? ORDER BY key_id LIMIT 1',
    ),
    prekeyDelete: db.prepare('DELETE FROM one_time_prekeys WHERE user = ? AND device = ? AND key_id = ?'),
    prekeyDeleteAll: db.prepare('DELETE FROM one_time_prekeys WHERE user = ? AND device = ?'),
  };
}

/**
 * Applies an upload: a different identity key first deletes the bundle of the old one, then the
 * signed prekey is replaced and one-time prekeys are added, up to `max` (a key id already stored
 * is ignored). Reads back how many one-time prekeys the device has.
 */
export function uploadKeys(
  s: KeyStatements,
  user: string,
  device: string,
  keys: KeyUpload,
  max: number,
): OpAnswer {
  const { identityKey, signedPrekey, oneTimePrekeys = [] } = keys;
  if (identityKey !== undefined) {
    const stored = (s.keyIdentity.get(user, device) as { identity_key: string | null } | undefined)
      ?.identity_key;
    if (stored != null && stored !== identityKey) {
      s.keyClearSigned.run(user, device);
      s.prekeyDeleteAll.run(user, device);
    }
    s.keySetIdentity.run(user, device, identityKey);
  }
  if (signedPrekey !== undefined)
    s.keySetSigned.run(user, device, signedPrekey.keyId, signedPrekey.key, signedPrekey.signature);
  let count = (s.prekeyCount.get(user, device) as { n: number }).n;
  let added = 0;
  for (const k of oneTimePrekeys) {
    if (count >= max) break;
    const n = s.prekeyInsert.run(user, device, k.keyId, k.key).changes;
    count += n;
    added += n;
  }
  return { rows: added, value: count };
}

interface BundleRow {
  device: string;
  identity_key: string;
  signed_key_id: number;
  signed_key: string;
  signed_signature: string;
}

/** One bundle per device with an identity key and a signed prekey, each with a one-time prekey taken. */
export function claimKeys(s: KeyStatements, user: string): OpAnswer {
  let taken = 0;
  const bundles = (s.keyBundles.all(user) as BundleRow[]).map((r) => {
    const b: ClaimedBundle = {
      device: r.device,
      identityKey: r.identity_key,
      signedPrekey: { keyId: r.signed_key_id, key: r.signed_key, signature: r.signed_signature },
    };
    const k = s.prekeyFirst.get(user, r.device) as { key_id: number; key: string } | undefined;
    if (k) {
      s.prekeyDelete.run(user, r.device, k.key_id);
      b.oneTimePrekey = { keyId: k.key_id, key: k.key };
      taken++;
    }
    return b;
  });
  return { rows: taken, value: bundles };
}

export function removeKeys(s: KeyStatements, user: string, device: string): number {
  return s.keyDelete.run(user, device).changes + s.prekeyDeleteAll.run(user, device).changes;
}
