import { randomUUID } from 'node:crypto';
import { ParleyError } from '../domain/errors.js';
import type { GroupOp, GroupState } from '../domain/group-rules.js';
import type { InboxAppender, MessageDelivery, PendingEntry } from '../domain/inbox-writer.js';
import { directMembers } from '../domain/membership.js';
import {
  type ChangeOutcome,
  type ConversationWriter,
  loadGroup,
  type SendOutcome,
  type SendRequest,
} from '../domain/sequencer.js';
import type { ConversationStore } from '../ports/conversation-store.js';
import type { LogMessage, PartitionedLog } from '../ports/partitioned-log.js';
import {
  type FanoutRecord,
  type IngressRecord,
  type ReplyMessage,
  replyError,
  toFanoutRecord,
} from './wire.js';

/** How long a write waits for its conversation's owner to answer before failing with `unavailable`. */
const REPLY_TIMEOUT_MS = 5_000;

/**
 * Requests that cross the log and come back over the bus: each process listens on its own reply
 * channel and matches answers to requests by id.
 */
export class Replies {
  private readonly waiting = new Map<string, { resolve: (r: ReplyMessage) => void; timer: NodeJS.Timeout }>();

  constructor(readonly channel: string) {}

  /** Handles a message of the reply channel. */
  received(text: string): void {
    const r = JSON.parse(text) as ReplyMessage;
    const w = this.waiting.get(r.rid);
    if (!w) return;
    this.waiting.delete(r.rid);
    clearTimeout(w.timer);
    w.resolve(r);
  }

  /** Waits for the answer to `rid`. */
  wait(rid: string): Promise<ReplyMessage> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(rid);
        resolve({
          rid,
          ok: false,
          code: 'unavailable',
          message: 'no answer from the conversation’s writer; retry',
        });
      }, REPLY_TIMEOUT_MS);
      this.waiting.set(rid, { resolve, timer });
    });
  }

  /** Fails everything still waiting (shutdown). */
  close(): void {
    for (const [rid, w] of this.waiting) {
      clearTimeout(w.timer);
      w.resolve({ rid, ok: false, code: 'unavailable', message: 'server stopping; retry' });
    }
    this.waiting.clear();
  }
}

/**
 * The conversation writer as a gateway process sees it in cluster mode: writes go to the
 * ingress topic, where the process owning the conversation's partition sequences them and
 * answers over the bus; group state is read from the store each time (another process owns it,
 * so a cached copy could be stale).
 */
export class RemoteConversationWriter implements ConversationWriter {
  constructor(
    private readonly log: PartitionedLog,
    private readonly ingress: string,
    private readonly replies: Replies,
    private readonly conversations: ConversationStore,
  ) {}

  async submit(req: SendRequest): Promise<SendOutcome> {
    return (await this.call(req.conv, { op: 'send', req })) as SendOutcome;
  }

  async change(conv: string, actor: string, device: string, change: GroupOp): Promise<ChangeOutcome> {
    return (await this.call(conv, { op: 'change', conv, actor, device, change })) as ChangeOutcome;
  }

  group(conv: string): Promise<GroupState | null> {
    return loadGroup(this.conversations, conv);
  }

  async isMember(conv: string, user: string): Promise<boolean> {
    const direct = directMembers(conv);
    if (direct) return direct.includes(user);
    return (await this.group(conv))?.members.has(user) ?? false;
  }

  lastSeq(): number | undefined {
    return undefined;
  }

  private async call(conv: string, body: DistributiveOmit<IngressRecord, 'rid' | 'reply'>): Promise<unknown> {
    const rid = randomUUID();
    const answer = this.replies.wait(rid);
    const record = { ...body, rid, reply: this.replies.channel } as IngressRecord;
    // Not awaited: a publish that fails (Kafka away) answers at once, and the answer's own time-out
    // bounds how long a send waits, however long the client library keeps retrying.
    this.log
      .publish(this.ingress, [{ key: conv, value: Buffer.from(JSON.stringify(record)) }])
      .catch(() =>
        this.replies.received(
          JSON.stringify({ rid, ok: false, code: 'unavailable', message: 'the log is unavailable; retry' }),
        ),
      );
    const r = await answer;
    if (!r.ok) throw replyError(r);
    return r.result;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * Inbox events as the stages that produce them hand them over in cluster mode: published to the
 * fan-out topic, keyed by user, where the process owning the user's partition numbers and stores
 * them. `idle` resolves once everything handed in is durable in the log.
 */
export class RemoteInboxAppender implements InboxAppender {
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown = null;

  constructor(
    private readonly log: PartitionedLog,
    private readonly topic: string,
  ) {}

  headsLoaded(): boolean {
    return true;
  }

  async ensureHeads(): Promise<void> {}

  append(pending: readonly PendingEntry[]): void {
    this.publish(
      pending.map((p) => ({ key: p.user, value: Buffer.from(JSON.stringify(toFanoutRecord(p))) })),
    );
  }

  appendMessages(messages: readonly MessageDelivery[]): void {
    const records: LogMessage[] = [];
    for (const m of messages) {
      const entry = { type: 'message' as const, conv: m.conv, seq: m.seq, ts: m.ts };
      for (const user of m.recipients)
        records.push({
          key: user,
          value: Buffer.from(JSON.stringify({ user, entry } satisfies FanoutRecord)),
        });
    }
    this.publish(records);
  }

  /** Resolves once every publish so far is durable; rejects (once) if one failed. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    if (this.failure !== null) {
      const err = this.failure;
      this.failure = null;
      throw err instanceof Error ? err : new ParleyError('unavailable', String(err));
    }
  }

  private publish(records: readonly LogMessage[]): void {
    if (records.length === 0) return;
    const p = this.log.publish(this.topic, records).then(
      () => {},
      (err) => {
        this.failure = err;
      },
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }
}
