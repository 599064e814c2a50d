import type { Fanout } from '../domain/fanout.js';
import { membersAt } from '../domain/group-rules.js';
import { type InboxWriter, MESSAGE_FRAME_HEAD, type PendingEntry } from '../domain/inbox-writer.js';
import { directMembers } from '../domain/membership.js';
import type { Sequencer } from '../domain/sequencer.js';
import type { Metrics } from '../gateway/metrics.js';
import type { ConversationStore } from '../ports/conversation-store.js';
import { InboxConflictError, type InboxStore } from '../ports/inbox-store.js';
import type { Logger } from '../ports/logger.js';
import type { MessageBus } from '../ports/message-bus.js';
import type { MessageStore } from '../ports/message-store.js';
import type { ConsumedRecord, PartitionHandler } from '../ports/partitioned-log.js';
import type { RemoteInboxAppender } from './remote.js';
import { errorReply, type FanoutRecord, type IngressRecord, type ReplyMessage } from './wire.js';

/** Observes a stage's batches: how long records waited in the log, how long a batch took, its size. */
export function meteredStage(stage: string, handler: PartitionHandler, metrics: Metrics): PartitionHandler {
  return {
    onAssigned: (partitions) => handler.onAssigned(partitions),
    onRevoked: (partitions) => handler.onRevoked(partitions),
    async onRecords(partition, records) {
      const start = Date.now();
      let oldest = start;
      for (const r of records) oldest = Math.min(oldest, r.timestamp);
      metrics.stageWait.observe({ stage }, (start - oldest) / 1000);
      metrics.stageRecords.observe({ stage }, records.length);
      try {
        await handler.onRecords(partition, records);
      } finally {
        metrics.stageBatch.observe({ stage }, (Date.now() - start) / 1000);
      }
    },
  };
}

/**
 * The sequencer stage: the member owning an ingress partition is the single writer of its
 * conversations. It runs the in-process `Sequencer` on each record, answers the requesting
 * gateway over the bus as soon as the write is durable, and lets the log commit the records only
 * once their fan-out is durable on the fan-out topic. A record delivered again (its owner died
 * before committing) is answered as a duplicate and its fan-out is published again; the fan-out
 * stage drops what it already stored.
 */
export class SequencerStage implements PartitionHandler {
  constructor(
    private readonly sequencer: Sequencer,
    private readonly fanout: Fanout,
    private readonly outbox: RemoteInboxAppender,
    private readonly messages: MessageStore,
    private readonly conversations: ConversationStore,
    private readonly bus: MessageBus,
    private readonly log: Logger,
  ) {}

  async onAssigned(partitions: readonly number[]): Promise<void> {
    this.log.info({ partitions }, 'sequencer: partitions assigned');
  }

  async onRevoked(partitions: readonly number[]): Promise<void> {
    // Eager rebalances revoke everything: reload every conversation from the store next time.
    this.sequencer.forget(() => true);
    this.log.info({ partitions }, 'sequencer: partitions revoked');
  }

  /**
   * Handles a batch, conversation by conversation: first the sends already stored (a retry, or a
   * record delivered again), whose fan-out is published again in order, then the rest together
   * (the sequencer batches them). So a user's fan-out records of one conversation are always
   * published in seq order, which is what lets the fan-out stage recognise repeats exactly.
   */
  async onRecords(_partition: number, records: readonly ConsumedRecord[]): Promise<void> {
    const byConv = new Map<string, IngressRecord[]>();
    for (const r of records) {
      const rec = JSON.parse(r.value.toString()) as IngressRecord;
      const conv = rec.op === 'send' ? rec.req.conv : rec.conv;
      byConv.set(conv, [...(byConv.get(conv) ?? []), rec]);
    }
    // Every conversation settles before a failure is reported: a redelivered batch must never
    // race this one's writes still in flight.
    const results = await Promise.allSettled(
      [...byConv].map(([conv, recs]) => this.conversation(conv, recs)),
    );
    await this.fanout.settled();
    await this.outbox.idle();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * One conversation's records. When the store fails before the records reach the sequencer, their
   * senders hear `unavailable` at once, and the failure is rethrown so the log delivers the records
   * again: a record whose message was stored by a previous owner still needs its fan-out.
   */
  private async conversation(conv: string, recs: readonly IngressRecord[]): Promise<void> {
    const answered = new Set<IngressRecord>();
    try {
      const stored = await Promise.all(
        recs.map((r) => (r.op === 'send' ? this.messages.findByCmid(conv, r.req.from, r.req.cmid) : null)),
      );
      const fresh: IngressRecord[] = [];
      for (let i = 0; i < recs.length; i++) {
        const rec = recs[i]!;
        const found = stored[i];
        if (!found) {
          fresh.push(rec);
          continue;
        }
        await this.refanout(conv, found.seq);
        answered.add(rec);
        await this.answer(rec.reply, {
          rid: rec.rid,
          ok: true,
          result: { seq: found.seq, ts: found.ts, dup: true },
        });
      }
      for (const r of fresh) answered.add(r);
      const now = Date.now();
      await Promise.all(fresh.map((r) => (now > r.deadline ? this.expired(r) : this.handle(r))));
    } catch (err) {
      await Promise.all(
        recs.filter((r) => !answered.has(r)).map((r) => this.answer(r.reply, errorReply(r.rid, err))),
      );
      throw err;
    }
  }

  private async handle(rec: IngressRecord): Promise<void> {
    let reply: ReplyMessage;
    try {
      if (rec.op === 'send') {
        const outcome = await this.sequencer.submit(rec.req);
        if (outcome.dup) await this.refanout(rec.req.conv, outcome.seq);
        reply = { rid: rec.rid, ok: true, result: outcome };
      } else {
        const outcome = await this.sequencer.change(rec.conv, rec.actor, rec.device, rec.change);
        reply = { rid: rec.rid, ok: true, result: outcome };
      }
    } catch (err) {
      reply = errorReply(rec.rid, err);
    }
    await this.answer(rec.reply, reply);
  }

  /** A write whose gateway has given up waiting: not applied, so its `unavailable` stays true. */
  private async expired(rec: IngressRecord): Promise<void> {
    this.log.warn({ rid: rec.rid }, 'sequencer: write reached its owner after its deadline; not applied');
    await this.answer(rec.reply, {
      rid: rec.rid,
      ok: false,
      code: 'unavailable',
      message: 'the write waited too long in the log; retry',
    });
  }

  private async answer(channel: string, reply: ReplyMessage): Promise<void> {
    await this.bus.publish(channel, JSON.stringify(reply)).catch((err) => {
      this.log.warn({ err: String(err) }, 'sequencer: reply not sent (the client will retry)');
    });
  }

  /**
   * Publishes a stored message's fan-out again (to the members at its seq): its first fan-out may
   * or may not have been published (the previous owner may have died in between).
   */
  private async refanout(conv: string, seq: number): Promise<void> {
    const [m] = await this.messages.getMany([{ conv, seq }]);
    if (!m) return;
    const recipients = directMembers(conv) ?? membersAt(await this.conversations.members(conv), seq);
    const frameTail = Buffer.from(JSON.stringify(m).slice(1));
    this.outbox.appendMessages([{ conv, seq, ts: m.ts, recipients, frameTail }]);
  }
}

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
    const tails = await this.frames.load(
      records.flatMap((r) => (r.entry.type === 'message' ? [r.entry] : [])),
    );
    return records.map((r) =>
      r.entry.type === 'message'
        ? {
            user: r.user,
            entry: r.entry,
            frameHead: MESSAGE_FRAME_HEAD,
            frameTail: tails.get(refKey(r.entry))!,
          }
        : { user: r.user, entry: r.entry, frameHead: r.head!, frameTail: Buffer.from(r.tail!, 'base64') },
    );
  }

  private async write(pending: readonly PendingEntry[]): Promise<void> {
    const users = [...new Set(pending.map((p) => p.user))];
    // Heads first, then the tails up to them: every entry at or below a head is in its tail.
    await this.writer.ensureHeads(users);
    await Promise.all(users.map((u) => this.loadState(u)));
    await this.loadLastSeqs(pending);
    const fresh: PendingEntry[] = [];
    for (const p of pending) {
      const state = this.users.get(p.user)!;
      const e = p.entry;
      const key = entryKey(e);
      if (state.recent.has(key)) continue;
      if (e.type === 'message') {
        // At or below the highest seq stored for this conversation: a repeat.
        if (e.seq <= state.maxSeq.get(e.conv)!) continue;
        state.maxSeq.set(e.conv, e.seq);
      }
      remember(state, key);
      fresh.push(p);
    }
    while (this.users.size > MAX_USERS) this.users.delete(this.users.keys().next().value!);
    if (fresh.length === 0) return;
    this.writer.append(fresh);
    await this.writer.idle();
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

const refKey = (m: { conv: string; seq: number }) => `${m.conv}\u0000${m.seq}`;

/**
 * The frames of messages being fanned out, read from the store once per process and kept while
 * they fit in `FRAME_CACHE_BYTES` (the least recently used go first).
 */
class MessageFrames {
  private readonly cache = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly messages: MessageStore) {}

  /** Each message's frame tail (after `…"inbox":N,`), by `refKey`. */
  async load(refs: readonly { conv: string; seq: number }[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    const missing = new Map<string, { conv: string; seq: number }>();
    for (const r of refs) {
      const k = refKey(r);
      const hit = this.cache.get(k);
      if (hit) {
        out.set(k, hit);
        // Most recently used last: eviction takes the oldest first.
        this.cache.delete(k);
        this.cache.set(k, hit);
      } else missing.set(k, { conv: r.conv, seq: r.seq });
    }
    const found = await this.messages.getMany([...missing.values()]);
    [...missing.keys()].forEach((k, i) => {
      const m = found[i];
      // Fan-out is published only once its message is durable: a miss is the store failing.
      if (!m) throw new Error(`message ${k.replace('\u0000', '/')} not found in the store; retrying`);
      const tail = Buffer.from(JSON.stringify(m).slice(1));
      out.set(k, tail);
      this.put(k, tail);
    });
    return out;
  }

  private put(key: string, tail: Buffer): void {
    this.cache.set(key, tail);
    this.bytes += tail.length;
    for (const [k, v] of this.cache) {
      if (this.bytes <= FRAME_CACHE_BYTES) break;
      this.cache.delete(k);
      this.bytes -= v.length;
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
