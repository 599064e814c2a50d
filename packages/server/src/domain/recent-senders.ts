import type { StoredMessage } from '../ports/message-store.js';

/** How many of each user's latest seqs are kept per conversation. */
const KEPT = 16;

interface Tracked {
  /** Every message with a seq above this has been seen. */
  since: number;
  /** Each sender's latest seqs, ascending, at most KEPT. */
  recent: Map<string, number[]>;
}

/**
 * Who sent what recently, per conversation, from the messages the conversation writers commit
 * (system messages do not count as sends). Receipts ask "who sent a message in (after, upto]?"
 * on every watermark move; this answers from memory when it can and says "read the log" (undefined)
 * when it cannot, so the answer is always exact. Bounded: past `maxConversations` it forgets
 * everything and starts again.
 */
export class RecentSenders {
  private readonly convs = new Map<string, Tracked>();

  constructor(private readonly maxConversations = 50_000) {}

  /** Records a durable batch of one conversation (in seq order). */
  committed(batch: readonly StoredMessage[]): void {
    const first = batch[0];
    if (!first) return;
    let t = this.convs.get(first.conv);
    if (!t) {
      if (this.convs.size >= this.maxConversations) this.convs.clear();
      t = { since: first.seq - 1, recent: new Map() };
      this.convs.set(first.conv, t);
    }
    for (const m of batch) {
      if (m.kind === 'system') continue;
      let seqs = t.recent.get(m.from);
      if (!seqs) {
        seqs = [];
        t.recent.set(m.from, seqs);
      }
      seqs.push(m.seq);
      if (seqs.length > KEPT) seqs.shift();
    }
  }

  /** The senders of messages with after < seq <= upto, or undefined when only the log can tell. */
  sendersIn(conv: string, after: number, upto: number): string[] | undefined {
    const t = this.convs.get(conv);
    if (!t || after < t.since) return undefined;
    const out: string[] = [];
    for (const [user, seqs] of t.recent) {
      if (seqs.some((s) => s > after && s <= upto)) out.push(user);
      // Older sends than the kept ones may fall in the range only if the oldest kept is above it.
      else if (seqs.length === KEPT && seqs[0]! > after) return undefined;
    }
    return out;
  }
}
