import { directMembers } from '@parley/protocol';
import type { ConversationStore } from '../ports/conversation-store.js';
import type { FanoutRecovery } from '../ports/fanout-recovery.js';
import type { InboxAppender, MessageDelivery } from '../ports/inbox-appender.js';
import type { Logger } from '../ports/logger.js';
import type { MessageStore, StoredMessage } from '../ports/message-store.js';
import { membersAt } from './group-rules.js';

/**
 * Inbox entries handed to the appender in one step: a big group's burst is cut into such slices
 * (whole messages each), so conversations take turns.
 */
const MAX_ROWS_PER_SLICE = 2048;

/**
 * Entries handed in and not yet stored past which fan-out waits for the inbox writer: what is
 * queued there is served first come, first served, so this bounds how long a message waits
 * behind another conversation's burst.
 */
const MAX_APPENDER_BACKLOG = 4096;

/** Whole messages of one conversation, in seq order, with their recipients. */
type Slice = MessageDelivery[];

/**
 * Fan-out on write: every durable message becomes one inbox entry per recipient (the body is
 * stored once, in the conversation log; the entry only points at it). The recipients come with the
 * message from its conversation's writer (the members at its seq). Each conversation's messages
 * are fanned out in seq order, so its inbox entries follow that order; each slice's entries and
 * its fan-out mark go into one inbox commit, so after a crash `recover` redoes exactly the messages
 * whose fan-out was not recorded. Fan-out never delays the sender's reply, which was sent when the
 * message became durable.
 *
 * Conversations take turns, a slice each, and the inbox writer is fed only while its backlog is
 * small: one sender's burst into a 512-member group (hundreds of thousands of entries) cannot
 * hold everyone else's messages behind it.
 */
export class Fanout {
  private readonly queues = new Map<string, Slice[]>();
  private running: Promise<void> | null = null;

  constructor(
    private readonly inbox: InboxAppender,
    private readonly messages: MessageStore,
    private readonly conversations: ConversationStore,
    private readonly log: Logger,
  ) {}

  /** Takes a durable batch of one conversation (in seq order) with each message's recipients. */
  committed(batch: readonly StoredMessage[], recipients: readonly (readonly string[])[]): void {
    const conv = batch[0]?.conv;
    if (conv === undefined) return;
    let queue = this.queues.get(conv);
    if (!queue) {
      queue = [];
      this.queues.set(conv, queue);
    }
    let slice: Slice = [];
    let rows = 0;
    for (let i = 0; i < batch.length; i++) {
      if (rows >= MAX_ROWS_PER_SLICE) {
        queue.push(slice);
        slice = [];
        rows = 0;
      }
      slice.push({ message: batch[i]!, recipients: recipients[i]! });
      rows += recipients[i]!.length;
    }
    queue.push(slice);
    this.running ??= this.drain().finally(() => {
      this.running = null;
    });
  }

  /** Resolves when every batch handed in so far is numbered and queued. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Hands slices to the inbox, one per conversation per round, pausing while the inbox is behind. */
  private async drain(): Promise<void> {
    while (this.queues.size > 0) {
      for (const [conv, queue] of this.queues) {
        const slice = queue.shift()!;
        if (queue.length === 0) this.queues.delete(conv);
        try {
          await this.fanOut(slice);
        } catch (err) {
          this.log.error({ err: String(err), conv }, 'fan-out failed');
        }
        if (this.inbox.backlog > MAX_APPENDER_BACKLOG) await this.inbox.idle().catch(() => {});
      }
    }
  }

  /**
   * Redoes the fan-out of messages stored but not fanned out before a crash; resolves once it is
   * stored. Run before serving, with the store's `FanoutRecovery` capability (a store without it,
   * such as cluster mode's, recovers fan-out another way and never calls this).
   */
  async recover(recovery: FanoutRecovery): Promise<number> {
    let redone = 0;
    for (const range of await recovery.unfanned()) {
      const direct = directMembers(range.conv);
      const records = direct ? [] : await this.conversations.members(range.conv);
      let after = range.fannedSeq;
      while (after < range.lastSeq) {
        const page = await this.messages.page(range.conv, { after, limit: 500 });
        if (page.length === 0) break;
        this.committed(
          page,
          page.map((m) => direct ?? membersAt(records, m.seq)),
        );
        redone += page.length;
        after = page[page.length - 1]!.seq;
      }
    }
    await this.settled();
    await this.inbox.idle();
    if (redone > 0) this.log.warn({ messages: redone }, 'redid fan-out of messages stored before a crash');
    return redone;
  }

  private async fanOut(slice: Slice): Promise<void> {
    const last = slice[slice.length - 1]?.message;
    if (!last) return;
    const everyone = new Set<string>();
    for (const d of slice) for (const u of d.recipients) everyone.add(u);
    await this.inbox.withHeads(everyone, () =>
      this.inbox.appendMessages(slice, [{ conv: last.conv, seq: last.seq }]),
    );
  }
}
