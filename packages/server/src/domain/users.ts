import type { UserSettings, UserStore } from '../ports/user-store.js';
import { badRequest } from './errors.js';
import type { SendPolicy } from './sequencer.js';

/** Entries kept per cache before the oldest are dropped (they reload from the store). */
const MAX_CACHED_USERS = 100_000;

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  if (cache.size >= MAX_CACHED_USERS) {
    let drop = Math.floor(MAX_CACHED_USERS / 10);
    for (const k of cache.keys()) {
      if (drop-- === 0) break;
      cache.delete(k);
    }
  }
  cache.set(key, value);
  return value;
}

/**
 * Per-user settings and blocks, read through bounded caches (they are read on every receipt,
 * typing event and direct send, and change rarely). Writes go to the store first, then the cache,
 * so a change is durable before it takes effect.
 */
export class UserDirectory implements SendPolicy {
  private readonly settingsCache = new Map<string, UserSettings>();
  private readonly blockCache = new Map<string, Set<string>>();

  constructor(private readonly store: UserStore) {}

  async settings(user: string): Promise<UserSettings> {
    return (
      this.settingsCache.get(user) ?? remember(this.settingsCache, user, await this.store.settings(user))
    );
  }

  /** Applies the given fields; returns the resulting settings. */
  async updateSettings(user: string, patch: Partial<UserSettings>): Promise<UserSettings> {
    const next = { ...(await this.settings(user)), ...patch };
    await this.store.saveSettings(user, next);
    remember(this.settingsCache, user, next);
    return next;
  }

  /** True when `blocker` has blocked `other`. */
  async isBlocked(blocker: string, other: string): Promise<boolean> {
    return (await this.blocks(blocker)).has(other);
  }

  async block(user: string, other: string): Promise<void> {
    if (user === other) throw badRequest('you cannot block yourself');
    await this.store.setBlocked(user, other, true);
    (await this.blocks(user)).add(other);
  }

  async unblock(user: string, other: string): Promise<void> {
    await this.store.setBlocked(user, other, false);
    (await this.blocks(user)).delete(other);
  }

  private async blocks(user: string): Promise<Set<string>> {
    return (
      this.blockCache.get(user) ?? remember(this.blockCache, user, new Set(await this.store.blocked(user)))
    );
  }
}
