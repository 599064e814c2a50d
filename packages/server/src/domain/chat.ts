import type {
  ConversationSummary,
  GroupInfoResult,
  HistoryResult,
  InboxEvent,
  MessageObject,
  ReceiptsResult,
  SyncResult,
} from '@parley/protocol';
import { ulid } from 'ulid';
import type { Clock } from '../ports/clock.js';
import type { ConversationStore } from '../ports/conversation-store.js';
import type { InboxEntry, InboxStore } from '../ports/inbox-store.js';
import type { MessageStore } from '../ports/message-store.js';
import type { RateLimit, RateLimiter } from '../ports/rate-limiter.js';
import type { Router } from '../ports/router.js';
import type { UserSettings } from '../ports/user-store.js';
import { badRequest, ParleyError } from './errors.js';
import type { GroupOp } from './group-rules.js';
import { directMembers } from './membership.js';
import type { ReceiptService } from './receipts.js';
import {
  type ChangeOutcome,
  type ConversationWriter,
  cannotWrite,
  type SendOutcome,
  type SendRequest,
} from './sequencer.js';
import type { UserDirectory } from './users.js';

/** The ports and stages the chat operations use. */
export interface ChatDeps {
  messages: MessageStore;
  inbox: InboxStore;
  conversations: ConversationStore;
  sequencer: ConversationWriter;
  receipts: ReceiptService;
  users: UserDirectory;
  router: Router;
  clock: Clock;
  /** Per-user buckets for sends and group changes. */
  limiter: RateLimiter;
  sendLimit: RateLimit;
}

/** What a user may see of a conversation: from `floor` on (their joined seq in a group). */
interface Access {
  members: readonly string[];
  floor: number;
}

/** Minimum interval between forwarded `typing: start` events of one user in one conversation. */
const TYPING_START_INTERVAL_MS = 2000;

/**
 * The chat operations of the protocol, for an authenticated user: what the WebSocket gateway and
 * the HTTP API call. Authorization is decided here, once, for every transport: every op that names
 * a conversation requires current membership (and admin rights where the op needs them, checked
 * by the group's writer at the change's seq).
 */
export class Chat {
  private readonly typingStarts = new Map<string, number>();

  constructor(private readonly d: ChatDeps) {}

  /** Takes one token of the user's send bucket, or fails with `rate_limited` and the wait. */
  private async limited(user: string): Promise<void> {
    const wait = await this.d.limiter.take(`send:${user}`, 1, this.d.sendLimit);
    if (wait > 0) throw new ParleyError('rate_limited', `too many messages; retry in ${wait} ms`, wait);
  }

  /**
   * Sends a message; resolves once it is durable. Sending also marks everything before it read.
   * A direct conversation's participants are known from its id, so the message reaches its
   * writer in the same tick as the frame: one connection's pipelined sends keep their order.
   * Group membership and blocking are checked by the writer when the message gets its seq.
   */
  send(req: SendRequest): Promise<SendOutcome> {
    const direct = directMembers(req.conv);
    if (direct && !direct.includes(req.from)) return Promise.reject(cannotWrite(req.conv));
    // The bucket answers in order, so pipelined sends still reach the writer in the order sent.
    return this.limited(req.from)
      .then(() => this.d.sequencer.submit(req))
      .then((outcome) => {
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

  /** Creates a group with the creator as its admin; resolves once its first system message is durable. */
  async createGroup(user: string, device: string, name: string, members: readonly string[]): Promise<string> {
    const conv = `g:${ulid()}`;
    await this.changeGroup(user, device, conv, { op: 'create', name, members: [...members] });
    return conv;
  }

  /**
   * Applies a group change; the writer checks rights against the group at that moment. Like a
   * send, a change marks everything up to its system message read for its actor (unless the
   * actor just left).
   */
  async changeGroup(user: string, device: string, conv: string, op: GroupOp): Promise<ChangeOutcome> {
    await this.limited(user);
    const outcome = await this.d.sequencer.change(conv, user, device, op);
    const leaving = op.op === 'leave' || (op.op === 'remove' && op.users.includes(user));
    if (outcome.seq !== null && !leaving) {
      void this.d.receipts.submit(conv, { user, kind: 'read', seq: outcome.seq, implicit: true });
    }
    return outcome;
  }

  /** The group's name, creation time and members, for members. */
  async groupInfo(user: string, conv: string): Promise<GroupInfoResult> {
    const g = await this.d.sequencer.group(conv);
    if (!g?.members.has(user)) throw cannotWrite(conv);
    return {
      conv,
      name: g.name,
      created_ts: g.createdTs,
      members: [...g.members].map(([u, m]) => ({ user: u, role: m.role, joined_seq: m.joinedSeq })),
    };
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

  /** A page of a conversation's messages, ascending; a group member sees nothing before joining. */
  async history(
    user: string,
    conv: string,
    q: { before?: number; after?: number; limit: number },
  ): Promise<HistoryResult> {
    const { floor } = await this.access(user, conv);
    const query: { before?: number; after?: number; limit: number; floor: number } = {
      limit: q.limit + 1,
      floor,
    };
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
    await this.access(user, conv);
    const head = this.d.sequencer.lastSeq(conv) ?? (await this.d.messages.head(conv))?.lastSeq ?? 0;
    if (seq > head) throw badRequest(`"seq" ${seq} is beyond the conversation's last seq`);
    await this.d.receipts.submit(conv, { user, kind, seq });
  }

  /**
   * Every member's watermarks in `conv`. Read watermarks are shown only between users who both
   * share read receipts; the asker always sees their own.
   */
  async receipts(user: string, conv: string): Promise<ReceiptsResult> {
    const { members } = await this.access(user, conv);
    const marks = new Map((await this.d.conversations.watermarks(conv)).map((w) => [w.user, w]));
    const mine = (await this.d.users.settings(user)).readReceipts;
    return {
      members: await Promise.all(
        members.map(async (u) => {
          const visible = u === user || (mine && (await this.d.users.settings(u)).readReceipts);
          return {
            user: u,
            delivered: marks.get(u)?.delivered ?? 0,
            read: visible ? (marks.get(u)?.read ?? 0) : 0,
          };
        }),
      ),
    };
  }

  /**
   * Forwards a typing indicator to the other members' live devices (never stored). At most one
   * `start` per user and conversation per 2 s is forwarded; members who blocked the typist get none.
   */
  async typing(user: string, conv: string, state: 'start' | 'stop'): Promise<void> {
    const { members } = await this.access(user, conv);
    const key = `${user}\u0000${conv}`;
    const now = this.d.clock.now();
    if (state === 'start') {
      const last = this.typingStarts.get(key);
      if (last !== undefined && now - last < TYPING_START_INTERVAL_MS) return;
      if (this.typingStarts.size > 100_000) this.pruneTypingStarts(now);
      this.typingStarts.set(key, now);
    } else {
      this.typingStarts.delete(key);
    }
    const frame = JSON.stringify({ type: 'typing', conv, user, state });
    for (const m of members) {
      if (m === user || (await this.d.users.isBlocked(m, user))) continue;
      this.d.router.deliver(m, frame);
    }
  }

  /** Reads (no fields) or changes the user's settings. */
  async settings(user: string, patch: Partial<UserSettings>): Promise<UserSettings> {
    return Object.keys(patch).length === 0
      ? this.d.users.settings(user)
      : this.d.users.updateSettings(user, patch);
  }

  block(user: string, other: string): Promise<void> {
    return this.d.users.block(user, other);
  }

  unblock(user: string, other: string): Promise<void> {
    return this.d.users.unblock(user, other);
  }

  /** The user's durable inbox head (what `connect` reports). */
  inboxHead(user: string): Promise<number> {
    return this.d.inbox.head(user);
  }

  /** Throws `forbidden` unless `user` is a current member of `conv`. */
  private async access(user: string, conv: string): Promise<Access> {
    const direct = directMembers(conv);
    if (direct) {
      if (!direct.includes(user)) throw cannotWrite(conv);
      return { members: direct, floor: 1 };
    }
    const g = await this.d.sequencer.group(conv);
    const me = g?.members.get(user);
    if (!g || !me) throw cannotWrite(conv);
    return { members: [...g.members.keys()], floor: me.joinedSeq };
  }

  private pruneTypingStarts(now: number): void {
    for (const [k, t] of this.typingStarts)
      if (now - t >= TYPING_START_INTERVAL_MS) this.typingStarts.delete(k);
  }

  private async summary(user: string, conv: string, lastTs: number): Promise<ConversationSummary> {
    const [meta, marks] = await Promise.all([
      this.d.conversations.get(conv),
      this.d.conversations.watermarks(conv, [user]),
    ]);
    let lastSeq = meta?.lastSeq ?? 0;
    let floor = 1;
    let latest = Math.max(meta?.lastTs ?? 0, lastTs);
    let members = directMembers(conv)?.length ?? 0;
    let name = meta?.name;
    if (meta?.kind === 'group') {
      const records = await this.d.conversations.members(conv);
      const mine = records.find((r) => r.user === user);
      members = records.filter((r) => r.removedSeq === undefined).length;
      floor = mine?.joinedSeq ?? lastSeq + 1;
      // A removed member's view ends at their removal.
      if (mine?.removedSeq !== undefined) {
        lastSeq = Math.min(lastSeq, mine.removedSeq);
        latest = lastTs;
        members = mine.membersAtRemoval ?? members;
        name = mine.nameAtRemoval ?? name;
      }
    }
    const read = marks[0]?.read ?? 0;
    const s: ConversationSummary = {
      conv,
      kind: meta?.kind ?? 'direct',
      members,
      last_seq: lastSeq,
      last_ts: latest,
      read,
      delivered: marks[0]?.delivered ?? 0,
      unread: Math.max(0, lastSeq - Math.max(read, floor - 1)),
    };
    if (name !== undefined) s.name = name;
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
