import { inboxEventHead, inboxEventTail } from '@parley/protocol';
import type { Clock } from '../ports/clock.js';
import type { ConversationStore, Watermark } from '../ports/conversation-store.js';
import type { InboxAppender, PendingEntry } from '../ports/inbox-appender.js';
import type { Logger } from '../ports/logger.js';
import type { MessageStore } from '../ports/message-store.js';
import type { RecentSenders } from './recent-senders.js';
import type { UserDirectory } from './users.js';

/** A watermark update as a device reports it (or as sending implies it). */
export interface ReceiptUpdate {
  user: string;
  kind: 'delivered' | 'read';
  seq: number;
  /** Set when the update is implied by the user's own send: their own devices need no event. */
  implicit?: boolean;
}

interface ConvReceipts {
  conv: string;
  queue: { update: ReceiptUpdate; done: () => void }[];
  draining: boolean;
  scheduled: boolean;
  cache: Map<string, { delivered: number; read: number }>;
}

/** Most senders a single watermark move notifies (bounds the range scan of a huge jump). */
const MAX_NOTIFIED_SENDERS = 1024;

const RECEIPT_FRAME_HEAD = inboxEventHead('receipt');

/**
 * Receipt watermarks: per (conversation, user), `delivered` and `read` are max-registers (`read`
 * implies `delivered`), so updates from several devices merge in any order to the same result.
 *
 * Updates queue per conversation and drain as a batch: all updates of one user in a batch collapse
 * into one watermark move and at most one event per notified sender, so a client marking 200
 * messages read one by one costs far fewer than 200 events. When a watermark moves from s1 to s2,
 * every other member who sent a message in (s1, s2] gets an inbox event; a `read` move also goes to
 * the reader's own inbox (unless implied by their own send).
 */
export class ReceiptService {
  private readonly convs = new Map<string, ConvReceipts>();

  constructor(
    private readonly store: ConversationStore,
    private readonly messages: MessageStore,
    private readonly inbox: InboxAppender,
    private readonly users: UserDirectory,
    /** Recent senders per conversation, fed by the conversation writers. */
    private readonly recent: RecentSenders,
    /** Whether `user` is (still) a member of `conv`: only members are told of receipts. */
    private readonly isMember: (conv: string, user: string) => Promise<boolean>,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** How long updates gather before a conversation's batch is applied (coalescing window). */
    private readonly coalesceMs = 50,
  ) {}

  /**
   * Applies every update queued so far without waiting out the coalescing window, and resolves
   * when they are durable and their events handed on: a stopping server calls it before it waits
   * for the inbox writer, so that no receipt reaches the writer after the store is closed.
   */
  async settled(): Promise<void> {
    for (;;) {
      const busy = [...this.convs.values()].filter((c) => c.queue.length > 0 || c.draining);
      if (busy.length === 0) return;
      await Promise.all(busy.map((c) => (c.draining ? new Promise((r) => setImmediate(r)) : this.drain(c))));
    }
  }

  /** Queues a watermark update; resolves when it is durable and its events are queued. */
  submit(conv: string, update: ReceiptUpdate): Promise<void> {
    let c = this.convs.get(conv);
    if (!c) {
      c = { conv, queue: [], draining: false, scheduled: false, cache: new Map() };
      this.convs.set(conv, c);
    }
    const done = new Promise<void>((resolve) => c.queue.push({ update, done: resolve }));
    this.schedule(c);
    return done;
  }

  private schedule(c: ConvReceipts): void {
    if (c.draining || c.scheduled) return;
    c.scheduled = true;
    setTimeout(() => {
      c.scheduled = false;
      void this.drain(c);
    }, this.coalesceMs);
  }

  /** Applies what has gathered; updates arriving meanwhile wait for the next window. */
  private async drain(c: ConvReceipts): Promise<void> {
    if (c.draining) return;
    c.draining = true;
    const batch = c.queue;
    c.queue = [];
    try {
      await this.apply(
        c,
        batch.map((q) => q.update),
      );
    } catch (err) {
      // Receipts are best effort beyond the durable watermark: reload it next time.
      c.cache.clear();
      this.log.warn({ conv: c.conv, err: String(err) }, 'receipt update failed');
    } finally {
      for (const q of batch) q.done();
      c.draining = false;
      if (c.queue.length > 0) this.schedule(c);
      else if (this.convs.size > 10_000) this.convs.delete(c.conv);
    }
  }

  private async apply(c: ConvReceipts, batch: readonly ReceiptUpdate[]): Promise<void> {
    const users = [...new Set(batch.map((u) => u.user))];
    const missing = users.filter((u) => !c.cache.has(u));
    if (missing.length > 0) {
      const rows = await this.store.watermarks(c.conv, missing);
      for (const u of missing) c.cache.set(u, { delivered: 0, read: 0 });
      for (const r of rows) c.cache.set(r.user, { delivered: r.delivered, read: r.read });
    }
    const moves: {
      user: string;
      old: { delivered: number; read: number };
      next: Watermark;
      ownEvent: boolean;
    }[] = [];
    for (const user of users) {
      const old = c.cache.get(user)!;
      let delivered = old.delivered;
      let read = old.read;
      let ownEvent = false;
      for (const u of batch) {
        if (u.user !== user) continue;
        if (u.kind === 'read' && u.seq > read) {
          read = u.seq;
          if (!u.implicit) ownEvent = true;
        }
        delivered = Math.max(delivered, u.seq, read);
      }
      if (delivered === old.delivered && read === old.read) continue;
      moves.push({ user, old, next: { conv: c.conv, user, delivered, read }, ownEvent });
    }
    if (moves.length === 0) return;
    await this.store.mergeWatermarks(moves.map((m) => m.next));
    for (const m of moves) c.cache.set(m.user, { delivered: m.next.delivered, read: m.next.read });
    await this.notify(c.conv, moves);
  }

  /** Senders in (after, upto]: from memory when it can tell, from the log otherwise. */
  private async sendersIn(conv: string, after: number, upto: number): Promise<string[]> {
    return (
      this.recent.sendersIn(conv, after, upto) ??
      this.messages.senders(conv, after, upto, MAX_NOTIFIED_SENDERS)
    );
  }

  private async notify(
    conv: string,
    moves: readonly {
      user: string;
      old: { delivered: number; read: number };
      next: Watermark;
      ownEvent: boolean;
    }[],
  ): Promise<void> {
    const ts = this.clock.now();
    const pending: PendingEntry[] = [];
    const push = (to: string, actor: string, kind: 'delivered' | 'read', seq: number) => {
      const tail = inboxEventTail({ conv, user: actor, kind, seq, ts });
      pending.push({
        user: to,
        entry: { type: 'receipt', conv, seq, ts, actor, kind },
        frameHead: RECEIPT_FRAME_HEAD,
        frameTail: Buffer.from(tail),
      });
    };
    for (const m of moves) {
      const readers = new Set<string>();
      /** Whether every sender of the read range was told (or needs nothing): see below. */
      let allTold = false;
      if (m.next.read > m.old.read) {
        // Read receipts flow only between users who both have them on.
        const shares = (await this.users.settings(m.user)).readReceipts;
        allTold = true;
        for (const s of await this.sendersIn(conv, m.old.read, m.next.read)) {
          if (s === m.user) continue;
          if (!shares) {
            allTold = false;
            continue;
          }
          if (!(await this.isMember(conv, s))) continue;
          if (!(await this.users.settings(s)).readReceipts) {
            allTold = false;
            continue;
          }
          readers.add(s);
          push(s, m.user, 'read', m.next.read);
        }
        if (m.ownEvent) push(m.user, m.user, 'read', m.next.read);
      }
      if (m.next.delivered > m.old.delivered) {
        const coveredByRead = m.next.delivered <= m.next.read;
        // The delivered range lies within the read range (delivered >= read always), so when
        // every sender there got a read event, which covers delivered, nobody is left: no read.
        if (coveredByRead && allTold) continue;
        const senders = await this.sendersIn(conv, m.old.delivered, m.next.delivered);
        for (const s of senders) {
          if (s === m.user || (coveredByRead && readers.has(s)) || !(await this.isMember(conv, s))) continue;
          push(s, m.user, 'delivered', m.next.delivered);
        }
      }
    }
    if (pending.length === 0) return;
    const users = pending.map((p) => p.user);
    await this.inbox.withHeads(users, () => this.inbox.append(pending));
  }
}
