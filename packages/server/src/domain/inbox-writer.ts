import { inboxEventHead, inboxEventTail } from '@parley/protocol';
import type { InboxAppender, MessageDelivery, PendingEntry } from '../ports/inbox-appender.js';
import {
  type FannedMark,
  InboxConflictError,
  type InboxEntry,
  type InboxStore,
  type MessageFanout,
} from '../ports/inbox-store.js';
import type { Logger } from '../ports/logger.js';
import type { StoredMessage } from '../ports/message-store.js';
import type { OutboundFrame, Router } from '../ports/router.js';
import type { MessagesStoredListener, StoredMessageNotice } from './push-scheduler.js';

/** The start of every message event, before its inbox number. */
export const MESSAGE_FRAME_HEAD = inboxEventHead('message');

/** A message event's JSON after `…"inbox":N,`: encoded once, shared by every recipient's frame. */
export function messageFrameTail(m: StoredMessage): Buffer {
  return Buffer.from(inboxEventTail(m));
}

interface Batch {
  /** Increasing per writer: `idle` waits for the batches up to the one open when it was called. */
  id: number;
  entries: InboxEntry[];
  fanouts: MessageFanout[];
  /** Entries in `entries` and `fanouts` together (the size bound). */
  size: number;
  frames: { user: string; frame: OutboundFrame }[];
  fanned: FannedMark[];
  /** The messages in `fanouts`, for the stored listeners. */
  notices: StoredMessageNotice[];
  /** Over ordered writes: the stored listeners were told when the append was issued (what they started). */
  told?: { started: Promise<unknown> | undefined };
}

/** Entries per inbox commit before a new batch starts (a 512-member group message is one call). */
const MAX_ENTRIES_PER_COMMIT = 8192;

interface IdleWaiter {
  target: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Users whose inbox heads one writer keeps in memory by default (a number each, ~100 bytes). */
const DEFAULT_MAX_HEADS = 1_000_000;

/**
 * Retry delays for a failed inbox append (the entries are already numbered, so they must land);
 * the last one repeats for as long as the store keeps failing.
 */
const RETRY_MS: readonly number[] = [50, 200, 1000, 5000];

/** How long a batch may keep failing before the writer reports itself unhealthy. */
const UNHEALTHY_AFTER_MS = 30_000;

/** Options of an `InboxWriter`; every one has a default. */
export interface InboxWriterOptions {
  /** Users whose heads are kept in memory (default 1,000,000). */
  maxHeads?: number;
  /**
   * Delays between attempts of a failing append, in ms; the last repeats until the store takes the
   * batch (default 50, 200, 1,000, then every 5,000).
   */
  retryMs?: readonly number[];
  /**
   * How long a batch may keep failing (from its first failed attempt) before the writer reports
   * itself unhealthy, in ms (default 30,000). It keeps the batch and keeps retrying.
   */
  unhealthyAfterMs?: number;
  /** Called on every change of `healthy` (the readiness check and the metric follow it). */
  onHealth?: (healthy: boolean) => void;
  /**
   * Hear each batch's messages once their entries are stored (push and webhooks). A promise one
   * returns holds the batch's completion (`idle`) until it settles, so a caller that commits its
   * input after `idle` (cluster mode's fan-out stage) commits only once that work is done;
   * delivery to sockets does not wait for it.
   */
  storedListeners?: readonly MessagesStoredListener[];
  /**
   * The store's writes are durable in issue order and fail closed (`OrderedWrites`): the stored
   * listeners are told when a batch's append is issued, so what they queue (push jobs, webhook
   * events) is durable with the entries, usually in their commit, and never without them.
   */
  storeWritesInOrder?: boolean;
}

/**
 * The single writer of every user's inbox in this process: numbers each user's events 1, 2, 3, …
 * in the order they are handed in, stores them (group-committed, one append in flight at a time,
 * so a user's stored inbox never has a hole), and only then hands the frames to the router: a
 * device never sees an inbox number that a crash could take back.
 *
 * Callers must hand in events in their final order, each call after the previous one returned,
 * inside `withHeads` (loading the users' current heads is the only asynchronous step). Heads stay
 * in memory for at most `maxHeads` users: past that, the oldest loaded whose entries are all
 * stored and that no caller holds are dropped (and reloaded from the store when needed again).
 *
 * A failed append is retried with the same numbers (the store treats a repeat as a no-op). A
 * store that keeps failing does not stall delivery silently: once a batch has failed for
 * `unhealthyAfterMs` the writer turns `healthy` false (`/readyz` answers 503, the gauge
 * `parley_inbox_writer_healthy` drops to 0) and keeps retrying at the slowest retry delay, so it
 * resumes, and turns healthy again, as soon as the store takes the batch.
 */
export class InboxWriter implements InboxAppender {
  private readonly heads = new Map<string, number>();
  private readonly loading = new Map<string, Promise<void>>();
  /** Users whose heads a caller holds (inside `withHeads`): never dropped. */
  private readonly pins = new Map<string, number>();
  /** The batch being stored, whose users' heads must stay. */
  private flying: Batch | null = null;
  private nextBatchId = 1;
  private open: Batch = this.emptyBatch();
  /** Batches that reached the size bound, waiting their turn. */
  private readonly full: Batch[] = [];
  private inFlight = false;
  private scheduled = false;
  /** Every batch up to this id is stored (or was dropped). */
  private doneUpTo = 0;
  private idleWaiters: IdleWaiter[] = [];
  /** Entries in the open, full and flying batches. */
  private queuedEntries = 0;
  private readonly maxHeads: number;
  private readonly retryMs: readonly number[];
  private readonly unhealthyAfterMs: number;
  private readonly onHealth: ((healthy: boolean) => void) | undefined;
  private readonly storedListeners: readonly MessagesStoredListener[];
  private readonly storeWritesInOrder: boolean;
  /** The last batch completion waiting for the stored listeners' promises (completions stay in order). */
  private completing: Promise<void> | null = null;
  private isHealthy = true;
  /** Set by `close`: nothing more is taken, and a failing append stops retrying. */
  private closed = false;

  constructor(
    private readonly store: InboxStore,
    private readonly router: Router,
    private readonly log: Logger,
    options: InboxWriterOptions = {},
  ) {
    this.maxHeads = options.maxHeads ?? DEFAULT_MAX_HEADS;
    this.retryMs = options.retryMs && options.retryMs.length > 0 ? options.retryMs : RETRY_MS;
    this.unhealthyAfterMs = options.unhealthyAfterMs ?? UNHEALTHY_AFTER_MS;
    this.onHealth = options.onHealth;
    this.storedListeners = options.storedListeners ?? [];
    this.storeWritesInOrder = options.storeWritesInOrder === true;
  }

  /**
   * False while a batch has kept failing for longer than `unhealthyAfterMs`: the store is down and
   * delivery stalls. The writer keeps the batch (its numbers are taken) and keeps retrying; the
   * first append that lands makes it healthy again.
   */
  get healthy(): boolean {
    return this.isHealthy;
  }

  async withHeads<T>(users: Iterable<string>, fn: () => T): Promise<T> {
    const list = [...new Set(users)];
    for (const u of list) this.pins.set(u, (this.pins.get(u) ?? 0) + 1);
    try {
      if (list.some((u) => !this.heads.has(u))) await this.ensureHeads(list);
      return fn();
    } finally {
      for (const u of list) {
        const n = this.pins.get(u)! - 1;
        if (n === 0) this.pins.delete(u);
        else this.pins.set(u, n);
      }
    }
  }

  /** Entries handed in and not stored yet. */
  get backlog(): number {
    return this.queuedEntries;
  }

  /** How many users' heads are in memory. */
  get headsInMemory(): number {
    return this.heads.size;
  }

  /** Drops the cached heads of the users `which` selects (their inboxes moved to another writer). */
  forget(which: (user: string) => boolean): void {
    for (const user of [...this.heads.keys()]) if (which(user)) this.heads.delete(user);
  }

  /** Loads the current inbox heads of `users` from the store. */
  async ensureHeads(users: Iterable<string>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const u of users) {
      if (this.heads.has(u)) continue;
      let p = this.loading.get(u);
      if (!p) {
        p = this.store.head(u).then((h) => {
          if (!this.heads.has(u)) this.heads.set(u, h);
          this.loading.delete(u);
        });
        this.loading.set(u, p);
      }
      waits.push(p);
    }
    await Promise.all(waits);
  }

  /** Numbers and queues entries (heads must be loaded); `fanned` marks go into the same commit. */
  /**
   * Stops the writer for shutdown, after `idle` resolved: events handed in later are dropped (they
   * are receipts' and presence's, which the store no longer takes), an append still failing stops
   * retrying, and no timer is left behind.
   */
  close(): void {
    this.closed = true;
  }

  append(pending: readonly PendingEntry[], fanned: readonly FannedMark[] = []): void {
    if (this.closed) return;
    // The store writes a commit's `entries` before its `fanouts`: an entry numbered after a
    // fan-out of the open batch for the same user goes in the next batch, or the user's numbers
    // would reach the store out of order (which a store may take for a pruned entry, and drop).
    if (this.numberedByOpenFanouts(pending)) {
      this.full.push(this.open);
      this.open = this.emptyBatch();
    }
    // Start a new batch past the size bound (keeping each call whole, so a message's entries and
    // its fan-out mark always commit together): one commit never grows without limit.
    const b = this.batchWithRoom();
    b.size += pending.length;
    this.queuedEntries += pending.length;
    for (const p of pending) {
      const n = this.headOf(p.user) + 1;
      this.heads.set(p.user, n);
      b.entries.push({ ...p.entry, user: p.user, inbox: n } as InboxEntry);
      if (p.sender && p.entry.type === 'message' && this.storedListeners.length > 0) {
        const { conv, seq, ts } = p.entry;
        b.notices.push({ conv, seq, ts, ...p.sender, users: [p.user], inboxes: [n] });
      }
      b.frames.push({ user: p.user, frame: { head: `${p.frameHead}${n},`, tail: p.frameTail } });
    }
    for (const f of fanned) b.fanned.push(f);
    this.schedule();
  }

  /** Whether a user of `pending` has numbers in the open batch's fan-outs (at most one batch to scan). */
  private numberedByOpenFanouts(pending: readonly PendingEntry[]): boolean {
    if (this.open.fanouts.length === 0 || pending.length === 0) return false;
    const users = new Set(pending.map((p) => p.user));
    return this.open.fanouts.some((f) => f.users.some((u) => users.has(u)));
  }

  /**
   * Numbers a durable message for each of its recipients (heads must be loaded), without an
   * object per recipient; `fanned` marks go into the same commit.
   */
  appendMessages(messages: readonly MessageDelivery[], fanned: readonly FannedMark[]): void {
    if (this.closed) return;
    const b = this.batchWithRoom();
    for (const { message: m, recipients } of messages) {
      const tail = messageFrameTail(m);
      const inboxes = new Array<number>(recipients.length);
      for (let i = 0; i < recipients.length; i++) {
        const user = recipients[i]!;
        const n = this.headOf(user) + 1;
        this.heads.set(user, n);
        inboxes[i] = n;
        b.frames.push({ user, frame: { head: `${MESSAGE_FRAME_HEAD}${n},`, tail } });
      }
      b.fanouts.push({ conv: m.conv, seq: m.seq, ts: m.ts, users: recipients, inboxes });
      if (this.storedListeners.length > 0)
        b.notices.push({
          conv: m.conv,
          seq: m.seq,
          from: m.from,
          kind: m.kind,
          ts: m.ts,
          users: recipients,
          inboxes,
          body: m.body,
        });
      b.size += recipients.length;
      this.queuedEntries += recipients.length;
    }
    for (const f of fanned) b.fanned.push(f);
    this.schedule();
  }

  /**
   * The open batch, or a new one when it reached the size bound (each call stays whole, so a
   * message's entries and its fan-out mark always commit together).
   */
  private batchWithRoom(): Batch {
    if (this.open.size >= MAX_ENTRIES_PER_COMMIT) {
      this.full.push(this.open);
      this.open = this.emptyBatch();
    }
    return this.open;
  }

  /** The user's head; numbering from a head not in memory would reuse numbers, so it is an error. */
  private headOf(user: string): number {
    const head = this.heads.get(user);
    if (head === undefined) throw new Error(`inbox head of ${user} not loaded: append inside withHeads`);
    return head;
  }

  /**
   * Drops the oldest loaded heads, down to 90 % of `maxHeads`, skipping users a caller holds or
   * with entries not stored yet (their heads are ahead of the store's).
   */
  private evictHeads(): void {
    const busy = new Set<string>(this.pins.keys());
    for (const b of [this.open, ...this.full, ...(this.flying ? [this.flying] : [])]) {
      for (const e of b.entries) busy.add(e.user);
      for (const f of b.fanouts) for (const u of f.users) busy.add(u);
    }
    const target = Math.floor(this.maxHeads * 0.9);
    for (const user of this.heads.keys()) {
      if (this.heads.size <= target) break;
      if (!busy.has(user)) this.heads.delete(user);
    }
  }

  private emptyBatch(): Batch {
    return { id: this.nextBatchId++, entries: [], fanouts: [], size: 0, frames: [], fanned: [], notices: [] };
  }

  /**
   * Drops the numbered work (its numbers are taken elsewhere) and the heads it was numbered from;
   * everyone waiting for it hears the conflict and hands it in again, numbered after the store's
   * current heads.
   */
  private dropAfterConflict(err: InboxConflictError): void {
    this.log.warn(
      { err: err.message },
      'inbox numbers taken by another writer: dropping the queued batches and reloading heads',
    );
    // Every head may be behind the store now; those a caller holds stay (a number they take that
    // is taken too is refused again, and that caller redoes its work).
    for (const user of [...this.heads.keys()]) if (!this.pins.has(user)) this.heads.delete(user);
    // The store answered: it is reachable again, whatever it refused.
    if (!this.isHealthy) this.setHealthy(true);
    this.full.length = 0;
    this.open = this.emptyBatch();
    this.queuedEntries = 0;
    this.inFlight = false;
    this.flying = null;
    this.doneUpTo = this.open.id - 1;
    for (const w of this.idleWaiters.splice(0)) w.reject(err);
  }

  /** Resolves when everything handed in so far is stored and delivered (see `InboxAppender.idle`). */
  idle(): Promise<void> {
    const pending = this.open.size > 0 || this.open.fanned.length > 0;
    const target = pending ? this.open.id : this.open.id - 1;
    if (target <= this.doneUpTo) return Promise.resolve();
    return new Promise((resolve, reject) => this.idleWaiters.push({ target, resolve, reject }));
  }

  /** Marks batches up to `id` done and wakes whoever waited for them. */
  private done(id: number): void {
    // A completion held by a stored listener may land after a conflict moved `doneUpTo` past it.
    this.doneUpTo = Math.max(this.doneUpTo, id);
    if (this.heads.size > this.maxHeads) this.evictHeads();
    const still: IdleWaiter[] = [];
    for (const w of this.idleWaiters) {
      if (w.target <= id) w.resolve();
      else still.push(w);
    }
    this.idleWaiters = still;
  }

  private setHealthy(healthy: boolean): void {
    this.isHealthy = healthy;
    this.onHealth?.(healthy);
  }

  private schedule(): void {
    if (this.inFlight || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.inFlight) return;
    let b = this.full.shift();
    if (!b) {
      b = this.open;
      if (b.size === 0 && b.fanned.length === 0) return;
      this.open = this.emptyBatch();
    }
    this.inFlight = true;
    this.flying = b;
    let failingSince = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        const appended = this.store.append(b.entries, b.fanned, b.fanouts);
        if (this.storeWritesInOrder && !b.told && b.notices.length > 0)
          b.told = { started: this.tellStored(b.notices) };
        await appended;
        break;
      } catch (err) {
        if (err instanceof InboxConflictError) {
          this.dropAfterConflict(err);
          return;
        }
        if (this.closed) {
          this.log.warn({ err: String(err), entries: b.size }, 'inbox append failed while stopping; dropped');
          return;
        }
        if (attempt === 0) failingSince = Date.now();
        const failingMs = Date.now() - failingSince;
        const delay = this.retryMs[Math.min(attempt, this.retryMs.length - 1)]!;
        if (this.isHealthy && failingMs >= this.unhealthyAfterMs) {
          this.log.error(
            { err: String(err), entries: b.size, attempt, failingMs },
            'inbox store failing: inbox writer unhealthy, delivery stalled; retrying until the store is back',
          );
          this.setHealthy(false);
        } else {
          this.log.error({ err: String(err), entries: b.size, attempt }, 'inbox append failed; retrying');
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    if (!this.isHealthy) {
      this.log.info({ entries: b.size }, 'inbox store is back: inbox writer healthy again');
      this.setHealthy(true);
    }
    this.inFlight = false;
    this.flying = null;
    this.queuedEntries -= b.size;
    for (const f of b.frames) this.router.deliver(f.user, f.frame);
    this.complete(b);
    void this.flush();
  }

  /**
   * Marks a stored batch done, once what the stored listeners started for it (and for earlier
   * ones) settled; they are told now unless they were told when its append was issued.
   */
  private complete(b: Batch): void {
    const started = b.told ? b.told.started : b.notices.length > 0 ? this.tellStored(b.notices) : undefined;
    if (!started && !this.completing) {
      this.done(b.id);
      return;
    }
    // A failure is the callback's to report: the batch is stored, so it is done either way.
    const finish = () => {
      if (this.completing === completion) this.completing = null;
      this.done(b.id);
    };
    const completion: Promise<void> = Promise.all([this.completing, started]).then(finish, finish);
    this.completing = completion;
  }

  /** Hands stored messages to every listener; the promise of those that work on, if any. */
  private tellStored(notices: readonly StoredMessageNotice[]): Promise<unknown> | undefined {
    const working: Promise<void>[] = [];
    for (const l of this.storedListeners) {
      const p = l.messagesStored(notices);
      if (p) working.push(p);
    }
    if (working.length === 0) return undefined;
    return working.length === 1 ? working[0] : Promise.all(working);
  }
}
