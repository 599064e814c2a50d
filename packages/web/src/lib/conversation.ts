/**
 * One conversation as the client shows it: the summary for the chat list (last activity, unread
 * count, preview) and the timeline of the conversation view (messages by `seq`, own messages
 * waiting for the server, the other members' receipt watermarks, who is typing).
 *
 * Everything here only moves forward, so that the copies of a fact that arrive by different
 * paths (a live event, a `sync` page after a reconnect, a `history` or `conversations` reply)
 * can be merged in any order without duplicates: messages are keyed by `seq` (pending ones by
 * `cmid`), and every counter and watermark takes the maximum.
 *
 * @module
 */

import {
  type ConversationSummary,
  fromServiceAccount,
  type MessageObject,
  type ReceiptsResult,
} from '@parley/sdk';

/** How far one of this user's messages got. */
export type Tick = 'pending' | 'failed' | 'sent' | 'delivered' | 'read';

/** A message as shown: from the server (with `seq`) or written here and not yet acknowledged. */
export interface ChatMessage {
  conv: string;
  /** Absent while the message waits for the server. */
  seq?: number;
  cmid: string;
  ts: number;
  from: string;
  kind: string;
  body: string;
  reply_to?: number;
  media?: string[];
  /** From a service account (a bot of the app's backend). */
  bot?: boolean;
  /** Own messages not yet acknowledged: queued or in flight (`pending`), or refused (`failed`). */
  status?: 'pending' | 'failed';
  /** Why a send failed. */
  error?: string;
}

/** A member's watermarks: everything up to `delivered` arrived, up to `read` was read. */
export interface Watermarks {
  delivered: number;
  read: number;
}

/** How long a typing indicator stays without a new `start` (the sender repeats it every 2 s). */
export const TYPING_TTL_MS = 6000;

/** The direct conversation's other user, or the user themself for a note-to-self. */
export function peerOf(conv: string, me: string): string | undefined {
  if (!conv.startsWith('dm:')) return undefined;
  const [, a, b] = conv.split(':');
  return a === me ? b : a;
}

/** A message from the wire as the timeline keeps it. */
export function fromWire(m: MessageObject): ChatMessage {
  const msg: ChatMessage = {
    conv: m.conv,
    seq: m.seq,
    cmid: m.cmid,
    ts: m.ts,
    from: m.from,
    kind: m.kind,
    body: m.body,
  };
  if (m.reply_to !== undefined) msg.reply_to = m.reply_to;
  if (m.media !== undefined) msg.media = m.media;
  if (fromServiceAccount(m)) msg.bot = true;
  return msg;
}

/** One conversation; see the module comment. */
export class Conversation {
  readonly id: string;
  readonly kind: 'direct' | 'group';
  /** The other user of a direct conversation. */
  readonly peer: string | undefined;
  name: string | undefined;
  members = 0;
  lastSeq = 0;
  lastTs = 0;
  /** This user's read watermark: the highest over all of their devices. */
  read = 0;
  /** Messages at or below this never count as unread (before this user joined, or read). */
  floor = 0;
  /** The newest message known, for the chat list. */
  last: ChatMessage | undefined;
  /** False once this user left or was removed: the conversation is frozen at that point. */
  active = true;
  /** Bumped by every group change seen (members, name, roles): group info reloads on it. */
  changes = 0;

  /** The loaded part of the timeline, by seq: a contiguous range up to the newest message. */
  readonly messages = new Map<number, ChatMessage>();
  /** Own messages not yet acknowledged, in the order written. */
  pending: ChatMessage[] = [];
  /** Whether the newest page of history was asked for: from then on live messages join the timeline. */
  loading = false;
  loaded = false;
  /** Whether older history exists on the server. */
  hasMore = false;
  /** Whether a page of older history is being fetched. */
  loadingOlder = false;
  /** Other members' watermarks (from `receipts` and receipt events). */
  readonly watermarks = new Map<string, Watermarks>();
  /** Who is typing, until when. */
  readonly typing = new Map<string, number>();

  constructor(id: string, me: string) {
    this.id = id;
    this.kind = id.startsWith('g:') ? 'group' : 'direct';
    this.peer = peerOf(id, me);
    if (this.kind === 'direct') this.members = this.peer === me ? 1 : 2;
  }

  /** Messages of other users not read on any of this user's devices. */
  get unread(): number {
    return Math.max(0, this.lastSeq - Math.max(this.read, this.floor));
  }

  /** The name to show: a group's name, or the other user of a direct conversation. */
  get title(): string {
    return this.name ?? this.peer ?? this.id;
  }

  /** The timeline in order: acknowledged messages by seq, then pending ones. */
  timeline(): ChatMessage[] {
    const sorted = [...this.messages.values()].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    return sorted.concat(this.pending);
  }

  /** The lowest seq loaded (where the next page of older history ends). */
  get oldestSeq(): number | undefined {
    let min: number | undefined;
    for (const seq of this.messages.keys()) if (min === undefined || seq < min) min = seq;
    return min;
  }

  /** Merges a `conversations` entry (the server's view; counters only move forward). */
  applySummary(s: ConversationSummary): void {
    if (s.name !== undefined) this.name = s.name;
    this.members = s.members;
    this.lastSeq = Math.max(this.lastSeq, s.last_seq);
    this.lastTs = Math.max(this.lastTs, s.last_ts);
    this.read = Math.max(this.read, s.read);
    // The server counts unread as last_seq - max(read, joined_seq - 1): what lies below is never unread.
    this.floor = Math.max(this.floor, s.last_seq - s.unread);
  }

  /**
   * A message from the server (live, synced, or the acknowledgement of an own send). Returns
   * false for one already known.
   */
  addMessage(m: ChatMessage, me: string): boolean {
    const seq = m.seq;
    if (seq === undefined) return false;
    if (m.from === me) {
      this.pending = this.pending.filter((p) => p.cmid !== m.cmid);
      // Sending implies reading: the server moved this user's read watermark to the message.
      this.read = Math.max(this.read, seq);
    }
    this.typing.delete(m.from);
    if (seq > this.lastSeq) this.lastSeq = seq;
    if (m.ts > this.lastTs) this.lastTs = m.ts;
    if (this.last?.seq === undefined || seq >= this.last.seq) this.last = m;
    if (this.messages.has(seq)) return false;
    if (this.loading || this.loaded) this.messages.set(seq, m);
    return true;
  }

  /** A page of history: merged by seq. */
  addHistory(messages: MessageObject[], me: string): void {
    for (const m of messages) this.addMessage(fromWire(m), me);
  }

  /** An own message written here, shown at once as pending. */
  addPending(m: ChatMessage): void {
    this.pending.push(m);
    this.last = m;
  }

  /** A receipt: another member's watermark, or (`user` = this user) another device read. */
  addReceipt(user: string, kind: 'delivered' | 'read', seq: number, me: string): void {
    if (user === me) {
      if (kind === 'read') this.read = Math.max(this.read, seq);
      return;
    }
    const w = this.watermarks.get(user) ?? { delivered: 0, read: 0 };
    if (kind === 'read') w.read = Math.max(w.read, seq);
    else w.delivered = Math.max(w.delivered, seq);
    // Read implies delivered.
    w.delivered = Math.max(w.delivered, w.read);
    this.watermarks.set(user, w);
  }

  /** The reply of `receipts`: every member's watermarks. */
  applyReceipts(r: ReceiptsResult, me: string): void {
    for (const m of r.members) {
      this.addReceipt(m.user, 'delivered', m.delivered, me);
      this.addReceipt(m.user, 'read', m.read, me);
    }
  }

  /** How far an own message got: read or delivered once every other member's watermark covers it. */
  tick(m: ChatMessage): Tick {
    if (m.status) return m.status;
    const seq = m.seq ?? 0;
    const others = [...this.watermarks.values()];
    if (others.length === 0) return 'sent';
    if (others.every((w) => w.read >= seq)) return 'read';
    if (others.every((w) => w.delivered >= seq)) return 'delivered';
    return 'sent';
  }

  /** Typing indicators still standing at `now`, oldest first. */
  typists(now: number): string[] {
    const users: string[] = [];
    for (const [user, until] of this.typing) {
      if (until > now) users.push(user);
      else this.typing.delete(user);
    }
    return users;
  }

  /** Forgets the loaded timeline (after inbox events were lost for good): it is loaded again. */
  resetTimeline(): void {
    this.messages.clear();
    this.loading = false;
    this.loaded = false;
    this.hasMore = false;
  }
}
