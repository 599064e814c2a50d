import type {
  ConversationSummary,
  HistoryResult,
  InboxEvent,
  MessageObject,
  ReceiptsResult,
  SyncResult,
} from '@parley/protocol';
import type { ConversationStore } from '../ports/conversation-store.js';
import type { InboxEntry, InboxStore } from '../ports/inbox-store.js';
import type { MessageStore } from '../ports/message-store.js';
import { badRequest, forbidden, ParleyError } from './errors.js';
import type { Membership } from './membership.js';
import type { ReceiptService } from './receipts.js';
import type { SendOutcome, SendRequest, Sequencer } from './sequencer.js';

/** The ports and stages the chat operations use. */
export interface ChatDeps {
  messages: MessageStore;
  inbox: InboxStore;
  conversations: ConversationStore;
  sequencer: Sequencer;
  receipts: ReceiptService;
  membership: Membership;
}

/**
 * The chat operations of the protocol, for an authenticated user: what the WebSocket gateway and
 * the HTTP API call. Authorization is checked here, once, for every transport.
 */
export class Chat {
  constructor(private readonly d: ChatDeps) {}

  /**
   * Sends a message; resolves once it is durable. Sending also marks everything before it read.
   * Authorization of a direct conversation needs no I/O, so the message reaches its sequencer in
   * the same tick as the frame: one connection's pipelined sends keep their order.
   */
  send(req: SendRequest): Promise<SendOutcome> {
    const members = this.d.membership.directMembers(req.conv);
    if (!members?.includes(req.from)) return Promise.reject(forbidden(`not a member of ${req.conv}`));
    return this.d.sequencer.submit(req).then((outcome) => {
      if (!outcome.dup) {
        void this.d.receipts.submit(req.conv, {
          user: req.from,
          kind: 'read',
          seq: outcome.seq,
          implicit: true,
        });
      }
      return outcome;
    });
  }

  /** Inbox events after `after`, oldest first; `gone` when some of them were pruned. */
  async sync(user: string, after: number, limit: number): Promise<SyncResult> {
    const head = await this.d.inbox.head(user);
    if (after > head) throw badRequest(`"after" is beyond the inbox head ${head}`);
    if (after < head && (await this.d.inbox.floor(user)) > after + 1) {
      throw new ParleyError('gone', 'inbox events after this cursor have expired; resync from conversations');
    }
    const entries = await this.d.inbox.read(user, after, limit + 1);
    const more = entries.length > limit;
    if (more) entries.length = limit;
    return {
      events: await this.events(entries),
      inbox_head: Math.max(head, entries.at(-1)?.inbox ?? 0),
      more,
    };
  }

  /** A page of a conversation's messages, ascending. */
  async history(
    user: string,
    conv: string,
    q: { before?: number; after?: number; limit: number },
  ): Promise<HistoryResult> {
    await this.d.membership.assertMember(user, conv);
    const query: { before?: number; after?: number; limit: number } = { limit: q.limit + 1 };
    if (q.before !== undefined) query.before = q.before;
    if (q.after !== undefined) query.after = q.after;
    const messages = await this.d.messages.page(conv, query);
    const more = messages.length > q.limit;
    if (more) {
      if (q.after !== undefined) messages.length = q.limit;
      else messages.shift();
    }
    return { messages, more };
  }

  /** The user's conversations by last activity, newest first. */
  async conversations(
    user: string,
    limit: number,
    beforeTs?: number,
  ): Promise<{ conversations: ConversationSummary[]; more: boolean }> {
    const rows = await this.d.inbox.conversations(user, limit + 1, beforeTs);
    const more = rows.length > limit;
    if (more) rows.length = limit;
    const conversations = await Promise.all(rows.map((r) => this.summary(user, r.conv, r.lastTs)));
    return { conversations, more };
  }

  /** Applies a receipt from one of the user's devices. */
  async receipt(user: string, conv: string, kind: 'delivered' | 'read', seq: number): Promise<void> {
    await this.d.membership.assertMember(user, conv);
    const head = await this.d.messages.head(conv);
    if (seq > (head?.lastSeq ?? 0)) throw badRequest(`"seq" ${seq} is beyond the conversation's last seq`);
    await this.d.receipts.submit(conv, { user, kind, seq });
  }

  /** Every member's watermarks in `conv`. */
  async receipts(user: string, conv: string): Promise<ReceiptsResult> {
    await this.d.membership.assertMember(user, conv);
    const members = (await this.d.membership.members(conv)) ?? [];
    const marks = new Map((await this.d.conversations.watermarks(conv)).map((w) => [w.user, w]));
    return {
      members: members.map((u) => ({
        user: u,
        delivered: marks.get(u)?.delivered ?? 0,
        read: marks.get(u)?.read ?? 0,
      })),
    };
  }

  /** The user's durable inbox head (what `connect` reports). */
  inboxHead(user: string): Promise<number> {
    return this.d.inbox.head(user);
  }

  private async summary(user: string, conv: string, lastTs: number): Promise<ConversationSummary> {
    const [meta, marks, members] = await Promise.all([
      this.d.conversations.get(conv),
      this.d.conversations.watermarks(conv, [user]),
      this.d.membership.members(conv),
    ]);
    const mine = marks[0];
    const lastSeq = meta?.lastSeq ?? 0;
    const read = mine?.read ?? 0;
    const s: ConversationSummary = {
      conv,
      kind: meta?.kind ?? 'direct',
      members: members?.length ?? 0,
      last_seq: lastSeq,
      last_ts: Math.max(meta?.lastTs ?? 0, lastTs),
      read,
      delivered: mine?.delivered ?? 0,
      unread: Math.max(0, lastSeq - read),
    };
    if (meta?.name !== undefined) s.name = meta.name;
    return s;
  }

  private async events(entries: readonly InboxEntry[]): Promise<InboxEvent[]> {
    const refs = entries.filter((e) => e.type === 'message');
    const bodies = await this.d.messages.getMany(refs);
    const byRef = new Map<string, MessageObject>();
    for (const m of bodies) if (m) byRef.set(`${m.seq}\u0000${m.conv}`, m);
    const out: InboxEvent[] = [];
    for (const e of entries) {
      if (e.type === 'receipt') {
        out.push({
          type: 'receipt',
          inbox: e.inbox,
          conv: e.conv,
          user: e.actor,
          kind: e.kind,
          seq: e.seq,
          ts: e.ts,
        });
        continue;
      }
      const m = byRef.get(`${e.seq}\u0000${e.conv}`);
      if (m) out.push({ type: 'message', inbox: e.inbox, ...m });
    }
    return out;
  }
}
