import { directMembers } from '@parley/protocol';
import type { Fanout } from '../domain/fanout.js';
import { membersAt } from '../domain/group-rules.js';
import type { Sequencer } from '../domain/sequencer.js';
import type { ConversationStore } from '../ports/conversation-store.js';
import type { Logger } from '../ports/logger.js';
import type { MessageBus } from '../ports/message-bus.js';
import type { MessageStore } from '../ports/message-store.js';
import type { ConsumedRecord, PartitionHandler } from '../ports/partitioned-log.js';
import { groupBy } from '../util/group-by.js';
import type { RemoteInboxAppender } from './remote.js';
import { failureReply, type IngressRecord, type ReplyMessage } from './wire.js';

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
    const byConv = groupBy(
      records.map((r) => JSON.parse(r.value.toString()) as IngressRecord),
      (rec) => (rec.op === 'send' ? rec.req.conv : rec.conv),
    );
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
      // Looked up through the sequencer (after it loaded, and so rolled forward, the conversation's
      // head), which then does not look the fresh sends up again.
      const sends = recs.flatMap((r) => (r.op === 'send' ? [r.req] : []));
      const lookups = await this.sequencer.stored(conv, sends);
      const stored = new Map(sends.map((req, i) => [req, lookups[i]] as const));
      const fresh: IngressRecord[] = [];
      for (const rec of recs) {
        const found = rec.op === 'send' ? stored.get(rec.req) : null;
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
        recs.filter((r) => !answered.has(r)).map((r) => this.answer(r.reply, failureReply(r.rid, err))),
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
      reply = failureReply(rec.rid, err);
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
    this.outbox.appendMessages([{ message: m, recipients }]);
  }
}
