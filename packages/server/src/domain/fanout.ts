import type { ConversationStore } from '../ports/conversation-store.js';
import type { Logger } from '../ports/logger.js';
import type { MessageStore, StoredMessage } from '../ports/message-store.js';
import { membersAt } from './group-rules.js';
import type { InboxAppender, MessageDelivery } from './inbox-writer.js';
import { directMembers } from './membership.js';

/**
 * Fan-out on write: every durable message becomes one inbox entry per recipient (the body is
 * stored once, in the conversation log; the entry only points at it). The recipients come with the
 * message from its conversation's writer (the members at its seq). Batches are processed strictly in
 * commit order, so each conversation's inbox entries follow its seq order; each batch's entries and
 * its fan-out mark go into one inbox commit, so after a crash `recover` redoes exactly the messages
 * whose fan-out was not recorded. Fan-out never delays the sender's reply, which was sent when the
 * message became durable.
 */
export class Fanout {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly inbox: InboxAppender,
    private readonly messages: MessageStore,
    private readonly conversations: ConversationStore,
    private readonly log: Logger,
  ) {}

  /** Takes a durable batch of one conversation (in seq order) with each message's recipients. */
  committed(batch: readonly StoredMessage[], recipients: readonly (readonly string[])[]): void {
    this.chain = this.chain.then(
      () => this.fanOut(batch, recipients),
      () => this.fanOut(batch, recipients),
    );
    this.chain.catch((err) => this.log.error({ err: String(err) }, 'fan-out failed'));
  }

  /** Resolves when every batch handed in so far is numbered and queued. */
  async settled(): Promise<void> {
    await this.chain.catch(() => {});
  }

  /** Redoes the fan-out of messages stored but not fanned out before a crash; resolves once it is stored. Run before serving. */
  async recover(): Promise<number> {
    let redone = 0;
    for (const range of await this.messages.unfanned()) {
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

  private async fanOut(
    batch: readonly StoredMessage[],
    recipients: readonly (readonly string[])[],
  ): Promise<void> {
    const last = batch[batch.length - 1];
    if (!last) return;
    const everyone = new Set<string>();
    for (const r of recipients) for (const u of r) everyone.add(u);
    const deliveries: MessageDelivery[] = batch.map((m, i) => ({ message: m, recipients: recipients[i]! }));
    await this.inbox.withHeads(everyone, () =>
      this.inbox.appendMessages(deliveries, [{ conv: last.conv, seq: last.seq }]),
    );
  }
}
