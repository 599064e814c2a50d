import type {
  DeviceKeyBundle,
  KeysClaimResult,
  KeysCountResult,
  KeysUploadFrame,
  ToDeviceEvent,
} from '@parley/protocol';
import type { Clock } from '../ports/clock.js';
import type { DeviceQueue } from '../ports/device-queue.js';
import type { DeviceStore } from '../ports/device-store.js';
import type { ClaimedBundle, KeyDirectory, KeyUpload } from '../ports/key-directory.js';
import type { PresencePort } from '../ports/presence.js';
import { ParleyError } from './errors.js';
import type { UserDirectory } from './users.js';
import type { WorkBudget } from './work-budget.js';

/** What the key directory and device messages need. */
export interface KeyServiceDeps {
  keys: KeyDirectory;
  queue: DeviceQueue;
  devices: Pick<DeviceStore, 'list'>;
  /** Live devices: a device's first sighting may still be being written to the store. */
  presence: Pick<PresencePort, 'connections'>;
  users: Pick<UserDirectory, 'isBlocked'>;
  budget: WorkBudget;
  clock: Clock;
  /** Messages that may wait for one device. */
  maxQueue: number;
  /** Tells the device's live connection, wherever it is, that messages wait for it. */
  notify(user: string, device: string): void;
  /** Largest batch of queued messages handed to a connection at once, in bytes. */
  maxBatchBytes: number;
}

/** A batch of a device's queued messages. */
export interface PendingToDevice {
  events: ToDeviceEvent[];
  more: boolean;
}

/** Queued messages handed to a connection per read. */
const BATCH = 100;

/**
 * The end-to-end encryption plumbing the server provides, without ever seeing a private key or a
 * plaintext: the key directory (`keys_upload`, `keys_claim`, `keys_count`) and the per-device
 * queues of opaque `to_device` messages (key exchange, sender keys).
 */
export class KeyService {
  constructor(private readonly d: KeyServiceDeps) {}

  /** Publishes the device's keys; resolves with its one-time prekeys now stored. */
  async uploadKeys(
    user: string,
    device: string,
    frame: Omit<KeysUploadFrame, 'type' | 'id'>,
  ): Promise<KeysCountResult> {
    await this.d.budget.take('keys', user, 1);
    return { one_time_prekeys: await this.d.keys.upload(user, device, keyUpload(frame)) };
  }

  /**
   * Hands out a bundle for each device of `target` that published keys. Costs the claimer one
   * unit of `keysClaim` per device, and the target one of `keysClaimed`: past either budget the
   * claim is refused, so nobody can drain another user's one-time prekeys.
   */
  async claimKeys(user: string, target: string): Promise<KeysClaimResult> {
    const devices = (await this.d.keys.devicesWithKeys(target)).size;
    if (devices === 0) return { devices: [] };
    await this.d.budget.take('keysClaim', user, devices);
    if (user !== target) await this.d.budget.take('keysClaimed', target, devices);
    return { devices: (await this.d.keys.claim(target)).map(bundleOf) };
  }

  async countKeys(user: string, device: string): Promise<KeysCountResult> {
    await this.d.budget.take('keys', user, 1);
    return { one_time_prekeys: await this.d.keys.count(user, device) };
  }

  /**
   * Queues an opaque message for one device of `target` and tells its connection. `not_found` for
   * a device the user never signed in with (or revoked), `forbidden` when the target blocked the
   * sender, `too_large` when the device's queue is full (nothing is dropped to make room).
   */
  async sendToDevice(
    from: string,
    fromDevice: string,
    target: string,
    device: string,
    body: string,
  ): Promise<void> {
    await this.d.budget.take('toDevice', from, 1);
    if (!(await this.knows(target, device))) throw new ParleyError('not_found', 'no such device');
    if (from !== target && (await this.d.users.isBlocked(target, from)))
      throw new ParleyError('forbidden', 'this user does not accept messages from you');
    const message = { from, fromDevice, body, ts: this.d.clock.now() };
    const qid = await this.d.queue.enqueue(target, device, message, this.d.maxQueue);
    if (qid === null)
      throw new ParleyError('too_large', `${this.d.maxQueue} messages already wait for this device`);
    this.d.notify(target, device);
  }

  /** Whether the user has signed in with the device (and not revoked it since). */
  private async knows(user: string, device: string): Promise<boolean> {
    const [stored, live] = await Promise.all([
      this.d.devices.list(user),
      this.d.presence.connections([user]),
    ]);
    return stored.some((d) => d.device === device) || live.get(user)?.has(device) === true;
  }

  /** Deletes the device's queued messages up to `upto` (it has them). */
  async ackToDevice(user: string, device: string, upto: number): Promise<void> {
    await this.d.budget.take('keys', user, 1);
    await this.d.queue.ack(user, device, upto);
  }

  /**
   * The device's queued messages after `after`, as events, in qid order: at most a batch, and at
   * most `maxBatchBytes` of bodies (at least one); `more` when others may wait after them.
   */
  async pendingToDevice(user: string, device: string, after: number): Promise<PendingToDevice> {
    const queued = await this.d.queue.list(user, device, after, BATCH);
    const events: ToDeviceEvent[] = [];
    let bytes = 0;
    for (const m of queued) {
      bytes += m.body.length;
      if (events.length > 0 && bytes > this.d.maxBatchBytes) break;
      events.push({ type: 'to_device', qid: m.qid, from: m.from, from_device: m.fromDevice, body: m.body });
    }
    return { events, more: events.length < queued.length || queued.length === BATCH };
  }
}

function keyUpload(f: Omit<KeysUploadFrame, 'type' | 'id'>): KeyUpload {
  const keys: KeyUpload = {};
  if (f.identity_key !== undefined) keys.identityKey = f.identity_key;
  if (f.signed_prekey !== undefined)
    keys.signedPrekey = {
      keyId: f.signed_prekey.key_id,
      key: f.signed_prekey.key,
      signature: f.signed_prekey.signature,
    };
  if (f.one_time_prekeys !== undefined)
    keys.oneTimePrekeys = f.one_time_prekeys.map((k) => ({ keyId: k.key_id, key: k.key }));
  return keys;
}

function bundleOf(b: ClaimedBundle): DeviceKeyBundle {
  const bundle: DeviceKeyBundle = {
    device: b.device,
    identity_key: b.identityKey,
    signed_prekey: {
      key_id: b.signedPrekey.keyId,
      key: b.signedPrekey.key,
      signature: b.signedPrekey.signature,
    },
  };
  if (b.oneTimePrekey) bundle.one_time_prekey = { key_id: b.oneTimePrekey.keyId, key: b.oneTimePrekey.key };
  return bundle;
}
