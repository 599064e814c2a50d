// The seams between processes in cluster mode, as adapters of their ports: the conversation
// writer and the inbox appender over the log (RemoteConversationWriter, RemoteInboxAppender), the
// answers over the bus (Replies), and the session registry's transport to other processes'
// gateways (BusSessionTransport).
import { randomUUID } from 'node:crypto';
import { directMembers } from '@parley/protocol';
import { ParleyError } from '../domain/errors.js';
import { messageFrameTail } from '../domain/inbox-writer.js';
import { loadGroup } from '../domain/sequencer.js';
import type { ConversationStore } from '../ports/conversation-store.js';
import type {
  ChangeOutcome,
  ConversationWriter,
  GroupOp,
  GroupState,
  SendOutcome,
  SendRequest,
} from '../ports/conversation-writer.js';
import type { InboxAppender, MessageDelivery, PendingEntry } from '../ports/inbox-appender.js';
import type { Logger } from '../ports/logger.js';
import type { MessageBus } from '../ports/message-bus.js';
import type { LogMessage, PartitionedLog } from '../ports/partitioned-log.js';
import type { GatewayCommand, SessionTransport } from '../ports/sessions.js';
import { Correlator } from '../util/correlator.js';
import {
  INLINE_FANOUT_BYTES,
  type IngressRecord,
  messageRecord,
  type ReplyMessage,
  replyError,
  toFanoutRecord,
} from './wire.js';

/** How long a write waits for its conversation's owner to answer before failing with `unavailable`. */
const REPLY_TIMEOUT_MS = 5_000;

/**
 * How long before the gateway gives up the owner stops starting the write: room for the write
 * itself and for clock skew between processes, so an `unavailable` answer means not stored.
 */
const DEADLINE_MARGIN_MS = 1_500;

/**
 * Requests that cross the log and come back over the bus: each process listens on its own reply
 * channel and matches answers to requests by id.
 */
export class Replies {
  private readonly waiting = new Correlator<string, ReplyMessage>();

  constructor(readonly channel: string) {}

  /** Listens on the reply channel; resolves (once subscribed) with the function that stops it. */
  listen(bus: MessageBus): Promise<() => Promise<void>> {
    return bus.subscribe(this.channel, (text) => this.received(text));
  }

  /** Handles a message of the reply channel. */
  received(text: string): void {
    const r = JSON.parse(text) as ReplyMessage;
    this.waiting.resolve(r.rid, r);
  }

  /** Waits for the answer to `rid`. */
  wait(rid: string): Promise<ReplyMessage> {
    return this.waiting.wait(rid, {
      ms: REPLY_TIMEOUT_MS,
      answer: () => ({
        rid,
        ok: false,
        code: 'unavailable',
        message: 'no answer from the conversation’s writer; retry',
      }),
    });
  }

  /** Fails everything still waiting (shutdown). */
  close(): void {
    this.waiting.settleAll({
      answer: (rid) => ({ rid, ok: false, code: 'unavailable', message: 'server stopping; retry' }),
    });
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

  private async call(
    conv: string,
    body: DistributiveOmit<IngressRecord, 'rid' | 'reply' | 'deadline'>,
  ): Promise<unknown> {
    const rid = randomUUID();
    const answer = this.replies.wait(rid);
    const deadline = Date.now() + REPLY_TIMEOUT_MS - DEADLINE_MARGIN_MS;
    const record = { ...body, rid, reply: this.replies.channel, deadline } as IngressRecord;
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

/** Records per fan-out publish (small records by reference: well under Kafka's batch limit). */
const MAX_RECORDS_PER_PUBLISH = 4096;

/** Delays between attempts of a fan-out publish that failed (it must land, in order). */
const RETRY_MS = [50, 200, 1_000, 2_000];

/**
 * Inbox events as the stages that produce them hand them over in cluster mode: published to the
 * fan-out topic, keyed by user, where the process owning the user's partition numbers and stores
 * them. One publish is in flight at a time and everything handed in meanwhile goes in the next
 * (group commit); a failed publish is retried, with everything after it waiting, so each user's
 * events reach the topic in the order they were handed in — the fan-out stage relies on it.
 */
export class RemoteInboxAppender implements InboxAppender {
  private readonly queued: LogMessage[] = [];
  private sending = false;
  private handedIn = 0;
  private published = 0;
  private waiters: { upTo: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  private closed = false;

  constructor(
    private readonly log: PartitionedLog,
    private readonly topic: string,
    private readonly logger: Logger,
  ) {}

  /** Records handed in and not published yet. */
  get backlog(): number {
    return this.handedIn - this.published;
  }

  /** Numbering happens at the fan-out stage: nothing to load here. */
  async withHeads<T>(_users: Iterable<string>, fn: () => T): Promise<T> {
    return fn();
  }

  append(pending: readonly PendingEntry[]): void {
    this.enqueue(
      pending.map((p) => ({ key: p.user, value: Buffer.from(JSON.stringify(toFanoutRecord(p))) })),
    );
  }

  appendMessages(messages: readonly MessageDelivery[]): void {
    const records: LogMessage[] = [];
    for (const { message: m, recipients } of messages) {
      const entry = { type: 'message' as const, conv: m.conv, seq: m.seq, ts: m.ts };
      const tail = messageFrameTail(m);
      const inline =
        tail.length * recipients.length <= INLINE_FANOUT_BYTES
          ? { tail: tail.toString('base64'), from: m.from, kind: m.kind }
          : undefined;
      for (const user of recipients)
        records.push({ key: user, value: Buffer.from(JSON.stringify(messageRecord(user, entry, inline))) });
    }
    this.enqueue(records);
  }

  /**
   * Resolves once everything handed in so far is durable in the log, whatever is handed in
   * meanwhile; rejects only if the appender is closed first.
   */
  idle(): Promise<void> {
    if (this.published >= this.handedIn) return Promise.resolve();
    if (this.closed) return Promise.reject(closedError());
    const upTo = this.handedIn;
    return new Promise((resolve, reject) => this.waiters.push({ upTo, resolve, reject }));
  }

  /** Stops retrying; whoever waits for unpublished events hears `unavailable`. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(closedError());
  }

  private enqueue(records: readonly LogMessage[]): void {
    if (records.length === 0) return;
    for (const r of records) this.queued.push(r);
    this.handedIn += records.length;
    if (!this.sending) void this.send();
  }

  private async send(): Promise<void> {
    this.sending = true;
    while (this.queued.length > 0 && !this.closed) {
      const records = this.queued.slice(0, MAX_RECORDS_PER_PUBLISH);
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          await this.log.publish(this.topic, records);
          break;
        } catch (err) {
          this.logger.warn(
            { err: String(err), records: records.length, attempt },
            'fan-out publish failed; retrying',
          );
          await new Promise((r) => setTimeout(r, RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]));
        }
      }
      if (this.closed) break;
      this.queued.splice(0, records.length);
      this.published += records.length;
      this.waiters = this.waiters.filter((w) => {
        if (w.upTo > this.published) return true;
        w.resolve();
        return false;
      });
    }
    this.sending = false;
  }
}

const closedError = () => new ParleyError('unavailable', 'fan-out stopped before its events were published');

/** The bus channel of a gateway. */
export const gatewayChannel = (gateway: string) => `gw:${gateway}`;

/** The session registry's transport in cluster mode: one bus channel per gateway, JSON commands. */
export class BusSessionTransport implements SessionTransport {
  constructor(private readonly bus: MessageBus) {}

  send(gateway: string, command: GatewayCommand): Promise<void> {
    return this.bus.publish(gatewayChannel(gateway), JSON.stringify(command));
  }

  listen(gateway: string, handle: (command: GatewayCommand) => void): Promise<() => Promise<void>> {
    return this.bus.subscribe(gatewayChannel(gateway), (text) => handle(JSON.parse(text) as GatewayCommand));
  }
}
