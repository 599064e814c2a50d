/**
 * Presence bookkeeping. Server-side presence subscriptions end with their connection, so the
 * client keeps the set of subscribed users itself and renews it on every connection; it also
 * keeps the last known presence of each so that only changes are emitted.
 *
 * @module
 */

import type { PresenceInfo, PresenceSubResult } from '@parley/protocol';
import { ParleyError } from './errors.js';
import { asError, type Emit } from './events.js';
import { type Frame, isObject } from './util.js';

/** Most users in one `presence_sub` (the per-connection subscription limit). */
const MAX_PRESENCE_USERS = 1000;

/**
 * The users this client subscribed to and their last known presence. Emits `presence` whenever
 * the known presence of a subscribed user changes, whichever way it was learned.
 */
export class PresenceTracker {
  /** Users whose presence this client subscribed to (renewed on every connection). */
  readonly #subs = new Set<string>();
  /** Last known presence of subscribed users. */
  readonly #known = new Map<string, PresenceInfo>();
  readonly #emit: Emit;

  constructor(emit: Emit) {
    this.#emit = emit;
  }

  /** The subscribed users, in subscription order. */
  get users(): string[] {
    return [...this.#subs];
  }

  /** The last known presence of a subscribed user (a copy), or undefined. */
  get(user: string): PresenceInfo | undefined {
    const p = this.#known.get(user);
    return p === undefined ? undefined : { ...p };
  }

  /**
   * Adds `users` to the set, then runs `request` (the `presence_sub` request) and records the
   * statuses it returns. If the server refuses, the users this call added are dropped again; if
   * the connection was lost or timed out they stay, for the renewal on the next connection.
   */
  async subscribe(users: string[], request: () => Promise<PresenceSubResult>): Promise<PresenceSubResult> {
    const added = users.filter((u) => !this.#subs.has(u));
    for (const u of added) this.#subs.add(u);
    let result: PresenceSubResult;
    try {
      result = await request();
    } catch (e) {
      const err = ParleyError.from(e);
      if (err.code !== 'disconnected' && err.code !== 'timeout') {
        for (const u of added) this.#subs.delete(u);
      }
      throw err;
    }
    const presence = Array.isArray(result.presence) ? result.presence : [];
    for (const p of presence) this.note(p);
    return { presence };
  }

  /** Drops users from the set and forgets their presence (before the `presence_unsub` request). */
  unsubscribe(users: string[]): void {
    for (const u of users) {
      this.#subs.delete(u);
      this.#known.delete(u);
    }
  }

  /**
   * Subscribes the whole set again on a new connection, in requests of at most 1000 users.
   * `call` writes one request on that connection; `isCurrent` tells whether it still is the
   * client's connection when the reply comes (answers for an old one are ignored).
   */
  renew(call: (frame: Frame) => Promise<Frame>, isCurrent: () => boolean): void {
    if (this.#subs.size === 0) return;
    const users = [...this.#subs];
    for (let i = 0; i < users.length; i += MAX_PRESENCE_USERS) {
      call({ type: 'presence_sub', users: users.slice(i, i + MAX_PRESENCE_USERS) }).then(
        (reply) => {
          if (!isCurrent() || !Array.isArray(reply.presence)) return;
          for (const p of reply.presence) this.note(p);
        },
        (err) => {
          if (isCurrent()) this.#emit('error', asError(err));
        },
      );
    }
  }

  /** Records a subscribed user's presence (from an event or a `presence_sub` reply); emits `presence` when it changed. */
  note(p: unknown): void {
    if (!isObject(p) || typeof p.user !== 'string' || (p.status !== 'online' && p.status !== 'offline'))
      return;
    if (!this.#subs.has(p.user)) return; // unsubscribed meanwhile
    const info: PresenceInfo = { user: p.user, status: p.status };
    if (typeof p.last_seen === 'number') info.last_seen = p.last_seen;
    const prev = this.#known.get(info.user);
    if (prev && prev.status === info.status && prev.last_seen === info.last_seen) return;
    this.#known.set(info.user, info);
    this.#emit('presence', { type: 'presence', ...info });
  }
}
