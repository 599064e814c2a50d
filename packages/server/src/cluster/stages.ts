import type { Fanout } from '../domain/fanout.js';
import { membersAt } from '../domain/group-rules.js';
import type { InboxWriter, PendingEntry } from '../domain/inbox-writer.js';
import { directMembers } from '../domain/membership.js';
import type { Sequencer } from '../domain/sequencer.js';
import type { ConversationStore } from '../ports/conversation-store.js';
import type { InboxStore } from '../ports/inbox-store.js';
import type { Logger } from '../ports/logger.js';
import type { MessageBus } from '../ports/message-bus.js';
import type { MessageStore } from '../ports/message-store.js';
import type { ConsumedRecord, PartitionHandler } from '../ports/partitioned-log.js';
import type { RemoteInboxAppender } from './remote.js';
import {
  errorReply,
  type FanoutRecord,
  fromFanoutRecord,
  type IngressRecord,
  type ReplyMessage,
} from './wire.js';

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

  async onRecords(_partition: number, records: readonly ConsumedRecord[]): Promise<void> {
    await Promise.all(records.map((r) => this.handle(JSON.parse(r.value.toString()) as IngressRecord)));
    await this.fanout.settled();
    await this.outbox.idle();
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
    await this.bus.publish(rec.reply, JSON.stringify(reply)).catch((err) => {
      this.log.warn({ err: String(err) }, 'sequencer: reply not sent (the client will retry)');
    });
  }

  /** Publishes a stored message's fan-out again (to the members at its seq). */
  private async refanout(conv: string, seq: number): Promise<void> {
    const [m] = await this.messages.getMany([{ conv, seq }]);
    if (!m) return;
    const recipients = directMembers(conv) ?? membersAt(await this.conversations.members(conv), seq);
    this.fanout.committed([m], [recipients]);
  }
}

/** Entries remembered per user to recognise a redelivered one (beyond them, the inbox tail is read). */
const REMEMBERED_PER_USER = 512;

/**
 * The fan-out stage: the member owning a fan-out partition is the single writer of its users'
 * inboxes. It runs the in-process `InboxWriter` (numbering, durable append, live delivery) and
 * drops events a user's inbox already has — a record delivered again after its previous owner
 * stored it but died before committing — by checking each user's inbox tail the first time the
 * user is seen after an assignment, then the entries it stored since.
 */
export class FanoutStage implements PartitionHandler {
  private readonly seen = new Map<string, Set<string>>();

  constructor(
    private readonly writer: InboxWriter,
    private readonly inbox: InboxStore,
    private readonly log: Logger,
  ) {}

  async onAssigned(partitions: readonly number[]): Promise<void> {
    this.log.info({ partitions }, 'fanout: partitions assigned');
  }

  async onRevoked(partitions: readonly number[]): Promise<void> {
    await this.writer.idle();
    this.writer.forget(() => true);
    this.seen.clear();
    this.log.info({ partitions }, 'fanout: partitions revoked');
  }

  async onRecords(_partition: number, records: readonly ConsumedRecord[]): Promise<void> {
    const pending = records.map((r) => fromFanoutRecord(JSON.parse(r.value.toString()) as FanoutRecord));
    // Another writer numbered some of these users' entries (it owned them while this member was
    // paused, or is itself a paused former owner): start over from the store's state.
    for (let attempt = 0; ; attempt++) {
      await this.write(pending);
      if (this.writer.takeConflicts() === 0) return;
      this.seen.clear();
      if (attempt >= 5)
        throw new Error('inbox writes keep conflicting: this member no longer owns these inboxes');
    }
  }

  private async write(pending: readonly PendingEntry[]): Promise<void> {
    const users = [...new Set(pending.map((p) => p.user))];
    await Promise.all(users.filter((u) => !this.seen.has(u)).map((u) => this.loadTail(u)));
    const fresh: PendingEntry[] = [];
    for (const p of pending) {
      const mine = this.seen.get(p.user)!;
      const key = entryKey(p.entry);
      if (mine.has(key)) continue;
      mine.add(key);
      if (mine.size > REMEMBERED_PER_USER) mine.delete(mine.values().next().value!);
      fresh.push(p);
    }
    if (fresh.length === 0) return;
    await this.writer.ensureHeads(users);
    this.writer.append(fresh);
    await this.writer.idle();
  }

  private async loadTail(user: string): Promise<void> {
    const head = await this.inbox.head(user);
    const tail = await this.inbox.read(user, Math.max(0, head - REMEMBERED_PER_USER), REMEMBERED_PER_USER);
    this.seen.set(user, new Set(tail.map(entryKey)));
  }
}

function entryKey(
  e: PendingEntry['entry'] | { type: string; conv: string; seq: number; actor?: string; kind?: string },
): string {
  return e.type === 'receipt'
    ? `r\u0000${e.conv}\u0000${e.seq}\u0000${e.actor}\u0000${e.kind}`
    : `m\u0000${e.conv}\u0000${e.seq}`;
}
