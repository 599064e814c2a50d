/**
 * The `KeyDirectory` port: the public keys each device publishes for end-to-end encryption (an
 * identity key, a signed prekey, and one-time prekeys), as `keys_upload` stores them and
 * `keys_claim` hands them out. The server never sees a private key; it only stores and hands out
 * what devices published. Conformance: `adapters/conformance/key-directory.suite.ts`.
 * @module
 */

/** A public prekey as a device published it (the key is opaque base64 to the server). */
export interface PublicPrekey {
  keyId: number;
  key: string;
}

/** A prekey with its signature by the device's identity key. */
export interface SignedPublicPrekey extends PublicPrekey {
  signature: string;
}

/** What one `keys_upload` publishes; every field is optional (at least one is present). */
export interface KeyUpload {
  identityKey?: string;
  signedPrekey?: SignedPublicPrekey;
  oneTimePrekeys?: readonly PublicPrekey[];
}

/** One device's bundle as `keys_claim` hands it out. */
export interface ClaimedBundle {
  device: string;
  identityKey: string;
  signedPrekey: SignedPublicPrekey;
  /** Absent when the device has no one-time prekey left. */
  oneTimePrekey?: PublicPrekey;
}

/** One-time prekeys a device may have waiting; an upload past it keeps the first ones. */
export const MAX_ONE_TIME_PREKEYS = 500;

export interface KeyDirectory {
  /**
   * Publishes the device's keys; resolves once durable with how many one-time prekeys the device
   * now has. An identity key other than the stored one replaces the device's whole bundle: its
   * signed prekey and every one-time prekey left are deleted first (they belonged to the old
   * identity). A signed prekey replaces the stored one. One-time prekeys are added to those left;
   * a key id already stored is ignored, and past `MAX_ONE_TIME_PREKEYS` the rest are dropped
   * (uploads of one device racing from several processes may pass it by one upload's keys: the
   * cluster store checks the bound before its conditional insert).
   */
  upload(user: string, device: string, keys: KeyUpload): Promise<number>;
  /**
   * One bundle for each of the user's devices that has an identity key and a signed prekey, with
   * one of its one-time prekeys when it has any left. A one-time prekey is handed out at most
   * once, ever, even to concurrent claims from several processes; a claimed key is deleted.
   * Which of the device's one-time prekeys is handed out, and the order of the bundles, are the
   * store's choice.
   */
  claim(user: string): Promise<ClaimedBundle[]>;
  /** How many one-time prekeys the device has left. */
  count(user: string, device: string): Promise<number>;
  /** The user's devices that have published an identity key. */
  devicesWithKeys(user: string): Promise<Set<string>>;
  /** Deletes every key of the device (it was revoked). */
  remove(user: string, device: string): Promise<void>;
}
