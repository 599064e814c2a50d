import type { DevicesResult } from '@parley/protocol';
import { directMembers } from '@parley/protocol';
import type { KeyDirectory } from '../ports/key-directory.js';
import type { PresencePort } from '../ports/presence.js';
import type { PushRegistration } from '../ports/push-provider.js';
import { MUTED_FOREVER, type UserStore } from '../ports/user-store.js';
import type { DeviceRegistry } from './devices.js';
import { ParleyError } from './errors.js';
import type { WorkBudget } from './work-budget.js';

/** What the account operations need. */
export interface AccountDeps {
  devices: DeviceRegistry;
  keys: Pick<KeyDirectory, 'devicesWithKeys'>;
  users: Pick<UserStore, 'setMute' | 'mutes'>;
  presence: Pick<PresencePort, 'connections'>;
  /** Whether `user` is a current member of group `conv` (direct conversations are decided by their id). */
  isGroupMember: (conv: string, user: string) => Promise<boolean>;
  budget: WorkBudget;
  /** The server's VAPID public key, when Web Push is configured. */
  vapidPublicKey?: string;
}

/**
 * A user's account beside their conversations: their devices (list, revoke), each device's push
 * registration, and muted conversations. Each request costs one unit of the `account` budget.
 */
export class Account {
  constructor(private readonly d: AccountDeps) {}

  /** Refuses a token issued for a device before its revocation (HTTP requests). */
  checkToken(user: string, device: string, issuedAt: number): Promise<void> {
    return this.d.devices.check(user, device, issuedAt);
  }

  async devices(user: string): Promise<DevicesResult> {
    await this.d.budget.take('account', user, 1);
    const live = (await this.d.presence.connections([user])).get(user);
    const [devices, withKeys] = await Promise.all([
      this.d.devices.list(user, new Set(live?.keys() ?? [])),
      this.d.keys.devicesWithKeys(user),
    ]);
    return { devices: devices.map((d) => ({ ...d, keys: withKeys.has(d.device) })) };
  }

  async revokeDevice(user: string, device: string): Promise<void> {
    await this.d.budget.take('account', user, 1);
    await this.d.devices.revoke(user, device);
  }

  async pushRegister(user: string, device: string, registration: PushRegistration): Promise<void> {
    await this.d.budget.take('account', user, 1);
    await this.d.devices.registerPush(user, device, registration);
  }

  async pushUnregister(user: string, device: string): Promise<void> {
    await this.d.budget.take('account', user, 1);
    await this.d.devices.unregisterPush(user, device);
  }

  /** Mutes a conversation the user is in, until `until` (ms) or for good. */
  async mute(user: string, conv: string, until?: number): Promise<void> {
    await this.d.budget.take('account', user, 1);
    await this.requireMember(user, conv);
    await this.d.users.setMute(user, conv, until ?? MUTED_FOREVER);
  }

  async unmute(user: string, conv: string): Promise<void> {
    await this.d.budget.take('account', user, 1);
    await this.d.users.setMute(user, conv, null);
  }

  /** The VAPID public key clients subscribe with (undefined: Web Push is not configured). */
  async vapidPublicKey(): Promise<string | undefined> {
    return this.d.vapidPublicKey;
  }

  private async requireMember(user: string, conv: string): Promise<void> {
    const direct = directMembers(conv);
    const member = direct ? direct.includes(user) : await this.d.isGroupMember(conv, user);
    if (!member) throw new ParleyError('forbidden', 'not a member of this conversation');
  }
}
