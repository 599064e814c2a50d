import type { GroupEffect } from '../ports/conversation-store.js';
import type { EpochMessages } from '../ports/epoch-fencing.js';
import type { ConversationHead, MessageStore, PageQuery, StoredMessage } from '../ports/message-store.js';
import type { PartitionFence } from './partition-fence.js';

/**
 * The sequencer stage's message log, fenced by ownership epochs instead of a conditional write
 * per conversation per batch (the protocol is in `ports/epoch-fencing.ts`): messages are written
 * under the member's epoch, one check per batch confirms every partition it owns is still at that
 * epoch, and only then are they published (dedup rows, group changes, the conversation's head)
 * and the senders answered. A fenced append rejects with `EpochFencedError`: the sequencer drops
 * the conversation's state and its senders hear `unavailable` (they retry, through the new owner).
 *
 * A conversation's head is loaded as written: messages a former owner wrote and did not publish
 * (it died, or was fenced) are real sends of the log, so they are published here, after a check,
 * before the head is answered: the sequencer then finds them by cmid when their sends come again.
 */
export class FencedMessages implements MessageStore {
  constructor(
    private readonly store: MessageStore,
    private readonly fenced: EpochMessages,
    readonly fence: PartitionFence,
  ) {}

  async head(conv: string): Promise<ConversationHead | null> {
    await this.fence.beforeLoad();
    const epoch = this.fence.epoch;
    const { head, beyond, effects } = await this.fenced.writtenHead(conv);
    if (beyond.length > 0) {
      await this.fence.check(epoch);
      await this.fenced.publish(beyond, effects);
    }
    this.fence.loaded(conv, epoch);
    const last = beyond.at(-1);
    return last ? { lastSeq: last.seq, lastTs: Math.max(last.ts, head?.lastTs ?? 0) } : head;
  }

  async append(messages: readonly StoredMessage[], effects: readonly GroupEffect[] = []): Promise<void> {
    const epoch = this.fence.epoch;
    this.fence.refuseStale(new Set(messages.map((m) => m.conv)), epoch);
    await this.fenced.write(messages, effects, epoch);
    await this.fence.check(epoch);
    await this.fenced.publish(messages, effects);
  }

  findByCmid(conv: string, from: string, cmid: string) {
    return this.store.findByCmid(conv, from, cmid);
  }

  page(conv: string, query: PageQuery): Promise<StoredMessage[]> {
    return this.store.page(conv, query);
  }

  getMany(refs: readonly { conv: string; seq: number }[]) {
    return this.store.getMany(refs);
  }

  senders(conv: string, after: number, upto: number, max: number): Promise<string[]> {
    return this.store.senders(conv, after, upto, max);
  }
}
