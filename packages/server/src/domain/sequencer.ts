import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { MessageStore, StoredMessage } from '../ports/message-store.js';
import { badRequest } from './errors.js';

/** A validated, authorized message waiting for its seq. */
export interface SendRequest {
  conv: string;
  from: string;
  from_device: string;
  cmid: string;
  kind: string;
  body: string;
  reply_to?: number;
  media?: string[];
}

/** What the sender is told once the message is durable. */
export interface SendOutcome {
  seq: number;
  ts: number;
  dup: boolean;
}

interface Waiting {
  req: SendRequest;
  resolve: (o: SendOutcome) => void;
  reject: (e: unknown) => void;
}

/** The in-memory state of one conversation's single writer. */
interface ConversationLog {
  conv: string;
  loaded: boolean;
  lastSeq: number;
  lastTs: number;
  queue: Waiting[];
  draining: boolean;
  /** Sends not yet durable, by sender and cmid: a retry joins the first attempt. */
  pending: Map<string, Promise<SendOutcome>>;
}

/** Called with each durable batch of one conversation, in seq order. */
export type CommittedListener = (messages: readonly StoredMessage[]) => void;

/**
 * Assigns each conversation's `seq` (1, 2, 3, … without gaps) as its only writer in this process.
 *
 * Per conversation, submissions queue in arrival order (so one connection's sends keep their
 * order); the queue drains as a batch: duplicates (same sender and cmid) are answered with the
 * stored seq, the rest get consecutive seqs and are appended in one store call. One append per
 * conversation is in flight at a time, so a failed write can never leave a later seq stored after
 * a missing one; while it is in flight, new sends queue up and join the next batch (the store
 * group-commits batches of all conversations together).
 */
export class Sequencer {
  private readonly logs = new Map<string, ConversationLog>();

  constructor(
    private readonly store: MessageStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly onCommitted: CommittedListener,
    private readonly maxIdleConversations = 100_000,
  ) {}

  /** Queues a message for sequencing; resolves when it is durable (or was already stored). */
  submit(req: SendRequest): Promise<SendOutcome> {
    const c = this.conversation(req.conv);
    const key = `${req.from}\u0000${req.cmid}`;
    const first = c.pending.get(key);
    if (first) return first.then((o) => ({ seq: o.seq, ts: o.ts, dup: true }));
    const p = new Promise<SendOutcome>((resolve, reject) => c.queue.push({ req, resolve, reject }));
    c.pending.set(key, p);
    const forget = () => c.pending.delete(key);
    p.then(forget, forget);
    if (!c.draining) void this.drain(c);
    return p;
  }

  /** Conversations with state in memory (for metrics and tests). */
  get conversationsInMemory(): number {
    return this.logs.size;
  }

  private conversation(conv: string): ConversationLog {
    let c = this.logs.get(conv);
    if (!c) {
      if (this.logs.size >= this.maxIdleConversations) this.evictIdle();
      c = { conv, loaded: false, lastSeq: 0, lastTs: 0, queue: [], draining: false, pending: new Map() };
      this.logs.set(conv, c);
    }
    return c;
  }

  /** Forgets the oldest conversations with nothing queued; their heads reload from the store. */
  private evictIdle(): void {
    let toEvict = Math.max(1, Math.floor(this.maxIdleConversations / 10));
    for (const [conv, c] of this.logs) {
      if (toEvict === 0) break;
      if (!c.draining && c.queue.length === 0 && c.pending.size === 0) {
        this.logs.delete(conv);
        toEvict--;
      }
    }
  }

  private async drain(c: ConversationLog): Promise<void> {
    c.draining = true;
    try {
      while (c.queue.length > 0) {
        const batch = c.queue;
        c.queue = [];
        try {
          await this.sequence(c, batch);
        } catch (err) {
          // The write may or may not have happened: reload the head from the store next time.
          c.loaded = false;
          this.log.warn({ conv: c.conv, err: String(err) }, 'append failed');
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      c.draining = false;
    }
  }

  private async sequence(c: ConversationLog, batch: Waiting[]): Promise<void> {
    if (!c.loaded) {
      const head = await this.store.head(c.conv);
      c.lastSeq = head?.lastSeq ?? 0;
      c.lastTs = head?.lastTs ?? 0;
      c.loaded = true;
    }
    const stored = await Promise.all(batch.map((w) => this.store.findByCmid(c.conv, w.req.from, w.req.cmid)));
    const messages: StoredMessage[] = [];
    const accepted: Waiting[] = [];
    for (let i = 0; i < batch.length; i++) {
      const w = batch[i]!;
      const dup = stored[i];
      if (dup) {
        w.resolve({ seq: dup.seq, ts: dup.ts, dup: true });
        continue;
      }
      if (w.req.reply_to !== undefined && w.req.reply_to > c.lastSeq) {
        w.reject(badRequest('"reply_to" must be the seq of an earlier message in this conversation'));
        continue;
      }
      messages.push(this.assign(c, w.req));
      accepted.push(w);
    }
    if (messages.length === 0) return;
    try {
      await this.store.append(messages);
    } catch (err) {
      c.loaded = false;
      for (const w of accepted) w.reject(err);
      return;
    }
    for (let i = 0; i < accepted.length; i++) {
      const m = messages[i]!;
      accepted[i]!.resolve({ seq: m.seq, ts: m.ts, dup: false });
    }
    this.onCommitted(messages);
  }

  private assign(c: ConversationLog, req: SendRequest): StoredMessage {
    const ts = Math.max(this.clock.now(), c.lastTs);
    c.lastSeq += 1;
    c.lastTs = ts;
    const m: StoredMessage = {
      conv: req.conv,
      seq: c.lastSeq,
      ts,
      from: req.from,
      from_device: req.from_device,
      cmid: req.cmid,
      kind: req.kind,
      body: req.body,
    };
    if (req.reply_to !== undefined) m.reply_to = req.reply_to;
    if (req.media !== undefined) m.media = req.media;
    return m;
  }
}
