import {
  type ConversationSummary,
  directMembers,
  encodeEvent,
  type GroupInfoResult,
  type HistoryResult,
  type InboxEvent,
  type MessageObject,
  type ReceiptsResult,
  type SyncResult,
} from '@parley/protocol';
import { ulid } from 'ulid';
import type { Clock } from '../ports/clock.js';
import type { ConversationStore } from '../ports/conversation-store.js';
import type {
  ChangeOutcome,
  ConversationWriter,
  GroupOp,
  SendOutcome,
  SendRequest,
} from '../ports/conversation-writer.js';
import type { InboxEntry, InboxStore } from '../ports/inbox-store.js';
import type { MessageStore, PageQuery } from '../ports/message-store.js';
import type { Router } from '../ports/router.js';
import type { SendFilter } from '../ports/send-filter.js';
import type { UserSettings } from '../ports/user-store.js';
import { badRequest, ParleyError } from './errors.js';
import type { GroupAdmission, JoinOutcome } from './group-admission.js';
import type { MediaService } from './media.js';
import type { ReceiptService } from './receipts.js';
import { cannotWrite } from './sequencer.js';
import type { UserDirectory } from './users.js';
import { readCost, type WorkBudget } from './work-budget.js';

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
  /** Who may put whom in a group, and invites (group-admission.ts). */
  admission: GroupAdmission;
  /** Per-user budgets for every kind of work (sends, fan-out, reads, typing). */
  budget: WorkBudget;
  /** Bytes one read reply may hold: past it the reply stops early with `more: true`. */
  maxReplyBytes: number;
  /** The largest group: what a send to a group whose size is not known yet is charged. */
  maxGroupSize: number;
  /** Checks and records the media a message lists (absent: sends listing media are refused). */
  media?: Pick<MediaService, 'attach'>;
  /** The operator's before-send check (absent: none). */
  filter?: SendFilter;
}

/** What a user may see of a conversation: from `floor` on (their joined seq in a group). */
interface Access {
  members: readonly string[];
  floor: number;
}

/** Groups whose size a process remembers to charge sends by (a number each). */
const MAX_KNOWN_GROUP_SIZES = 100_000;

/**
 * Messages read from the store per step while a reply fills up: bounds what a step loads, and
 * between steps other work runs (embedded reads are synchronous: one large reply must not hold
 * the event loop for its whole length).
 */
const READ_CHUNK = 16;

/** Lets I/O and other connections' work run before going on. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The chat operations of the protocol, for an authenticated user: what the WebSocket gateway and
 * the HTTP API call. Authorization is decided here, once, for every transport: every op that names
 * a conversation requires current membership (and admin rights where the op needs them, checked
 * by the group's writer at the change's seq).
 */
export class Chat {
  private readonly typingGate = new TypingGate();
  /** Last known member count of groups, to charge a send's fan-out before it is sequenced. */
  private readonly groupSizes = new Map<string, number>();
  /**
   * Per sender and conversation, resolved when the latest send that had to wait (for its media
   * to be checked) has started: later sends of that pair start after it, so they keep their order.
   */
  private readonly waitingSends = new Map<string, Promise<void>>();

  constructor(private readonly d: ChatDeps) {}

  /** Takes one unit of the user's send budget, or fails with `rate_limited` and the wait. */
  private async limited(user: string): Promise<void> {
    await this.d.budget.take('send', user, 1);
  }

  /**
   * Charges a send's fan-out before it is sequenced: a direct conversation's members, a group's
   * last known size (the largest a group may be when unknown). Resolves with what was charged.
   */
  private async chargeFanout(user: string, conv: string, direct: readonly string[] | null): Promise<number> {
    const cost = direct ? direct.length : (this.groupSizes.get(conv) ?? this.d.maxGroupSize);
    return this.d.budget.take('fanout', user, cost);
  }

  /** Remembers a group's size from a send's outcome and gives back what was overcharged. */
  private settleFanout(user: string, conv: string, charged: number, outcome: SendOutcome): void {
    const actual = outcome.dup ? 0 : (outcome.recipients ?? charged);
    if (!directMembers(conv) && outcome.recipients !== undefined)
      this.rememberGroupSize(conv, outcome.recipients);
    this.d.budget.refund('fanout', user, charged - actual);
  }

  /**
   * Sends a message; resolves once it is durable. Sending also marks everything before it read.
   * A direct conversation's participants are known from its id, so the message reaches its
   * writer in the same tick as the frame: one connection's pipelined sends keep their order.
   * Group membership and blocking are checked by the writer when the message gets its seq. A
   * send listing media waits for them to be checked (`MediaService.attach`), and with a filter
   * every send waits for its verdict; the sender's later sends to that conversation wait for it
   * to start, so they still keep their order.
   */
  send(req: SendRequest): Promise<SendOutcome> {
    const key = `${req.from}\u0000${req.conv}`;
    const before = this.waitingSends.get(key);
    const media = req.media ?? [];
    const filter = this.d.filter;
    if (media.length === 0 && before === undefined && filter === undefined) return this.sendNow(req, false);
    if (media.length > 0 && !this.d.media)
      return Promise.reject(new ParleyError('bad_request', 'this server does not store media'));
    let started!: () => void;
    const turn = new Promise<void>((resolve) => {
      started = resolve;
    });
    this.waitingSends.set(key, turn);
    const start = () => {
      started();
      if (this.waitingSends.get(key) === turn) this.waitingSends.delete(key);
    };
    const attached = media.length > 0 ? this.d.media!.attach(req.from, req.conv, media) : undefined;
    // The send budget before the filter: nobody makes the operator's hook work past their budget.
    const checked = filter ? this.limited(req.from).then(() => this.filtered(filter, req)) : undefined;
    return Promise.all([before, attached, checked]).then(
      () => {
        start();
        return this.sendNow(req, filter !== undefined);
      },
      (err: unknown) => {
        start();
        throw err;
      },
    );
  }

  /** The filter's verdict on a message: refused (`forbidden`, with its reason) or `unavailable`. */
  private async filtered(filter: SendFilter, req: SendRequest): Promise<void> {
    const v = await filter.check(req);
    if (v.allow) return;
    if ('unavailable' in v)
      throw new ParleyError('unavailable', 'the message filter is unavailable; retry', 1000);
    throw new ParleyError('forbidden', `message refused: ${v.reason}`);
  }

  /**
   * Sends a message whose media (if any) was checked: budgets (the send budget unless it was
   * taken before the filter), then the conversation's writer.
   */
  private sendNow(req: SendRequest, sendCharged: boolean): Promise<SendOutcome> {
    const direct = directMembers(req.conv);
    if (direct && !direct.includes(req.from)) return Promise.reject(cannotWrite(req.conv));
    // The budgets answer in order, so pipelined sends still reach the writer in the order sent.
    let charged = 0;
    return (sendCharged ? Promise.resolve() : this.limited(req.from))
      .then(() =>
        this.chargeFanout(req.from, req.conv, direct).catch((err: unknown) => {
          this.d.budget.refund('send', req.from, 1);
          throw err;
        }),
      )
      .then((cost) => {
        charged = cost;
        return this.d.sequencer.submit(req).catch((err: unknown) => {
          this.d.budget.refund('fanout', req.from, charged);
          throw err;
        });
      })
      .then((outcome) => {
        this.settleFanout(req.from, req.conv, charged, outcome);
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
    const charged = await this.d.budget.take('fanout', user, this.changeFanout(conv, op));
    let outcome: ChangeOutcome;
    try {
      outcome = await this.d.admission.change(user, device, conv, op);
    } catch (err) {
      this.d.budget.refund('fanout', user, charged);
      throw err;
    }
    this.settleChange(user, conv, charged, outcome);
    const leaving =
      op.op === 'leave' || op.op === 'delete' || (op.op === 'remove' && op.users.includes(user));
    if (outcome.seq !== null && !leaving) {
      void this.d.receipts.submit(conv, { user, kind: 'read', seq: outcome.seq, implicit: true });
    }
    return outcome;
  }

  /** Remembers the group's size after a change and gives back what its fan-out was overcharged. */
  private settleChange(user: string, conv: string, charged: number, outcome: ChangeOutcome): void {
    if (outcome.seq === null) {
      this.d.budget.refund('fanout', user, charged);
      return;
    }
    if (outcome.members !== undefined) this.rememberGroupSize(conv, outcome.members);
    this.d.budget.refund('fanout', user, charged - (outcome.recipients ?? charged));
  }

  private rememberGroupSize(conv: string, members: number): void {
    if (this.groupSizes.size >= MAX_KNOWN_GROUP_SIZES) this.groupSizes.clear();
    this.groupSizes.set(conv, members);
  }

  /** A group change's fan-out: its system message goes to the members after it (and anyone removed). */
  private changeFanout(conv: string, op: GroupOp): number {
    if (op.op === 'create') return op.members.length + 1;
    const known = this.groupSizes.get(conv) ?? this.d.maxGroupSize;
    return op.op === 'add' ? Math.min(known + op.users.length, this.d.maxGroupSize) : known;
  }

  /** The group's name, creation time and members, for members. */
  async groupInfo(user: string, conv: string): Promise<GroupInfoResult> {
    const g = await this.d.sequencer.group(conv);
    if (!g?.members.has(user)) throw cannotWrite(conv);
    await this.d.budget.take('read', user, readCost(g.members.size, 0));
    return {
      conv,
      name: g.name,
      created_ts: g.createdTs,
      // In the order they joined; those who joined together (a group's creation) by user id, so
      // every process lists them alike whether it holds the group in memory or loads it.
      members: [...g.members]
        .map(([u, m]) => ({ user: u, role: m.role, joined_seq: m.joinedSeq }))
        .sort((x, y) => x.joined_seq - y.joined_seq || (x.user < y.user ? -1 : x.user > y.user ? 1 : 0)),
    };
  }

  /**
   * Inbox events after `after`, oldest first; `gone` when some of them were pruned. The reply
   * stops at `limit` events or at the reply byte budget, whichever comes first (`more` then).
   */
  async sync(user: string, after: number, limit: number): Promise<SyncResult> {
    // The budget first: a refused read costs no store lookup.
    await this.d.budget.take('read', user, 1);
    const head = await this.d.inbox.head(user);
    if (after > head) throw badRequest(`"after" is beyond the inbox head ${head}`);
    if (after < head && (await this.d.inbox.floor(user)) > after + 1) {
      throw new ParleyError('gone', 'inbox events after this cursor have expired; resync from conversations');
    }
    const entries = await this.d.inbox.read(user, after, limit + 1);
    let more = entries.length > limit;
    if (more) entries.length = limit;
    const page = await this.events(entries);
    more ||= page.truncated;
    this.d.budget.charge('read', user, readCost(page.events.length, page.bytes) - 1);
    return {
      events: page.events,
      inbox_head: Math.max(head, page.lastInbox),
      more,
    };
  }

  /** A page of a conversation's messages, ascending; a group member sees nothing before joining. */
  async history(
    user: string,
    conv: string,
    q: { before?: number; after?: number; limit: number },
  ): Promise<HistoryResult> {
    await this.d.budget.take('read', user, 1);
    const { floor } = await this.access(user, conv);
    const page =
      q.after !== undefined
        ? await this.pageForward(conv, q.after, q.limit, floor)
        : await this.pageBackward(conv, q.before, q.limit, floor);
    this.d.budget.charge('read', user, readCost(page.messages.length, page.bytes) - 1);
    return { messages: page.messages, more: page.more };
  }

  /** Up to `limit` messages after `after`, ascending, within the reply budget. */
  private async pageForward(conv: string, after: number, limit: number, floor: number): Promise<MessagePage> {
    const fill = new ReplyFill<MessageObject>(this.d.maxReplyBytes);
    let cursor = after;
    while (fill.items.length < limit && !fill.full) {
      if (fill.items.length > 0) await nextTurn();
      const want = Math.min(limit - fill.items.length, READ_CHUNK) + 1;
      const chunk = await this.d.messages.page(conv, { after: cursor, limit: want, floor });
      for (const m of chunk) if (fill.items.length < limit && !fill.add(m)) break;
      if (chunk.length < want) return { messages: fill.items, more: fill.full, bytes: fill.bytes };
      cursor = fill.items[fill.items.length - 1]!.seq;
    }
    return { messages: fill.items, more: true, bytes: fill.bytes };
  }

  /** Up to `limit` messages before `before` (the newest when absent), ascending, within the reply budget. */
  private async pageBackward(
    conv: string,
    before: number | undefined,
    limit: number,
    floor: number,
  ): Promise<MessagePage> {
    const fill = new ReplyFill<MessageObject>(this.d.maxReplyBytes);
    let cursor = before;
    while (fill.items.length < limit && !fill.full) {
      if (fill.items.length > 0) await nextTurn();
      const want = Math.min(limit - fill.items.length, READ_CHUNK);
      const query: PageQuery = { limit: want + 1, floor };
      if (cursor !== undefined) query.before = cursor;
      const chunk = await this.d.messages.page(conv, query);
      const older = chunk.length > want;
      if (older) chunk.shift();
      for (let i = chunk.length - 1; i >= 0; i--) if (!fill.add(chunk[i]!)) break;
      if (!older) return { messages: fill.items.reverse(), more: fill.full, bytes: fill.bytes };
      cursor = chunk[0]!.seq;
    }
    return { messages: fill.items.reverse(), more: true, bytes: fill.bytes };
  }

  /** The user's conversations by last activity, newest first. */
  async conversations(
    user: string,
    limit: number,
    beforeTs?: number,
  ): Promise<{ conversations: ConversationSummary[]; more: boolean }> {
    await this.d.budget.take('read', user, 1);
    const rows = await this.d.inbox.conversations(user, limit + 1, beforeTs);
    const more = rows.length > limit;
    if (more) rows.length = limit;
    this.d.budget.charge('read', user, rows.length);
    const conversations = await Promise.all(rows.map((r) => this.summary(user, r.conv, r.lastTs)));
    return { conversations, more };
  }

  /** The user's unread messages over their `limit` most recent conversations: a push's badge. */
  async unreadCount(user: string, limit = 50): Promise<number> {
    const rows = await this.d.inbox.conversations(user, limit);
    const summaries = await Promise.all(rows.map((r) => this.summary(user, r.conv, r.lastTs)));
    return summaries.reduce((n, c) => n + c.unread, 0);
  }

  /** Applies a receipt from one of the user's devices. */
  async receipt(user: string, conv: string, kind: 'delivered' | 'read', seq: number): Promise<void> {
    await this.access(user, conv);
    if (!(await this.storedUpTo(conv, seq)))
      throw badRequest(`"seq" ${seq} is beyond the conversation's last seq`);
    await this.d.receipts.submit(conv, { user, kind, seq });
  }

  /**
   * Whether `conv` has messages up to `seq`: from the writer's memory when it has the conversation,
   * else from the recorded head (one read: a message's head is recorded before its fan-out, so any
   * seq a client was given is covered), and only past that from the store's head, which also finds
   * messages a writer stored but had not recorded yet.
   */
  private async storedUpTo(conv: string, seq: number): Promise<boolean> {
    const known = this.d.sequencer.lastSeq(conv);
    if (known !== undefined && seq <= known) return true;
    if (seq <= ((await this.d.conversations.get(conv))?.lastSeq ?? 0)) return true;
    return seq <= ((await this.d.messages.head(conv))?.lastSeq ?? 0);
  }

  /**
   * Every member's watermarks in `conv`. Read watermarks are shown only between users who both
   * share read receipts; the asker always sees their own.
   */
  async receipts(user: string, conv: string): Promise<ReceiptsResult> {
    const { members } = await this.access(user, conv);
    await this.d.budget.take('read', user, readCost(members.length, 0));
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
   * Forwards a typing indicator to the other members' live devices (never stored), as the typing
   * gate allows: at most one `start` per user and conversation per 2 s, and a `stop` only after a
   * forwarded `start`. Every frame delivered counts against the typist's typing budget (past it
   * the event is refused with `rate_limited`); members who blocked the typist get none.
   */
  async typing(user: string, conv: string, state: 'start' | 'stop'): Promise<void> {
    const { members } = await this.access(user, conv);
    const key = `${user}\u0000${conv}`;
    if (!this.typingGate.allows(key, state, this.d.clock.now())) return;
    const recipients: string[] = [];
    for (const m of members) {
      if (m !== user && !(await this.d.users.isBlocked(m, user))) recipients.push(m);
    }
    await this.d.budget.take('typing', user, recipients.length);
    if (!this.typingGate.record(key, state, this.d.clock.now())) return;
    const frame = encodeEvent({ type: 'typing', conv, user, state });
    for (const m of recipients) this.d.router.deliver(m, frame);
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

  /**
   * The events of inbox entries, in order, loading message bodies a chunk at a time and stopping
   * once the reply byte budget is reached (`truncated`), so one reply never holds more than that.
   */
  private async events(entries: readonly InboxEntry[]): Promise<InboxPage> {
    const fill = new ReplyFill<InboxEvent>(this.d.maxReplyBytes);
    let lastInbox = 0;
    for (let start = 0; start < entries.length; start += READ_CHUNK) {
      if (start > 0) await nextTurn();
      const chunk = entries.slice(start, start + READ_CHUNK);
      const bodies = await this.d.messages.getMany(chunk.filter((e) => e.type === 'message'));
      const byRef = new Map<string, MessageObject>();
      for (const m of bodies) if (m) byRef.set(`${m.seq}\u0000${m.conv}`, m);
      for (const e of chunk) {
        const event = toEvent(e, byRef);
        if (event && !fill.add(event))
          return { events: fill.items, bytes: fill.bytes, lastInbox, truncated: true };
        lastInbox = e.inbox;
      }
    }
    return { events: fill.items, bytes: fill.bytes, lastInbox, truncated: false };
  }

  /** Makes an invite code to a group (admins only). */
  createInvite(
    user: string,
    conv: string,
    options: { expiresInMs?: number; maxUses?: number },
  ): Promise<{ code: string; expires_ts: number }> {
    return this.d.admission.createInvite(user, conv, options);
  }

  /** Revokes an invite code of a group (admins only; idempotent). */
  revokeInvite(user: string, conv: string, code: string): Promise<void> {
    return this.d.admission.revokeInvite(user, conv, code);
  }

  /**
   * Joins the group of an invite code. Like any group change it takes a unit of the joiner's send
   * budget and marks everything up to its system message read for the joiner.
   */
  async joinGroup(user: string, device: string, code: string): Promise<JoinOutcome> {
    await this.limited(user);
    const outcome = await this.d.admission.join(user, device, code);
    if (outcome.seq !== null) {
      void this.d.receipts.submit(outcome.conv, { user, kind: 'read', seq: outcome.seq, implicit: true });
    }
    return outcome;
  }
}

/** A page of history within the reply budget. */
interface MessagePage {
  messages: MessageObject[];
  more: boolean;
  bytes: number;
}

/** Inbox events within the reply budget; `lastInbox` is the last entry covered (skipped ones too). */
interface InboxPage {
  events: InboxEvent[];
  bytes: number;
  lastInbox: number;
  truncated: boolean;
}

/** An inbox entry as the event a client sees; undefined for a message whose body is gone. */
function toEvent(e: InboxEntry, bodies: ReadonlyMap<string, MessageObject>): InboxEvent | undefined {
  if (e.type === 'receipt') {
    return {
      type: 'receipt',
      inbox: e.inbox,
      conv: e.conv,
      user: e.actor,
      kind: e.kind,
      seq: e.seq,
      ts: e.ts,
    };
  }
  const m = bodies.get(`${e.seq}\u0000${e.conv}`);
  return m ? { type: 'message', inbox: e.inbox, ...m } : undefined;
}

/** Printable ASCII without `"` and `\\`: a string of only these is its own JSON, plus the quotes. */
const JSON_VERBATIM = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * The UTF-8 size of an event's JSON, without encoding a message body that needs no escaping (most
 * do not): the body is most of the bytes, and encoding it twice (here and in the reply) doubled
 * the cost of a large read.
 */
function jsonBytes(item: object): number {
  const body = (item as { body?: unknown }).body;
  if (typeof body === 'string' && body.length > 256 && JSON_VERBATIM.test(body)) {
    return Buffer.byteLength(JSON.stringify({ ...item, body: '' })) + body.length;
  }
  return Buffer.byteLength(JSON.stringify(item));
}

/**
 * The items of one reply, up to a byte budget measured on their JSON: the first item always fits
 * (a body is far smaller than the budget), and once the next would pass it the reply is full.
 */
class ReplyFill<T extends object> {
  readonly items: T[] = [];
  bytes = 0;
  full = false;

  constructor(private readonly budget: number) {}

  /** Adds `item` unless it would pass the budget; false (and full) when it did not fit. */
  add(item: T): boolean {
    const size = jsonBytes(item) + 1;
    if (this.items.length > 0 && this.bytes + size > this.budget) {
      this.full = true;
      return false;
    }
    this.items.push(item);
    this.bytes += size;
    return true;
  }
}

/**
 * Which typing events are forwarded, per user and conversation: a `start` at most once per
 * `START_INTERVAL_MS`, a `stop` only while a forwarded `start` stands (so alternating start and
 * stop cannot bypass the interval, and a stream of `stop`s forwards nothing). Bounded: entries
 * whose interval passed are dropped when the table is full, then the oldest.
 */
export class TypingGate {
  static readonly START_INTERVAL_MS = 2000;
  private static readonly MAX_ENTRIES = 100_000;
  private readonly entries = new Map<string, { startedAt: number; shown: boolean }>();

  /** Whether an event would be forwarded now (changes nothing). */
  allows(key: string, state: 'start' | 'stop', now: number): boolean {
    const e = this.entries.get(key);
    if (state === 'stop') return e?.shown === true;
    return !e || now - e.startedAt >= TypingGate.START_INTERVAL_MS;
  }

  /** Records a forwarded event; false when it may no longer be forwarded (another got there first). */
  record(key: string, state: 'start' | 'stop', now: number): boolean {
    if (!this.allows(key, state, now)) return false;
    const e = this.entries.get(key);
    if (state === 'stop') {
      e!.shown = false;
      return true;
    }
    if (!e && this.entries.size >= TypingGate.MAX_ENTRIES) this.prune(now);
    this.entries.delete(key); // re-inserted: the map stays in order of the last start
    this.entries.set(key, { startedAt: now, shown: true });
    return true;
  }

  private prune(now: number): void {
    for (const [k, e] of this.entries) {
      if (now - e.startedAt >= TypingGate.START_INTERVAL_MS) this.entries.delete(k);
    }
    for (const k of this.entries.keys()) {
      if (this.entries.size < TypingGate.MAX_ENTRIES) break;
      this.entries.delete(k);
    }
  }
}
