/**
 * Resume by inbox cursor (as socket.io's `restoreSession` resumes by offset): the cursor is
 * loaded from the application's {@link CursorStore} before the first connection, reconciled with
 * the server's `inbox_head` on every connect, moved by every inbox event handled, and saved. A
 * `sync` loop pages from the cursor until the server has nothing more and no gap is left; live
 * events and sync pages go through one {@link InboxSequencer}, so each inbox number is delivered
 * once and in order whichever copy comes first. Socket-free: it talks to the connection through
 * a {@link SyncLink}.
 *
 * @module
 */

import { backoffDelay } from './backoff.js';
import type { CursorStore } from './cursor.js';
import { ParleyError } from './errors.js';
import { type AnyInboxEvent, asError, type Emit } from './events.js';
import { InboxSequencer } from './inbox.js';
import { type Frame, isObject } from './util.js';

/** The connection as the sync loop uses it. */
export interface SyncLink {
  /** A request on this connection (rejects when it is lost). */
  call(frame: Frame): Promise<Frame>;
  /** Waits `ms`; never resolves once the connection is gone (its work is abandoned). */
  sleep(ms: number): Promise<void>;
  /** The `connect` result of this connection (`inbox_head` is where `gone` skips to). */
  readonly result: { inbox_head: number } | undefined;
}

/** What an {@link InboxResume} needs. */
export interface ResumeOptions {
  /** Where the cursor is persisted. */
  store: CursorStore;
  /** `limit` of each `sync` page. */
  pageSize: number;
  /** Backoff of retried pages: first window, largest window, jitter source. */
  minDelayMs: number;
  maxDelayMs: number;
  random: () => number;
  /** Emits `resync_required`, `synced` and `error`. */
  emit: Emit;
  /** Called once per inbox number, in order. */
  deliver(event: AnyInboxEvent): void;
  /** While false nothing is delivered and events are held (the client was closed mid-page). */
  open(): boolean;
  /** The client's connection now; work for any other one stops. */
  current(): SyncLink | null;
  /** The catch-up sync after a connect finished (`syncing` becomes `connected`). */
  caughtUp(): void;
}

/** The inbox cursor and the sync loop; see the module comment. */
export class InboxResume {
  readonly #o: ResumeOptions;
  readonly #seq: InboxSequencer<AnyInboxEvent>;
  #cursorLoaded = false;
  #savedCursor = -1;
  #saving: Promise<void> | null = null;
  #saveAgain = false;
  /** The connection a sync loop runs on (at most one loop per connection). */
  #syncingOn: SyncLink | null = null;

  constructor(options: ResumeOptions) {
    this.#o = options;
    this.#seq = new InboxSequencer<AnyInboxEvent>(0, options.deliver, { open: options.open });
  }

  /** The highest inbox number delivered with no gap below it. */
  get cursor(): number {
    return this.#seq.cursor;
  }

  /** Whether an inbox number known to exist has not been delivered yet. */
  get hasGap(): boolean {
    return this.#seq.hasGap;
  }

  /**
   * Loads the cursor from the store unless it was loaded before (then null): once per client,
   * before its first connection. Rejects with the store's error; `stale` true when it resolves
   * means the attempt was overtaken and the value is ignored.
   */
  prepare(stale: () => boolean): Promise<void> | null {
    return this.#cursorLoaded ? null : this.#load(stale);
  }

  /**
   * A connection reported the server's `inbox_head`. A cursor beyond it (server data reset, or a
   * cursor store of another account) is moved back with `resync_required`. Returns whether a
   * sync must run (something was missed).
   */
  onConnect(link: SyncLink, head: number): boolean {
    const seq = this.#seq;
    if (seq.cursor > head) {
      const from = seq.cursor;
      seq.reset(head);
      this.#save();
      this.#o.emit('resync_required', { reason: 'cursor_ahead', from, to: head });
      if (this.#o.current() !== link) return false;
    }
    seq.noteHead(head);
    return seq.hasGap;
  }

  /** A live inbox event: delivered if next, held otherwise; a gap starts a sync. */
  offer(link: SyncLink, event: AnyInboxEvent): void {
    this.#seq.offer(event);
    this.#save();
    if (this.#o.current() === link && this.#seq.hasGap) this.startSync(link);
  }

  /** Starts the sync loop on `link` unless one runs there already. */
  startSync(link: SyncLink): void {
    if (this.#syncingOn === link) return;
    this.#syncingOn = link;
    void this.#syncLoop(link);
  }

  /** Resolves once no cursor save is running (`close()` waits for it). */
  async saved(): Promise<void> {
    while (this.#saving) await this.#saving;
  }

  async #load(stale: () => boolean): Promise<void> {
    const loaded: unknown = await this.#o.store.load();
    if (stale()) return;
    const cursor = typeof loaded === 'number' && Number.isSafeInteger(loaded) && loaded >= 0 ? loaded : 0;
    if (cursor !== loaded) {
      this.#o.emit('error', new ParleyError('internal', `cursor store returned ${String(loaded)}`));
    }
    this.#seq.reset(cursor);
    this.#savedCursor = cursor;
    this.#cursorLoaded = true;
  }

  #backoff(attempt: number): number {
    return backoffDelay(attempt, this.#o.minDelayMs, this.#o.maxDelayMs, this.#o.random);
  }

  /**
   * Pages through `sync` from the cursor until the server has nothing more and no gap is left.
   * Live events keep arriving meanwhile and go through the same sequencer, so whichever copy
   * of an inbox number comes first is emitted and the other is dropped.
   */
  async #syncLoop(link: SyncLink): Promise<void> {
    const o = this.#o;
    const seq = this.#seq;
    let idle = 0;
    try {
      while (o.current() === link) {
        const before = seq.cursor;
        let reply: Frame;
        try {
          reply = await link.call({ type: 'sync', after: seq.cursor, limit: o.pageSize });
        } catch (e) {
          if (o.current() !== link) return;
          const err = ParleyError.from(e);
          if (err.code === 'gone') {
            this.#onGone(link);
            if (o.current() !== link) return;
            if (!seq.hasGap) break;
            continue;
          }
          o.emit('error', asError(err));
          await link.sleep(err.retryAfterMs ?? this.#backoff(idle++));
          continue;
        }
        if (o.current() !== link) return;
        const events = Array.isArray(reply.events) ? reply.events : [];
        for (const event of events) if (isObject(event)) seq.offer(event as AnyInboxEvent);
        if (typeof reply.inbox_head === 'number') seq.noteHead(reply.inbox_head);
        this.#save();
        if (o.current() !== link) return;
        const progressed = seq.cursor > before;
        if (progressed) idle = 0;
        if (reply.more === true && progressed) continue;
        if (!seq.hasGap) break;
        // The server says there is nothing more, yet an inbox number it announced is missing (its
        // read path lags its live path), or it says more but sent nothing new: wait, then retry.
        if (!progressed) await link.sleep(this.#backoff(idle++));
      }
    } finally {
      if (this.#syncingOn === link) this.#syncingOn = null;
    }
    if (o.current() !== link) return;
    o.caughtUp();
    if (o.current() === link) o.emit('synced', { inbox: seq.cursor });
  }

  /** `sync` answered `gone`: skip to the server's head (from `connect`) and tell the application to resync. */
  #onGone(link: SyncLink): void {
    const seq = this.#seq;
    const from = seq.cursor;
    const head = link.result?.inbox_head ?? 0;
    const to = from < head ? head : seq.known;
    seq.jumpTo(to);
    this.#save();
    this.#o.emit('resync_required', { reason: 'gone', from, to: seq.cursor });
  }

  /** Saves the cursor if it moved; one save at a time, the latest value wins. */
  #save(): void {
    if (this.#saving) {
      this.#saveAgain = true;
      return;
    }
    const value = this.#seq.cursor;
    if (value === this.#savedCursor || !this.#cursorLoaded) return;
    let result: Promise<void> | void;
    try {
      result = this.#o.store.save(value);
    } catch (err) {
      this.#o.emit('error', asError(err));
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      this.#saving = (result as Promise<void>)
        .then(
          () => {
            this.#savedCursor = value;
          },
          (err: unknown) => this.#o.emit('error', asError(err)),
        )
        .finally(() => {
          this.#saving = null;
          if (this.#saveAgain) {
            this.#saveAgain = false;
            this.#save();
          }
        });
    } else {
      this.#savedCursor = value;
    }
  }
}
