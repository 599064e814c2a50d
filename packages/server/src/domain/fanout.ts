import type { Logger } from '../ports/logger.js';
import type { MessageStore, StoredMessage } from '../ports/message-store.js';
import type { InboxWriter, PendingEntry } from './inbox-writer.js';
import type { Membership } from './membership.js';

const MESSAGE_FRAME_HEAD = '{"type":"message","inbox":';

/**
 * Fan-out on write: every durable message becomes one inbox entry per member (the body is stored
 * once, in the conversation log; the entry only points at it). Batches are processed strictly in
 * commit order, so each conversation's inbox entries follow its seq order; each message's entries
 * and its fan-out mark go into one inbox commit, so after a crash `recover` redoes exactly the
 * messages whose fan-out was not recorded.
 */
export class Fanout {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly membership: Membership,
    private readonly inbox: InboxWriter,
    private readonly messages: MessageStore,
    private readonly log: Logger,
  ) {}

  /** Takes a durable batch of one conversation (in seq order). */
  committed(batch: readonly StoredMessage[]): void {
    this.chain = this.chain.then(
      () => this.fanOut(batch),
      () => this.fanOut(batch),
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
      let after = range.fannedSeq;
      while (after < range.lastSeq) {
        const page = await this.messages.page(range.conv, { after, limit: 500 });
        if (page.length === 0) break;
        this.committed(page);
        redone += page.length;
        after = page[page.length - 1]!.seq;
      }
    }
    await this.settled();
    await this.inbox.idle();
    if (redone > 0) this.log.warn({ messages: redone }, 'redid fan-out of messages stored before a crash');
    return redone;
  }

  private async fanOut(batch: readonly StoredMessage[]): Promise<void> {
    const first = batch[0];
    if (!first) return;
    const members =
      this.membership.directMembers(first.conv) ?? (await this.membership.members(first.conv)) ?? [];
    if (!this.inbox.headsLoaded(members)) await this.inbox.ensureHeads(members);
    const pending: PendingEntry[] = [];
    for (const m of batch) {
      const frameTail = JSON.stringify(m).slice(1);
      for (const user of members) {
        pending.push({
          user,
          entry: { type: 'message', conv: m.conv, seq: m.seq, ts: m.ts },
          frameHead: MESSAGE_FRAME_HEAD,
          frameTail,
        });
      }
    }
    const last = batch[batch.length - 1]!;
    this.inbox.append(pending, [{ conv: last.conv, seq: last.seq }]);
  }
}
