import { type InboxWriter, MESSAGE_FRAME_HEAD, messageFrameTail } from '../domain/inbox-writer.js';
import type { PendingEntry } from '../ports/inbox-appender.js';
import { InboxConflictError, type InboxStore } from '../ports/inbox-store.js';
import type { Logger } from '../ports/logger.js';
import type { MessageStore } from '../ports/message-store.js';
import type { ConsumedRecord, PartitionHandler } from '../ports/partitioned-log.js';
import type { FanoutRecord } from './wire.js';

/** Inbox entries read back per user, the first time the user is seen after an assignment. */
const TAIL = 512;

/**
 * The fan-out stage: the member owning a fan-out partition is the single writer of its users'
 * inboxes. It runs the in-process `InboxWriter` (numbering, durable append, live delivery) and
 * drops events a user's inbox already has: a record delivered again after its previous owner
 * stored it but died before committing, or a message's fan-out published again for a retried
 * send (possibly long after the first). A user's message records of one conversation arrive in seq
 * order (one partition, published in seq order), so a message at or below the highest seq this
 * user's inbox has for that conversation is a repeat; receipts are matched exactly against the
 * recent ones. The first time a user is seen after an assignment, both are seeded from the user's
 * inbox tail; a conversation not in the tail is looked up in the store's per-conversation highest
 * seq (which the tail covers while a dead writer's last update of it may be missing).
 */
export class FanoutStage implements PartitionHandler {
  private readonly users = new Map<string, UserState>();
  private readonly frames: MessageFrames;

  constructor(
    private readonly writer: InboxWriter,
    private readonly inbox: InboxStore,
    messages: MessageStore,
    private readonly log: Logger,
  ) {
    this.frames = new MessageFrames(messages);
  }

  async onAssigned(partitions: readonly number[]): Promise<void> {
    this.log.info({ partitions }, 'fanout: partitions assigned');
  }

  async onRevoked(partitions: readonly number[]): Promise<void> {
    // Dropped work (a conflict) is fine here: the next owner redoes what was not committed.
    await this.writer.idle().catch(() => {});
    this.writer.forget(() => true);
    this.users.clear();
    this.log.info({ partitions }, 'fanout: partitions revoked');
  }

  async onRecords(_partition: number, records: readonly ConsumedRecord[]): Promise<void> {
    const pending = await this.pending(records.map((r) => JSON.parse(r.value.toString()) as FanoutRecord));
    // Another writer numbered some of these users' entries (it owned them while this member was
    // paused, or is itself a paused former owner): start over from the store's state.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.write(pending);
        return;
      } catch (err) {
        if (!(err instanceof InboxConflictError)) throw err;
        this.users.clear();
        if (attempt >= 5)
          throw new Error('inbox writes keep conflicting: this member no longer owns these inboxes');
      }
    }
  }

  /** The records as inbox events, messages with their frames read from the store. */
  private async pending(records: readonly FanoutRecord[]): Promise<PendingEntry[]> {
    // Small messages came inline; the others are read from the store (once per process).
    const frames = await this.frames.load(
      records.flatMap((r) => (r.entry.type === 'message' && !r.sender ? [r.entry] : [])),
    );
    return records.map((r) => {
      if (r.entry.type !== 'message')
        return {
          user: r.user,
          entry: r.entry,
          frameHead: r.head!,
          frameTail: Buffer.from(r.tail!, 'base64'),
        };
      const { tail, from, kind } = r.sender
        ? { tail: Buffer.from(r.tail!, 'base64'), ...r.sender }
        : frames.get(refKey(r.entry))!;
      return {
        user: r.user,
        entry: r.entry,
        frameHead: MESSAGE_FRAME_HEAD,
        frameTail: tail,
        sender: { from, kind },
      };
    });
  }

  private async write(pending: readonly PendingEntry[]): Promise<void> {
    const users = [...new Set(pending.map((p) => p.user))];
    // The tails come from the store, which holds every entry this member wrote before (each
    // batch waits until its entries are stored), so they agree with the writer's heads.
    await Promise.all(users.map((u) => this.loadState(u)));
    await this.loadLastSeqs(pending);
    const fresh = await this.writer.withHeads(users, () => {
      const out = pending.filter((p) => this.isNew(p));
      if (out.length > 0) this.writer.append(out);
      return out;
    });
    while (this.users.size > MAX_USERS) this.users.delete(this.users.keys().next().value!);
    if (fresh.length > 0) await this.writer.idle();
  }

  /** False for an entry the user's inbox already has; true (and remembered) otherwise. */
  private isNew(p: PendingEntry): boolean {
    const state = this.users.get(p.user)!;
    const e = p.entry;
    const key = entryKey(e);
    if (state.recent.has(key)) return false;
    if (e.type === 'message') {
      // At or below the highest seq stored for this conversation: a repeat.
      if (e.seq <= state.maxSeq.get(e.conv)!) return false;
      state.maxSeq.set(e.conv, e.seq);
    }
    remember(state, key);
    return true;
  }

  /** Seeds a user's state from the inbox tail the first time the user is seen (kept most recent first). */
  private async loadState(user: string): Promise<void> {
    const known = this.users.get(user);
    if (known) {
      this.users.delete(user);
      this.users.set(user, known);
      return;
    }
    const head = await this.inbox.head(user);
    const tail = await this.inbox.read(user, Math.max(0, head - TAIL), TAIL);
    const state: UserState = { maxSeq: new Map(), recent: new Set() };
    for (const e of tail) {
      if (e.type === 'message') state.maxSeq.set(e.conv, Math.max(state.maxSeq.get(e.conv) ?? 0, e.seq));
      remember(state, entryKey(e));
    }
    this.users.set(user, state);
  }

  /** Fills the highest stored seq of every (user, conversation) of `pending` not known yet (0: none). */
  private async loadLastSeqs(pending: readonly PendingEntry[]): Promise<void> {
    const unknown = new Map<string, Set<string>>();
    for (const p of pending) {
      if (p.entry.type !== 'message' || this.users.get(p.user)!.maxSeq.has(p.entry.conv)) continue;
      const convs = unknown.get(p.user) ?? new Set();
      unknown.set(p.user, convs.add(p.entry.conv));
    }
    await Promise.all(
      [...unknown].map(async ([user, convs]) => {
        const stored = await this.inbox.lastSeqs(user, [...convs]);
        const state = this.users.get(user)!;
        for (const conv of convs) state.maxSeq.set(conv, stored.get(conv) ?? 0);
      }),
    );
  }
}

/** Bytes of message frames a fan-out member keeps (a group message's recipients span many batches). */
const FRAME_CACHE_BYTES = 32 * 1024 * 1024;

/** A message's shared frame tail, and what a push notification names of it. */
interface MessageFrame {
  tail: Buffer;
  from: string;
  kind: string;
}

const refKey = (m: { conv: string; seq: number }) => `${m.conv}\u0000${m.seq}`;

/**
 * The frames of messages being fanned out, read from the store once per process and kept while
 * they fit in `FRAME_CACHE_BYTES` (the least recently used go first). A read in flight is shared:
 * a group message's records arrive in many partitions' batches at once, and all but the first
 * wait for its read instead of reading the same row again.
 */
class MessageFrames {
  private readonly cache = new Map<string, MessageFrame>();
  private readonly reading = new Map<string, Promise<MessageFrame>>();
  private bytes = 0;

  constructor(private readonly messages: MessageStore) {}

  /** Each message's frame tail (after `…"inbox":N,`) and sender, by `refKey`. */
  async load(refs: readonly { conv: string; seq: number }[]): Promise<Map<string, MessageFrame>> {
    const out = new Map<string, MessageFrame>();
    const waits: Promise<void>[] = [];
    const missing = new Map<string, { conv: string; seq: number }>();
    for (const r of refs) {
      const k = refKey(r);
      const hit = this.cache.get(k);
      const inFlight = hit ? undefined : this.reading.get(k);
      if (hit) {
        out.set(k, hit);
        // Most recently used last: eviction takes the oldest first.
        this.cache.delete(k);
        this.cache.set(k, hit);
      } else if (inFlight) waits.push(inFlight.then((f) => void out.set(k, f)));
      else if (!missing.has(k)) missing.set(k, { conv: r.conv, seq: r.seq });
    }
    if (missing.size > 0) waits.push(this.read(missing, out));
    await Promise.all(waits);
    return out;
  }

  /** Reads `missing` in one store call, sharing the read with concurrent loads of the same messages. */
  private async read(missing: Map<string, { conv: string; seq: number }>, out: Map<string, MessageFrame>) {
    const found = this.messages.getMany([...missing.values()]).then((rows) =>
      [...missing.keys()].map((k, i) => {
        const m = rows[i];
        // Fan-out is published only once its message is durable: a miss is the store failing.
        if (!m) throw new Error(`message ${k.replace('\u0000', '/')} not found in the store; retrying`);
        return { tail: messageFrameTail(m), from: m.from, kind: m.kind };
      }),
    );
    const keys = [...missing.keys()];
    keys.forEach((k, i) => {
      const frame = found.then((frames) => frames[i]!);
      // Every waiter sees a failure through its own promise; this one only marks it handled.
      frame.catch(() => {});
      this.reading.set(k, frame);
    });
    try {
      const frames = await found;
      keys.forEach((k, i) => {
        out.set(k, frames[i]!);
        this.put(k, frames[i]!);
      });
    } finally {
      for (const k of keys) this.reading.delete(k);
    }
  }

  private put(key: string, frame: MessageFrame): void {
    this.cache.set(key, frame);
    this.bytes += frame.tail.length;
    for (const [k, v] of this.cache) {
      if (this.bytes <= FRAME_CACHE_BYTES) break;
      this.cache.delete(k);
      this.bytes -= v.tail.length;
    }
  }
}

interface UserState {
  /** Per conversation, the highest message seq in this user's inbox. */
  maxSeq: Map<string, number>;
  /** The entries stored most recently (at most `RECENT`). */
  recent: Set<string>;
}

/** Entries remembered exactly per user. */
const RECENT = 4096;

/** Users whose state is kept; the least recently seen is dropped past it (and reloaded if seen again). */
const MAX_USERS = 100_000;

function remember(state: UserState, key: string): void {
  state.recent.add(key);
  if (state.recent.size > RECENT) state.recent.delete(state.recent.values().next().value!);
}

function entryKey(
  e: PendingEntry['entry'] | { type: string; conv: string; seq: number; actor?: string; kind?: string },
): string {
  return e.type === 'receipt'
    ? `r\u0000${e.conv}\u0000${e.seq}\u0000${e.actor}\u0000${e.kind}`
    : `m\u0000${e.conv}\u0000${e.seq}`;
}
