import { type Clock, systemClock } from '../ports/clock.js';
import type { UserSettings, UserStore } from '../ports/user-store.js';
import { badRequest } from './errors.js';
import type { SendPolicy } from './sequencer.js';

/** Entries kept per cache before the oldest are dropped (they reload from the store). */
const MAX_CACHED_USERS = 100_000;

/** How the directory's caches behave when other processes also change users. */
export interface UserDirectoryOptions {
  /** How long a cached entry is trusted (ms); unbounded by default (this process makes every change). */
  ttlMs?: number;
  /** Called after a change is durable, to tell the other processes (they call `invalidate`). */
  changed?: (user: string) => void;
  /** What entries' ages are measured with (default: the system clock). */
  clock?: Clock;
}

/** A bounded cache whose entries expire, and whose loads started before an invalidation are not kept. */
class ExpiringCache<V> {
  private readonly entries = new Map<string, { value: V; at: number }>();
  private generation = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && this.clock.now() - hit.at < this.ttlMs) return hit.value;
    const generation = this.generation;
    const value = await load();
    // Invalidated while loading: the value may predate the change; use it once, do not keep it.
    if (generation === this.generation) this.set(key, value);
    return value;
  }

  set(key: string, value: V): void {
    if (this.entries.size >= MAX_CACHED_USERS && !this.entries.has(key)) {
      let drop = Math.floor(MAX_CACHED_USERS / 10);
      for (const k of this.entries.keys()) {
        if (drop-- === 0) break;
        this.entries.delete(k);
      }
    }
    this.entries.set(key, { value, at: this.clock.now() });
  }

  delete(key: string): void {
    this.generation++;
    this.entries.delete(key);
  }
}

/**
 * Per-user settings and blocks, read through bounded caches (they are read on every receipt,
 * typing event and direct send, and change rarely). Writes go to the store first, then the cache,
 * so a change is durable before it takes effect. In cluster mode other processes change users
 * too: `changed` tells them (they drop the entry), and entries expire after `ttlMs` in case such a
 * notice is lost.
 */
export class UserDirectory implements SendPolicy {
  private readonly settingsCache: ExpiringCache<UserSettings>;
  private readonly blockCache: ExpiringCache<Set<string>>;
  private readonly changed: (user: string) => void;

  constructor(
    private readonly store: UserStore,
    options: UserDirectoryOptions = {},
  ) {
    const ttl = options.ttlMs ?? Number.POSITIVE_INFINITY;
    const clock = options.clock ?? systemClock;
    this.settingsCache = new ExpiringCache(ttl, clock);
    this.blockCache = new ExpiringCache(ttl, clock);
    this.changed = options.changed ?? (() => {});
  }

  async settings(user: string): Promise<UserSettings> {
    return this.settingsCache.get(user, () => this.store.settings(user));
  }

  /** Applies the given fields; returns the resulting settings. */
  async updateSettings(user: string, patch: Partial<UserSettings>): Promise<UserSettings> {
    const next = { ...(await this.settings(user)), ...patch };
    await this.store.saveSettings(user, next);
    this.settingsCache.set(user, next);
    this.changed(user);
    return next;
  }

  /** True when `blocker` has blocked `other`. */
  async isBlocked(blocker: string, other: string): Promise<boolean> {
    return (await this.blocks(blocker)).has(other);
  }

  async block(user: string, other: string): Promise<void> {
    if (user === other) throw badRequest('you cannot block yourself');
    await this.store.setBlocked(user, other, true);
    this.blockCache.delete(user);
    this.changed(user);
  }

  async unblock(user: string, other: string): Promise<void> {
    await this.store.setBlocked(user, other, false);
    this.blockCache.delete(user);
    this.changed(user);
  }

  /** Drops what is cached of `user` (another process changed it). */
  invalidate(user: string): void {
    this.settingsCache.delete(user);
    this.blockCache.delete(user);
  }

  private async blocks(user: string): Promise<Set<string>> {
    return this.blockCache.get(user, async () => new Set(await this.store.blocked(user)));
  }
}
