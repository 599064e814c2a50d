import { parseConv, SYSTEM_CMID_PREFIX } from '@parley/protocol';
import type { Clock } from '../ports/clock.js';
import type { ConversationStore, GroupEffect } from '../ports/conversation-store.js';
import type {
  ChangeOutcome,
  ConversationWriter,
  GroupOp,
  GroupState,
  SendOutcome,
  SendRequest,
} from '../ports/conversation-writer.js';
import type { Logger } from '../ports/logger.js';
import type { MessageStore, StoredMessage } from '../ports/message-store.js';
import { badRequest, ParleyError } from './errors.js';
import { type PlannedChange, planChange } from './group-rules.js';

/** Checks the sequencer needs from elsewhere (blocking lives with the users). */
export interface SendPolicy {
  /** True when `blocker` has blocked `sender`. */
  isBlocked(blocker: string, sender: string): Promise<boolean>;
}

/**
 * Hears each batch of one conversation, in seq order, with each message's recipients, once it is
 * durable (or, over a store with `OrderedWrites`, once its append is issued: what a listener writes
 * then is durable only with it). The fan-out (and, embedded, the receipts' recent senders and the
 * metrics) listen to the sequencer.
 */
export interface CommittedListener {
  committed(messages: readonly StoredMessage[], recipients: readonly (readonly string[])[]): void;
}

type Item =
  | { kind: 'send'; req: SendRequest; resolve: (o: SendOutcome) => void; reject: (e: unknown) => void }
  | {
      kind: 'change';
      actor: string;
      device: string;
      op: GroupOp;
      resolve: (o: ChangeOutcome) => void;
      reject: (e: unknown) => void;
    };

/** The in-memory state of one conversation's single writer. */
interface ConversationLog {
  conv: string;
  direct: readonly string[] | null;
  loaded: boolean;
  lastSeq: number;
  lastTs: number;
  /** Groups only: the current state (null: no such group). */
  group: GroupState | null;
  /** Groups only: the active members as an array, shared by every message until membership changes. */
  recipients: readonly string[];
  queue: Item[];
  draining: boolean;
  /** Sends not yet durable, by sender and cmid: a retry joins the first attempt. */
  pending: Map<string, Promise<SendOutcome>>;
  /**
   * Sends (by sender and cmid) that `stored` found not stored since the head was last loaded: when
   * sequenced they are not looked up again. Cleared by every load and whenever the queue drains.
   */
  lookedUp: Set<string>;
}

/**
 * Body bytes one conversation puts in one append. The store commits every conversation's batch
 * together, so a burst of large messages in one conversation is cut into appends of about this
 * size: other conversations' messages wait for one such commit, not for the whole burst.
 */
const MAX_BATCH_BODY_BYTES = 1024 * 1024;

/** The oldest queued items of `c` up to about `MAX_BATCH_BODY_BYTES` of bodies (at least one). */
function takeBatch(c: ConversationLog): Item[] {
  let bytes = 0;
  let n = 0;
  while (n < c.queue.length && (n === 0 || bytes < MAX_BATCH_BODY_BYTES)) {
    const item = c.queue[n++]!;
    // UTF-16 length: close enough to bound a commit, and free to read.
    if (item.kind === 'send') bytes += item.req.body.length;
  }
  return n === c.queue.length ? c.queue.splice(0) : c.queue.splice(0, n);
}

/** How a conversation is named to someone who may not write to it: the same words whatever the reason. */
export const cannotWrite = (conv: string) => new ParleyError('forbidden', `not a member of ${conv}`);

/**
 * The single writer of each conversation in this process: assigns `seq` 1, 2, 3, … without gaps
 * to messages and to group changes (whose system messages take a seq in the same sequence), and
 * owns the group's membership, so a change takes effect exactly at its seq.
 *
 * Per conversation, submissions queue in arrival order (so one connection's sends keep their
 * order) and drain as a batch: authorization (membership, blocking) is decided at that moment,
 * duplicates (same sender and cmid) are answered with the stored seq, the rest get consecutive
 * seqs and are appended in one store call, group changes with their effects in the same durable
 * step. One append per conversation is in flight at a time, so a failed write can never leave a
 * later seq stored after a missing one; new submissions queue meanwhile and join the next batch.
 */
export class Sequencer implements ConversationWriter {
  private readonly logs = new Map<string, ConversationLog>();

  constructor(
    private readonly messages: MessageStore,
    private readonly conversations: ConversationStore,
    private readonly policy: SendPolicy,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly listeners: readonly CommittedListener[],
    private readonly options: {
      maxGroupSize: number;
      maxConversationsInMemory?: number;
      /**
       * The store's writes are durable in issue order and fail closed (`OrderedWrites`): listeners
       * are told of a batch when its append is issued, so what they write joins its commit.
       */
      storeWritesInOrder?: boolean;
    },
  ) {}

  /** Queues a message; resolves when it is durable (or was already stored). */
  submit(req: SendRequest): Promise<SendOutcome> {
    const c = this.conversation(req.conv);
    const key = `${req.from}\u0000${req.cmid}`;
    const first = c.pending.get(key);
    if (first) return first.then((o) => ({ seq: o.seq, ts: o.ts, dup: true }));
    const p = new Promise<SendOutcome>((resolve, reject) =>
      c.queue.push({ kind: 'send', req, resolve, reject }),
    );
    c.pending.set(key, p);
    const forget = () => c.pending.delete(key);
    p.then(forget, forget);
    this.kick(c);
    return p;
  }

  /**
   * The stored (seq, ts) of each of `sends` (all of conversation `conv`), or null for those not
   * stored: for a caller that answers stored sends itself before submitting the rest (the cluster's
   * sequencer stage publishes their fan-out again, in seq order). The conversation's head is
   * loaded first, so a message a dead writer left half-written is rolled forward (by
   * `MessageStore.head`) and found. A send found not stored here and submitted before the
   * conversation is reloaded is not looked up a second time: one `findByCmid` per new send.
   */
  async stored(
    conv: string,
    sends: readonly { from: string; cmid: string }[],
  ): Promise<({ seq: number; ts: number } | null)[]> {
    const c = this.conversation(conv);
    if (!c.loaded) await this.load(c);
    const found = await Promise.all(sends.map((w) => this.messages.findByCmid(conv, w.from, w.cmid)));
    // Only while the head loaded above still stands (a reload meanwhile clears the set again).
    if (c.loaded)
      for (let i = 0; i < sends.length; i++)
        if (!found[i]) c.lookedUp.add(`${sends[i]!.from}\u0000${sends[i]!.cmid}`);
    return found;
  }

  /** Queues a group change by `actor`; resolves once its system message is durable. */
  change(conv: string, actor: string, device: string, op: GroupOp): Promise<ChangeOutcome> {
    const c = this.conversation(conv);
    const p = new Promise<ChangeOutcome>((resolve, reject) =>
      c.queue.push({ kind: 'change', actor, device, op, resolve, reject }),
    );
    this.kick(c);
    return p;
  }

  /** A group's current state as its writer sees it (null: no such group). */
  async group(conv: string): Promise<GroupState | null> {
    const c = this.conversation(conv);
    if (!c.loaded) await this.load(c);
    return c.group;
  }

  /** Whether `user` is a current member of `conv` (a direct conversation's members are in its id). */
  async isMember(conv: string, user: string): Promise<boolean> {
    const c = this.conversation(conv);
    if (c.direct) return c.direct.includes(user);
    return (await this.group(conv))?.members.has(user) ?? false;
  }

  /** The last durable seq of `conv` when its writer has it in memory (no I/O), else undefined. */
  lastSeq(conv: string): number | undefined {
    const c = this.logs.get(conv);
    return c?.loaded ? c.lastSeq : undefined;
  }

  /**
   * Drops the state of the conversations `which` selects (their ownership moved elsewhere); a
   * conversation with work in flight is dropped once it is idle. Its state reloads from the store.
   */
  forget(which: (conv: string) => boolean): void {
    for (const [conv, c] of this.logs) {
      if (!which(conv)) continue;
      if (!c.draining && c.queue.length === 0 && c.pending.size === 0) this.logs.delete(conv);
      else c.loaded = false;
    }
  }

  /** Conversations with state in memory (for metrics and tests). */
  get conversationsInMemory(): number {
    return this.logs.size;
  }

  /**
   * Starts draining `c` after the current synchronous work: a caller submitting several records in
   * one pass (the cluster's sequencer stage, a socket read of pipelined frames) gets them sequenced
   * as one batch, one append, instead of the first alone and the rest after it.
   */
  private kick(c: ConversationLog): void {
    if (c.draining) return;
    c.draining = true;
    queueMicrotask(() => void this.drain(c));
  }

  private conversation(conv: string): ConversationLog {
    let c = this.logs.get(conv);
    if (!c) {
      if (this.logs.size >= (this.options.maxConversationsInMemory ?? 100_000)) this.evictIdle();
      const p = parseConv(conv);
      const direct = p?.kind === 'direct' ? (p.a === p.b ? [p.a] : [p.a, p.b]) : null;
      c = {
        conv,
        direct,
        loaded: false,
        lastSeq: 0,
        lastTs: 0,
        group: null,
        recipients: direct ?? [],
        queue: [],
        draining: false,
        pending: new Map(),
        lookedUp: new Set(),
      };
      this.logs.set(conv, c);
    }
    return c;
  }

  /** Forgets the oldest conversations with nothing queued; their state reloads from the store. */
  private evictIdle(): void {
    let toEvict = Math.max(1, Math.floor(this.logs.size / 10));
    for (const [conv, c] of this.logs) {
      if (toEvict === 0) break;
      if (!c.draining && c.queue.length === 0 && c.pending.size === 0) {
        this.logs.delete(conv);
        toEvict--;
      }
    }
  }

  private async load(c: ConversationLog): Promise<void> {
    const head = await this.messages.head(c.conv);
    c.lastSeq = head?.lastSeq ?? 0;
    c.lastTs = head?.lastTs ?? 0;
    if (!c.direct) {
      c.group = await loadGroup(this.conversations, c.conv);
      c.recipients = c.group ? [...c.group.members.keys()] : [];
    }
    // Lookups made before this head was read may predate a roll-forward: they no longer count.
    c.lookedUp.clear();
    c.loaded = true;
  }

  private async drain(c: ConversationLog): Promise<void> {
    try {
      while (c.queue.length > 0) {
        const batch = takeBatch(c);
        try {
          await this.sequence(c, batch);
        } catch (err) {
          // The write may or may not have happened: reload the state from the store next time.
          c.loaded = false;
          this.log.warn({ conv: c.conv, err: String(err) }, 'append failed');
          for (const item of batch) item.reject(err);
        }
      }
    } finally {
      c.draining = false;
      c.lookedUp.clear();
    }
  }

  private async sequence(c: ConversationLog, batch: Item[]): Promise<void> {
    if (!c.loaded) await this.load(c);
    const sends = batch.filter((i): i is Extract<Item, { kind: 'send' }> => i.kind === 'send');
    const [stored, blocked] = await Promise.all([
      // A send `stored` just found absent is not looked up again (one lookup per new send).
      Promise.all(
        sends.map((w) =>
          c.lookedUp.delete(`${w.req.from}\u0000${w.req.cmid}`)
            ? null
            : this.messages.findByCmid(c.conv, w.req.from, w.req.cmid),
        ),
      ),
      this.blockedSenders(c, sends),
    ]);
    const dups = new Map(sends.map((w, i) => [w, stored[i]] as const));

    // Work on copies: the in-memory state only moves once the batch is durable.
    let group = c.group;
    let recipients = c.recipients;
    let lastSeq = c.lastSeq;
    let lastTs = c.lastTs;
    const messages: StoredMessage[] = [];
    const messageRecipients: (readonly string[])[] = [];
    const effects: GroupEffect[] = [];
    const settle: (() => void)[] = [];
    for (const item of batch) {
      const ts = Math.max(this.clock.now(), lastTs);
      if (item.kind === 'send') {
        const dup = dups.get(item);
        if (dup) {
          item.resolve({ seq: dup.seq, ts: dup.ts, dup: true });
          continue;
        }
        const from = item.req.from;
        if (c.direct ? blocked.has(from) : !group?.members.has(from)) {
          item.reject(cannotWrite(c.conv));
          continue;
        }
        if (item.req.reply_to !== undefined && item.req.reply_to > lastSeq) {
          item.reject(badRequest('"reply_to" must be the seq of an earlier message in this conversation'));
          continue;
        }
        const m = toStored(item.req, ++lastSeq, ts);
        lastTs = ts;
        messages.push(m);
        messageRecipients.push(recipients);
        const count = recipients.length;
        settle.push(() => item.resolve({ seq: m.seq, ts: m.ts, dup: false, recipients: count }));
        continue;
      }
      let planned: PlannedChange | null;
      try {
        planned = planChange(group, c.conv, item.actor, item.op, lastSeq + 1, ts, this.options.maxGroupSize);
      } catch (err) {
        item.reject(err);
        continue;
      }
      if (!planned) {
        item.resolve({ seq: null });
        continue;
      }
      const seq = ++lastSeq;
      lastTs = ts;
      messages.push(systemMessage(c.conv, seq, ts, item.actor, item.device, planned.body));
      messageRecipients.push(planned.recipients);
      effects.push(...planned.effects);
      group = planned.next;
      recipients = [...planned.next.members.keys()];
      const reached = planned.recipients.length;
      const members = planned.next.members.size;
      settle.push(() => item.resolve({ seq, ts, recipients: reached, members }));
    }
    if (messages.length === 0) return;
    const appended = this.messages.append(messages, effects);
    // In an ordered store nothing written after this append is durable without it (and if it
    // fails, they fail): the fan-out may number and write the inbox entries now.
    const early = this.options.storeWritesInOrder === true;
    if (early) this.tell(messages, messageRecipients);
    try {
      await appended;
    } catch (err) {
      c.loaded = false;
      for (const item of batch) item.reject(err);
      return;
    }
    c.lastSeq = lastSeq;
    c.lastTs = lastTs;
    c.group = group;
    c.recipients = recipients;
    for (const s of settle) s();
    if (!early) this.tell(messages, messageRecipients);
  }

  private tell(messages: readonly StoredMessage[], recipients: readonly (readonly string[])[]): void {
    for (const l of this.listeners) l.committed(messages, recipients);
  }

  /** Senders of a direct conversation whom the other participant has blocked. */
  private async blockedSenders(
    c: ConversationLog,
    sends: readonly { req: SendRequest }[],
  ): Promise<Set<string>> {
    const out = new Set<string>();
    if (!c.direct || c.direct.length < 2 || sends.length === 0) return out;
    const [a, b] = c.direct as [string, string];
    const senders = new Set(sends.map((s) => s.req.from));
    await Promise.all(
      [...senders].map(async (s) => {
        if (await this.policy.isBlocked(s === a ? b : a, s)) out.add(s);
      }),
    );
    return out;
  }
}

function toStored(req: SendRequest, seq: number, ts: number): StoredMessage {
  const m: StoredMessage = {
    conv: req.conv,
    seq,
    ts,
    from: req.from,
    from_device: req.from_device,
    cmid: req.cmid,
    kind: req.kind,
    body: req.body,
  };
  if (req.reply_to !== undefined) m.reply_to = req.reply_to;
  if (req.media !== undefined) m.media = req.media;
  return m;
}

/** A system message: kind `system`, from the actor, body the change as a JSON string. */
function systemMessage(
  conv: string,
  seq: number,
  ts: number,
  actor: string,
  device: string,
  body: object,
): StoredMessage {
  return {
    conv,
    seq,
    ts,
    from: actor,
    from_device: device,
    cmid: `${SYSTEM_CMID_PREFIX}${seq}`,
    kind: 'system',
    body: JSON.stringify(body),
  };
}

/** A group's current state as stored (null: not a group): its metadata and active members. */
export async function loadGroup(conversations: ConversationStore, conv: string): Promise<GroupState | null> {
  const [meta, records] = await Promise.all([conversations.get(conv), conversations.members(conv)]);
  if (meta?.kind !== 'group') return null;
  return {
    conv,
    name: meta.name ?? '',
    createdTs: meta.createdTs,
    members: new Map(
      records
        .filter((r) => r.removedSeq === undefined)
        .map((r) => [r.user, { role: r.role, joinedSeq: r.joinedSeq }] as const),
    ),
  };
}
