import type { DeviceInfo } from '@parley/protocol';
import type { Clock } from '../ports/clock.js';
import type { DeviceRecord, DeviceStore } from '../ports/device-store.js';
import type { PushRegistration } from '../ports/push-provider.js';
import { ParleyError } from './errors.js';
import type { UserEvents } from './webhook-publisher.js';

/**
 * What else goes with a revoked device: its live connection (closed wherever it is), its
 * end-to-end encryption keys and its `to_device` queue.
 */
export type ForgetDevice = (user: string, device: string) => Promise<void>;

/** Users whose push devices one process remembers, and for how long (registrations change rarely). */
const CACHE_USERS = 100_000;
const CACHE_TTL_MS = 30_000;

/**
 * A user's devices: the list, revocation (the device's connection closes, tokens issued for it
 * before stop working, its push registration goes), and push registration. Tokens without `iat`
 * count as issued at the epoch: a revocation refuses them until it expires.
 */
export class DeviceRegistry {
  /** Last-seen writes in progress. */
  private readonly writes = new Set<Promise<void>>();
  /** user → (when cached, device ids with a push registration). */
  private readonly pushCache = new Map<string, { at: number; devices: readonly string[] }>();

  constructor(
    private readonly store: DeviceStore,
    private readonly clock: Clock,
    private readonly forgetDevice: ForgetDevice,
    private readonly options: {
      /** A last-seen write failed (logged; the next connect or disconnect writes it again). */
      onWriteError?: (err: unknown) => void;
      /** Hears registrations and revocations (webhooks). */
      events?: UserEvents | undefined;
      /** Users that act only through the server API (bots): no device of theirs signs in. */
      serviceAccounts?: ReadonlySet<string>;
    } = {},
  ) {}

  /**
   * Refuses a token for a revoked device (`unauthorized`); records the device as seen otherwise,
   * without waiting for that write (last seen is soft state: a connect never waits for a disk).
   */
  async admit(user: string, device: string, issuedAt: number): Promise<void> {
    await this.check(user, device, issuedAt);
    // A token issued after a revocation signs the device in again (the revocation stays recorded,
    // still refusing the older tokens).
    this.record(this.store.seen(user, device, this.clock.now()));
  }

  /** Refuses a token for a revoked device, without recording anything (HTTP requests). */
  async check(user: string, device: string, issuedAt: number): Promise<void> {
    if (this.options.serviceAccounts?.has(user))
      throw new ParleyError('unauthorized', 'a service account acts only through the server API');
    if (await this.revokedSince(user, device, issuedAt))
      throw new ParleyError('unauthorized', 'this device was revoked: sign in again');
  }

  /**
   * Records that a device's connection (with a token issued at `issuedAt`) ended: its last seen
   * time. Nothing for a device revoked since: the revocation is what ended it.
   */
  async left(user: string, device: string, issuedAt: number): Promise<void> {
    if (await this.revokedSince(user, device, issuedAt)) return;
    this.record(this.store.seen(user, device, this.clock.now()));
  }

  /** Resolves once the last-seen writes started so far are done (shutdown waits for them). */
  async settled(): Promise<void> {
    while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
  }

  private record(write: Promise<void>): void {
    const w = write.catch((err) => this.options.onWriteError?.(err));
    this.writes.add(w);
    void w.finally(() => this.writes.delete(w));
  }

  /** Whether the device was revoked at or after `issuedAt` (tokens carry whole seconds). */
  private async revokedSince(user: string, device: string, issuedAt: number): Promise<boolean> {
    const revoked = await this.store.revokedAt(user, device);
    return revoked !== undefined && issuedAt <= revoked;
  }

  /**
   * The user's devices as `devices` lists them: the stored ones, and live ones whose first
   * sighting is still being written (seen now).
   */
  async list(user: string, live: ReadonlySet<string>): Promise<DeviceInfo[]> {
    const stored = await this.store.list(user);
    const known = new Set(stored.map((d) => d.device));
    const now = this.clock.now();
    const fresh: DeviceRecord[] = [...live]
      .filter((d) => !known.has(d))
      .map((device) => ({ device, lastSeen: now }));
    return [...fresh, ...stored].map((d) => {
      const info: DeviceInfo = {
        device: d.device,
        last_seen: d.lastSeen,
        online: live.has(d.device),
        keys: false,
      };
      if (d.push) info.push = d.push.platform;
      return info;
    });
  }

  /** Revokes one of the user's devices; `not_found` when the user has no such device. */
  async revoke(user: string, device: string): Promise<void> {
    const ts = this.clock.now();
    if (!(await this.store.revoke(user, device, ts))) throw new ParleyError('not_found', 'no such device');
    this.pushCache.delete(user);
    this.options.events?.deviceChanged(user, device, 'revoked', ts);
    await this.forgetDevice(user, device);
  }

  async registerPush(user: string, device: string, registration: PushRegistration): Promise<void> {
    await this.store.setPush(user, device, registration);
    this.pushCache.delete(user);
    this.options.events?.deviceChanged(user, device, 'registered', this.clock.now());
  }

  async unregisterPush(user: string, device: string): Promise<void> {
    await this.store.setPush(user, device, null);
    this.pushCache.delete(user);
  }

  /** Removes a registration a provider reported dead (unless the device registered anew meanwhile). */
  async dropDeadPush(user: string, device: string, registration: PushRegistration): Promise<void> {
    await this.store.dropPush(user, device, registration);
    this.pushCache.delete(user);
  }

  /** Each device's registration now (read from the store: what a push is sent to). */
  registrations(users: readonly string[]): ReturnType<DeviceStore['pushRegistrations']> {
    return this.store.pushRegistrations(users);
  }

  /**
   * The devices of `users` that have a push registration, from a cache that may be up to 30 s
   * behind another process's registrations (this process's own changes show at once): what decides
   * whether a message may need a push at all, on the delivery path.
   */
  async pushDevices(users: readonly string[]): Promise<Map<string, readonly string[]>> {
    const now = this.clock.now();
    const out = new Map<string, readonly string[]>();
    const missing: string[] = [];
    for (const u of users) {
      const hit = this.pushCache.get(u);
      if (hit && now - hit.at < CACHE_TTL_MS) {
        if (hit.devices.length > 0) out.set(u, hit.devices);
      } else missing.push(u);
    }
    if (missing.length === 0) return out;
    const found = await this.store.pushRegistrations(missing);
    for (const u of missing) {
      const devices = [...(found.get(u)?.keys() ?? [])];
      this.remember(u, devices, now);
      if (devices.length > 0) out.set(u, devices);
    }
    return out;
  }

  private remember(user: string, devices: readonly string[], now: number): void {
    this.pushCache.delete(user);
    this.pushCache.set(user, { at: now, devices });
    if (this.pushCache.size > CACHE_USERS) {
      const oldest = this.pushCache.keys().next().value;
      if (oldest !== undefined) this.pushCache.delete(oldest);
    }
  }
}
