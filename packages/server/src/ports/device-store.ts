/**
 * The `DeviceStore` port: the devices a user has signed in with, their push registrations, and
 * revocations. A device appears when it first connects and is kept (with its last seen time) until
 * it is revoked; a revocation is remembered for as long as a token may live, so tokens issued for
 * the device before it stop working.
 * @module
 */
import type { PushRegistration } from './push-provider.js';

/** One device of a user, as `devices` lists it. */
export interface DeviceRecord {
  device: string;
  /** When it last connected or disconnected (ms since the epoch). */
  lastSeen: number;
  /** Its push registration, when it has one. */
  push?: PushRegistration;
}

/**
 * How long a store keeps a device revocation: it must outlive every token issued before it (24 h
 * by default, `maxTokenLifetimeMs`). Older revocations may be deleted.
 */
export const REVOCATION_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** Devices a store keeps per user: past it, the least recently seen device is forgotten. */
export const MAX_DEVICES_PER_USER = 64;

export interface DeviceStore {
  /**
   * Records that the device was seen at `ts` (it connected or disconnected), creating it when new;
   * past `MAX_DEVICES_PER_USER` the least recently seen other device is dropped. A revocation
   * stays recorded (`revokedAt`): it refuses the tokens issued before it, not the device id.
   */
  seen(user: string, device: string, ts: number): Promise<void>;
  /** The user's devices, most recently seen first. */
  list(user: string): Promise<DeviceRecord[]>;
  /** Sets (or with null removes) the device's push registration; resolves once durable. */
  setPush(user: string, device: string, registration: PushRegistration | null): Promise<void>;
  /**
   * Removes the device's push registration only if it is still `registration`: what a provider
   * reported dead, so a registration made meanwhile survives.
   */
  dropPush(user: string, device: string, registration: PushRegistration): Promise<void>;
  /** The push registrations of each of `users`' devices (users without any are absent). */
  pushRegistrations(users: readonly string[]): Promise<Map<string, Map<string, PushRegistration>>>;
  /**
   * Forgets the device and its push registration, and records that tokens issued for it before
   * `ts` are revoked. Reports whether the device was known.
   */
  revoke(user: string, device: string, ts: number): Promise<boolean>;
  /** When the device was last revoked, if it was (and the revocation is still kept). */
  revokedAt(user: string, device: string): Promise<number | undefined>;
}
