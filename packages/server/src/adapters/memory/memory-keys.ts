/**
 * The in-memory `KeyDirectory`: the reference behaviour `key-directory.suite.ts` pins down, for
 * domain tests. Not durable.
 * @module
 */
import {
  type ClaimedBundle,
  type KeyDirectory,
  type KeyUpload,
  MAX_ONE_TIME_PREKEYS,
  type SignedPublicPrekey,
} from '../../ports/key-directory.js';

interface DeviceKeys {
  identityKey?: string;
  signedPrekey?: SignedPublicPrekey;
  /** key id → key, in upload order: a claim hands out the oldest first. */
  oneTime: Map<number, string>;
}

/** The keys of each user's devices, in memory. */
export class MemoryKeyDirectory implements KeyDirectory {
  /** user → device → its keys. */
  private readonly byUser = new Map<string, Map<string, DeviceKeys>>();

  async upload(user: string, device: string, keys: KeyUpload): Promise<number> {
    const d = this.device(user, device);
    const { identityKey, signedPrekey, oneTimePrekeys = [] } = keys;
    if (identityKey !== undefined && d.identityKey !== undefined && identityKey !== d.identityKey) {
      // The old keys were signed by (and belong to) the old identity.
      delete d.signedPrekey;
      d.oneTime.clear();
    }
    if (identityKey !== undefined) d.identityKey = identityKey;
    if (signedPrekey !== undefined)
      d.signedPrekey = {
        keyId: signedPrekey.keyId,
        key: signedPrekey.key,
        signature: signedPrekey.signature,
      };
    for (const k of oneTimePrekeys) {
      if (d.oneTime.size >= MAX_ONE_TIME_PREKEYS) break;
      if (!d.oneTime.has(k.keyId)) d.oneTime.set(k.keyId, k.key);
    }
    return d.oneTime.size;
  }

  async claim(user: string): Promise<ClaimedBundle[]> {
    const out: ClaimedBundle[] = [];
    for (const [device, d] of this.byUser.get(user) ?? []) {
      if (d.identityKey === undefined || d.signedPrekey === undefined) continue;
      const bundle: ClaimedBundle = {
        device,
        identityKey: d.identityKey,
        signedPrekey: { ...d.signedPrekey },
      };
      const first = d.oneTime.entries().next();
      if (!first.done) {
        const [keyId, key] = first.value;
        d.oneTime.delete(keyId);
        bundle.oneTimePrekey = { keyId, key };
      }
      out.push(bundle);
    }
    return out;
  }

  async count(user: string, device: string): Promise<number> {
    return this.byUser.get(user)?.get(device)?.oneTime.size ?? 0;
  }

  async devicesWithKeys(user: string): Promise<Set<string>> {
    const out = new Set<string>();
    for (const [device, d] of this.byUser.get(user) ?? []) if (d.identityKey !== undefined) out.add(device);
    return out;
  }

  async remove(user: string, device: string): Promise<void> {
    const devices = this.byUser.get(user);
    devices?.delete(device);
    if (devices?.size === 0) this.byUser.delete(user);
  }

  private device(user: string, device: string): DeviceKeys {
    let devices = this.byUser.get(user);
    if (!devices) {
      devices = new Map();
      this.byUser.set(user, devices);
    }
    let d = devices.get(device);
    if (!d) {
      d = { oneTime: new Map() };
      devices.set(device, d);
    }
    return d;
  }
}
