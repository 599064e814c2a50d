import { encodeEvent } from '@parley/protocol';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { PresenceChange, PresencePort } from '../ports/presence.js';
import type { PresenceView } from '../ports/sessions.js';
import type { UserStore } from '../ports/user-store.js';
import { ParleyError } from './errors.js';
import type { UserDirectory } from './users.js';
import type { UserEvents } from './webhook-publisher.js';
import type { WorkBudget } from './work-budget.js';

/** A user's presence as the operator sees it. */
export interface OperatorPresence {
  user: string;
  online: boolean;
  lastSeen?: number;
}

/** A connection that watches other users' presence. */
export interface PresenceSubscriber {
  /** The watching user. */
  readonly user: string | null;
  /** Sends an encoded event to this connection. */
  send(frame: string): boolean;
}

/**
 * Presence rules: a user is online while at least one device is connected; `last_seen` is when the
 * last one went away. Subscriptions are per connection (at most `maxSubscriptions`); change events
 * go only to subscribers. A user who chose `last_seen: "nobody"` shows only online/offline; a user
 * who blocked the watcher always shows offline without a time, and sends the watcher no events.
 * Nothing here is stored in any inbox.
 */
export class PresenceService {
  private readonly watchers = new Map<string, Set<PresenceSubscriber>>();
  private readonly watching = new WeakMap<PresenceSubscriber, Set<string>>();
  private readonly lastSeen = new Map<string, number>();
  /** Changes are announced one at a time, so every watcher sees them in the order they happened. */
  private announcing: Promise<void> = Promise.resolve();
  /** `last_seen` writes not yet finished (stop waits for them before the store closes). */
  private readonly saving = new Set<Promise<void>>();

  constructor(
    private readonly port: PresencePort,
    private readonly users: UserDirectory,
    private readonly store: UserStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly maxSubscriptions = 1000,
    /** Charges new subscriptions to the watcher's presence budget (none: unlimited). */
    private readonly budget?: WorkBudget,
    /** Hears the transitions this process caused (webhooks); each happens on one process only. */
    private readonly events?: UserEvents,
  ) {
    port.onChange((c) => {
      this.announcing = this.announcing
        .then(() => this.onChange(c))
        .catch((err) => this.log.warn({ err: String(err) }, 'presence fan-out failed'));
    });
  }

  /** A device's connection became live. */
  async connected(user: string, device: string, connection: string): Promise<void> {
    const ts = this.clock.now();
    if (await this.port.connected(user, device, connection, ts))
      this.events?.presenceChanged(user, 'online', ts);
  }

  /** A device's connection ended. */
  async disconnected(user: string, device: string, connection: string): Promise<void> {
    const ts = this.clock.now();
    if (await this.port.disconnected(user, device, connection, ts))
      this.events?.presenceChanged(user, 'offline', ts);
  }

  /**
   * Resolves once every change reported so far is announced and its `last_seen` saved: a stopping
   * server waits for this before closing the store, or the last users to leave lose their time.
   */
  async settled(): Promise<void> {
    await this.announcing;
    await Promise.all(this.saving);
  }

  /** Subscribes a connection to `users`; answers their current presence as the watcher may see it. */
  async subscribe(sub: PresenceSubscriber, users: readonly string[]): Promise<PresenceView[]> {
    let mine = this.watching.get(sub);
    if (!mine) {
      mine = new Set();
      this.watching.set(sub, mine);
    }
    const fresh = users.filter((u) => !mine.has(u)).length;
    if (fresh > 0 && this.budget && sub.user) await this.budget.take('presence', sub.user, fresh);
    const added = users.filter((u) => !mine.has(u));
    if (mine.size + added.length > this.maxSubscriptions) {
      throw new ParleyError(
        'too_large',
        `at most ${this.maxSubscriptions} presence subscriptions per connection`,
      );
    }
    for (const u of added) {
      mine.add(u);
      let w = this.watchers.get(u);
      if (!w) {
        w = new Set();
        this.watchers.set(u, w);
      }
      w.add(sub);
    }
    const online = await this.port.online(users);
    const offline = users.filter((u) => !online.has(u));
    const seen = await this.lastSeenOf(offline);
    return Promise.all(users.map((u) => this.view(sub.user ?? '', u, online.has(u), seen.get(u))));
  }

  /**
   * The presence of `users` as the operator sees it (the server API): online, or offline with
   * the last time seen whatever the user's `last_seen` setting, and without subscribing.
   */
  async current(users: readonly string[]): Promise<OperatorPresence[]> {
    const online = await this.port.online(users);
    const seen = await this.lastSeenOf(users.filter((u) => !online.has(u)));
    return users.map((user) => {
      if (online.has(user)) return { user, online: true };
      const lastSeen = seen.get(user);
      return lastSeen === undefined ? { user, online: false } : { user, online: false, lastSeen };
    });
  }

  /** Ends some of a connection's subscriptions. */
  unsubscribe(sub: PresenceSubscriber, users: readonly string[]): void {
    const mine = this.watching.get(sub);
    if (!mine) return;
    for (const u of users) {
      if (!mine.delete(u)) continue;
      const w = this.watchers.get(u);
      w?.delete(sub);
      if (w?.size === 0) this.watchers.delete(u);
    }
  }

  /** Ends all of a closed connection's subscriptions. */
  drop(sub: PresenceSubscriber): void {
    const mine = this.watching.get(sub);
    if (mine) this.unsubscribe(sub, [...mine]);
  }

  private async onChange(c: PresenceChange): Promise<void> {
    if (c.status === 'offline') {
      this.rememberLastSeen(c.user, c.ts);
      const saved = this.store
        .saveLastSeen(c.user, c.ts)
        .catch((err) => this.log.warn({ err: String(err) }, 'saving last seen failed'));
      this.saving.add(saved);
      void saved.finally(() => this.saving.delete(saved));
    }
    const subs = this.watchers.get(c.user);
    if (!subs || subs.size === 0) return;
    for (const sub of [...subs]) {
      if (!sub.user || (await this.users.isBlocked(c.user, sub.user))) continue;
      const v = await this.view(sub.user, c.user, c.status === 'online', c.ts);
      sub.send(encodeEvent({ type: 'presence', ...v }));
    }
  }

  private async view(
    watcher: string,
    user: string,
    online: boolean,
    lastSeen: number | undefined,
  ): Promise<PresenceView> {
    if (await this.users.isBlocked(user, watcher)) return { user, status: 'offline' };
    if (online) return { user, status: 'online' };
    const v: PresenceView = { user, status: 'offline' };
    if (lastSeen !== undefined && (await this.users.settings(user)).lastSeen === 'everyone')
      v.last_seen = lastSeen;
    return v;
  }

  private async lastSeenOf(users: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const missing: string[] = [];
    for (const u of users) {
      const ts = this.lastSeen.get(u);
      if (ts === undefined) missing.push(u);
      else out.set(u, ts);
    }
    if (missing.length > 0) {
      for (const [u, ts] of await this.store.lastSeen(missing)) {
        out.set(u, ts);
        this.rememberLastSeen(u, ts);
      }
    }
    return out;
  }

  private rememberLastSeen(user: string, ts: number): void {
    if (this.lastSeen.size >= 100_000) this.lastSeen.clear();
    this.lastSeen.set(user, ts);
  }
}
