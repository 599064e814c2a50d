import type {
  ConversationMeta,
  ConversationStore,
  GroupEffect,
  MemberRecord,
  Watermark,
} from '../../ports/conversation-store.js';
import type { DeviceQueue } from '../../ports/device-queue.js';
import {
  type DeviceRecord,
  type DeviceStore,
  MAX_DEVICES_PER_USER,
  REVOCATION_RETENTION_MS,
} from '../../ports/device-store.js';
import type { EpochInbox, EpochMessages, PartitionEpochs } from '../../ports/epoch-fencing.js';
import type { FanoutRecovery, UnfannedRange } from '../../ports/fanout-recovery.js';
import type { InboxPruning } from '../../ports/inbox-pruning.js';
import {
  type FannedMark,
  fanoutEntries,
  type InboxEntry,
  type InboxStore,
  type UserConversation,
} from '../../ports/inbox-store.js';
import type { Invite, InviteStore } from '../../ports/invite-store.js';
import type { DeadLetterStore } from '../../ports/job-queue.js';
import type { KeyDirectory } from '../../ports/key-directory.js';
import type { MediaIndex } from '../../ports/media-index.js';
import type { MessageStore, PageQuery, StoredMessage } from '../../ports/message-store.js';
import { type PushRegistration, registrationJson } from '../../ports/push-provider.js';
import type {
  PushBatchHandler,
  PushDeadLetters,
  PushJob,
  PushQueue,
  PushQueueSubscription,
} from '../../ports/push-queue.js';
import { DEFAULT_SETTINGS, type UserSettings, type UserStore } from '../../ports/user-store.js';
import type { WebhookDeadLetters } from '../../ports/webhooks.js';
import { MemoryDeviceQueue } from './memory-device-queue.js';
import { MemoryKeyDirectory } from './memory-keys.js';
import { MemoryMediaIndex } from './memory-media-index.js';
import { MemoryPartitionEpochs } from './memory-partition-epochs.js';

interface ConvState {
  meta: ConversationMeta;
  messages: Map<number, StoredMessage>;
  byCmid: Map<string, StoredMessage>;
  fannedSeq: number;
  members: Map<string, MemberRecord>;
}

interface UserState {
  head: number;
  entries: InboxEntry[];
  /** Per conversation of a message entry: its latest ts and highest seq. */
  conversations: Map<string, { lastTs: number; lastSeq: number }>;
}

/** Jobs handed to one handler call at most. */
export const PUSH_BATCH_SIZE = 256;
/** Batches one consumer has in flight at most, so a slow one holds no others. */
export const PUSH_BATCHES_IN_FLIGHT = 4;
/** How long the jobs of a batch whose handler rejected wait before they are handed out again. */
const RETRY_AFTER_REJECT_MS = 1_000;

interface DeviceState {
  lastSeen: number;
  push?: PushRegistration;
}

/** Letters of one kind by id; copies go in and out, so callers never share a stored letter. */
class MemoryDeadLetters<L extends { id: string }> implements DeadLetterStore<L> {
  private readonly letters = new Map<string, L>();

  async add(letters: readonly L[]): Promise<void> {
    for (const l of letters) this.letters.set(l.id, structuredClone(l));
  }

  async list(limit: number, after?: string): Promise<L[]> {
    return [...this.letters.values()]
      .filter((l) => after === undefined || l.id > after)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, limit)
      .map((l) => structuredClone(l));
  }

  async get(id: string): Promise<L | null> {
    const l = this.letters.get(id);
    return l ? structuredClone(l) : null;
  }

  async remove(ids: readonly string[]): Promise<number> {
    let n = 0;
    for (const id of new Set(ids)) if (this.letters.delete(id)) n++;
    return n;
  }
}

/**
 * The in-memory push queue, with the embedded queue's behaviour: one queued job per user, device
 * and conversation (a later job replaces a queued one and takes its place at the end of the queue;
 * an older one is dropped), batches of up to `PUSH_BATCH_SIZE` jobs in queue order, up to
 * `PUSH_BATCHES_IN_FLIGHT` batches in flight per consumer, and no job of a user handed out while
 * one of their batches is in flight (so a user's jobs are handled in order). A job leaves the
 * queue when its batch's handler resolves; a batch whose handler rejects is handed out again after
 * `RETRY_AFTER_REJECT_MS` (at once to another consumer when this one closes).
 */
export class MemoryPushQueue implements PushQueue {
  private nextId = 1;
  /** Queued jobs by id; a Map iterates in insertion order, which is id order. */
  private readonly jobs = new Map<number, PushJob>();
  /** `user device conv` → the id of its queued job. */
  private readonly byKey = new Map<string, number>();
  /** Users with a batch in flight or waiting to be retried. */
  private readonly busy = new Set<string>();
  private readonly consumers = new Set<MemoryPushConsumer>();
  private waking = false;

  async enqueue(jobs: readonly PushJob[]): Promise<void> {
    for (const j of jobs) {
      const key = `${j.user}\u0000${j.device}\u0000${j.conv}`;
      const oldId = this.byKey.get(key);
      const old = oldId === undefined ? undefined : this.jobs.get(oldId);
      if (old && old.inbox >= j.inbox) continue;
      if (oldId !== undefined) this.jobs.delete(oldId);
      const id = this.nextId++;
      this.jobs.set(id, { ...j });
      this.byKey.set(key, id);
    }
    this.wake();
  }

  async consume(handler: PushBatchHandler): Promise<PushQueueSubscription> {
    const consumer = new MemoryPushConsumer(this, handler);
    this.consumers.add(consumer);
    this.wake();
    return {
      close: async () => {
        this.consumers.delete(consumer);
        await consumer.close();
        this.wake();
      },
    };
  }

  /**
   * Simulates a crash and restart of the process: consumers stop at once, their handlers are not
   * waited for and what they settle later is ignored, and every job not yet done is handed out
   * again to the next consumer (as a durable queue does after a restart).
   */
  restart(): void {
    for (const c of this.consumers) c.abandon();
    this.consumers.clear();
    this.busy.clear();
  }

  /** Jobs queued (handed out or not). */
  get size(): number {
    return this.jobs.size;
  }

  /** @internal Up to `limit` queued jobs of users not busy, in queue order, marking their users busy. */
  take(limit: number): { ids: number[]; jobs: PushJob[]; users: string[] } {
    const ids: number[] = [];
    const jobs: PushJob[] = [];
    const users = new Set<string>();
    for (const [id, j] of this.jobs) {
      if (jobs.length >= limit) break;
      if (this.busy.has(j.user)) continue;
      ids.push(id);
      jobs.push({ ...j });
      users.add(j.user);
    }
    for (const u of users) this.busy.add(u);
    return { ids, jobs, users: [...users] };
  }

  /** @internal Deletes handed-out jobs by id (a job replaced since has a new id and stays). */
  done(ids: readonly number[]): void {
    for (const id of ids) {
      const j = this.jobs.get(id);
      if (!j) continue;
      this.jobs.delete(id);
      const key = `${j.user}\u0000${j.device}\u0000${j.conv}`;
      if (this.byKey.get(key) === id) this.byKey.delete(key);
    }
  }

  /** @internal */
  release(users: readonly string[]): void {
    for (const u of users) this.busy.delete(u);
  }

  /**
   * @internal Lets every consumer look for jobs, soon: in a later turn of the event loop, so that
   * wakes coming together look once, and a handler that settles at once never starves the loop.
   */
  wake(): void {
    if (this.waking) return;
    this.waking = true;
    setImmediate(() => {
      this.waking = false;
      for (const c of this.consumers) c.pump();
    });
  }
}

class MemoryPushConsumer {
  private closed = false;
  private abandoned = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly retries = new Map<NodeJS.Timeout, readonly string[]>();

  constructor(
    private readonly queue: MemoryPushQueue,
    private readonly handler: PushBatchHandler,
  ) {}

  pump(): void {
    while (!this.closed && this.inFlight.size < PUSH_BATCHES_IN_FLIGHT) {
      const taken = this.queue.take(PUSH_BATCH_SIZE);
      if (taken.jobs.length === 0) return;
      this.run(taken);
    }
  }

  private run({ ids, jobs, users }: { ids: number[]; jobs: PushJob[]; users: string[] }): void {
    const batch = (async () => {
      let done = false;
      try {
        const idOf = new Map(jobs.map((j, i) => [j, ids[i]!]));
        await this.handler(jobs, (settled) => {
          if (!this.abandoned) this.queue.done(settled.flatMap((j) => idOf.get(j) ?? []));
        });
        done = true;
      } catch {
        // The handler rejected: the jobs stay queued.
      }
      if (this.abandoned) return;
      if (done) this.queue.done(ids);
      if (done || this.closed) this.queue.release(users);
      else {
        const timer = setTimeout(() => {
          this.retries.delete(timer);
          this.queue.release(users);
          this.queue.wake();
        }, RETRY_AFTER_REJECT_MS);
        this.retries.set(timer, users);
      }
    })();
    this.inFlight.add(batch);
    void batch.finally(() => {
      this.inFlight.delete(batch);
      this.queue.wake();
    });
  }

  async close(): Promise<void> {
    this.stop();
    for (const users of this.retries.values()) this.queue.release(users);
    this.retries.clear();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  abandon(): void {
    this.abandoned = true;
    this.stop();
    this.retries.clear();
  }

  private stop(): void {
    this.closed = true;
    for (const timer of this.retries.keys()) clearTimeout(timer);
  }
}

/**
 * The in-memory adapter of the store ports: the reference behaviour the conformance suites pin
 * down, and a fast store for domain tests. Not durable; never used by `parley serve`. It offers
 * both capabilities, `FanoutRecovery` and `InboxPruning`, as the embedded store does, and the
 * push ports: devices, the push queue (`MemoryPushQueue`) and dead letters (of push jobs and of
 * webhook deliveries, `MemoryDeadLetters`); and the end-to-end encryption key directory, the
 * `to_device` queues and the media index (each in a file of its own).
 */
export class MemoryStore {
  readonly messages: MessageStore;
  readonly inbox: InboxStore;
  /** Lists the conversations whose fan-out marks lag their log (crash recovery). */
  readonly fanoutRecovery: FanoutRecovery;
  /** Deletes inbox entries past the retention. */
  readonly inboxPruning: InboxPruning;
  /** Inbox entries written under ownership epochs, published by heads (cluster mode's fencing). */
  readonly epochInbox: EpochInbox;
  /** Messages written under ownership epochs, published by their derived state (cluster mode's fencing). */
  readonly epochMessages: EpochMessages;
  /** Ownership epochs of stage partitions (cluster mode on in-process adapters). */
  readonly stageEpochs: PartitionEpochs = new MemoryPartitionEpochs();
  readonly conversations: ConversationStore;
  readonly users: UserStore;
  readonly invites: InviteStore;
  readonly devices: DeviceStore;
  readonly pushQueue = new MemoryPushQueue();
  readonly deadLetters: PushDeadLetters = new MemoryDeadLetters();
  readonly webhookDeadLetters: WebhookDeadLetters = new MemoryDeadLetters();
  readonly keys: KeyDirectory = new MemoryKeyDirectory();
  readonly deviceQueue: DeviceQueue = new MemoryDeviceQueue();
  readonly media: MediaIndex = new MemoryMediaIndex();
  /** user → device → its state. */
  private readonly devicesByUser = new Map<string, Map<string, DeviceState>>();
  /** `user device` → when the device was last revoked. */
  private readonly revocations = new Map<string, number>();
  /** user → conv → when the mute ends. */
  private readonly mutesByUser = new Map<string, Map<string, number>>();
  private readonly invitesById = new Map<string, Invite>();
  private readonly settingsByUser = new Map<string, UserSettings>();
  private readonly blocks = new Map<string, Set<string>>();
  private readonly lastSeenByUser = new Map<string, number>();
  private readonly convs = new Map<string, ConvState>();
  private readonly inboxes = new Map<string, UserState>();
  /** Messages written through `epochMessages` and not published yet: conv → seq → row. */
  private readonly unpublishedLog = new Map<
    string,
    Map<number, { message: StoredMessage; effects: GroupEffect[]; epoch: number }>
  >();
  /** Entries written through `epochInbox` and not published yet: user → number → row. */
  private readonly unpublished = new Map<string, Map<number, { entry: InboxEntry; epoch: number }>>();
  /** Watermarks by conversation, then user: apart from `convs`, which only messages create. */
  private readonly marks = new Map<string, Map<string, Watermark>>();

  constructor() {
    this.messages = {
      append: async (rows, effects = []) => {
        // Effects apply only with their newly stored message: a retried batch changes nothing.
        const inserted = this.appendMessages(rows);
        for (const e of effects) if (inserted.has(`${e.seq}\u0000${e.conv}`)) this.applyEffect(e);
      },
      head: async (conv) => {
        const c = this.convs.get(conv);
        return c && c.meta.lastSeq > 0 ? { lastSeq: c.meta.lastSeq, lastTs: c.meta.lastTs } : null;
      },
      findByCmid: async (conv, from, cmid) => {
        const m = this.convs.get(conv)?.byCmid.get(`${from}\u0000${cmid}`);
        return m ? { seq: m.seq, ts: m.ts } : null;
      },
      page: async (conv, query) => this.page(conv, query),
      getMany: async (refs) =>
        refs.map((r) => {
          const m = this.convs.get(r.conv)?.messages.get(r.seq);
          return m && structuredClone(m);
        }),
      senders: async (conv, after, upto, max) => {
        const c = this.convs.get(conv);
        const out = new Set<string>();
        if (!c) return [];
        for (let s = after + 1; s <= upto && out.size < max; s++) {
          const m = c.messages.get(s);
          if (m && m.kind !== 'system') out.add(m.from);
        }
        return [...out];
      },
    };
    this.fanoutRecovery = {
      unfanned: async (): Promise<UnfannedRange[]> =>
        [...this.convs.values()]
          .filter((c) => c.fannedSeq < c.meta.lastSeq)
          .map((c) => ({ conv: c.meta.conv, fannedSeq: c.fannedSeq, lastSeq: c.meta.lastSeq })),
    };
    this.inbox = {
      append: async (rows, fanned, fanouts = []) =>
        this.appendInbox([...rows, ...fanoutEntries(fanouts)], fanned),
      head: async (user) => this.inboxes.get(user)?.head ?? 0,
      read: async (user, after, limit) => {
        const u = this.inboxes.get(user);
        if (!u) return [];
        return u.entries
          .filter((e) => e.inbox > after)
          .slice(0, limit)
          .map((e) => ({ ...e }));
      },
      floor: async (user) => {
        const u = this.inboxes.get(user);
        if (!u) return 1;
        return u.entries[0]?.inbox ?? u.head + 1;
      },
      conversations: async (user, limit, beforeTs): Promise<UserConversation[]> => {
        const u = this.inboxes.get(user);
        if (!u) return [];
        return [...u.conversations]
          .map(([conv, c]) => ({ conv, lastTs: c.lastTs }))
          .filter((c) => beforeTs === undefined || c.lastTs < beforeTs)
          .sort((a, b) => b.lastTs - a.lastTs)
          .slice(0, limit);
      },
      lastSeqs: async (user, convs) => {
        const u = this.inboxes.get(user);
        const out = new Map<string, number>();
        for (const conv of convs) {
          const c = u?.conversations.get(conv);
          if (c) out.set(conv, c.lastSeq);
        }
        return out;
      },
    };
    this.epochMessages = {
      write: async (rows, effects, epoch) => this.writeUnpublishedLog(rows, effects, epoch),
      publish: async (rows, effects) => {
        const inserted = this.appendMessages(rows);
        for (const e of effects) if (inserted.has(`${e.seq}\u0000${e.conv}`)) this.applyEffect(e);
        for (const m of rows) this.unpublishedLog.get(m.conv)?.delete(m.seq);
      },
      writtenHead: async (conv) => {
        const head = await this.messages.head(conv);
        const rows = [...(this.unpublishedLog.get(conv)?.values() ?? [])]
          .filter((r) => r.message.seq > (head?.lastSeq ?? 0))
          .sort((a, b) => a.message.seq - b.message.seq);
        return {
          head,
          beyond: rows.map((r) => structuredClone(r.message)),
          effects: rows.flatMap((r) => structuredClone(r.effects)),
        };
      },
    };
    this.epochInbox = {
      write: async (entries, epoch) => this.writeUnpublished(entries, epoch),
      publish: async (_entries, heads) => {
        for (const [user, head] of heads) this.publishUpTo(user, head);
      },
      writtenHead: async (user) => {
        const published = this.inboxes.get(user)?.head ?? 0;
        return { published, written: Math.max(published, ...(this.unpublished.get(user)?.keys() ?? [])) };
      },
      readWritten: async (user, after, limit) => {
        const published = await this.inbox.read(user, after, limit);
        const rows = [...(this.unpublished.get(user)?.values() ?? [])].map((r) => ({ ...r.entry }));
        return [...published, ...rows.filter((e) => e.inbox > after)]
          .sort((a, b) => a.inbox - b.inbox)
          .slice(0, limit);
      },
    };
    this.inboxPruning = {
      prune: async (beforeTs) => {
        let n = 0;
        for (const u of this.inboxes.values()) {
          const kept = u.entries.filter((e) => e.ts >= beforeTs);
          n += u.entries.length - kept.length;
          u.entries = kept;
        }
        return n;
      },
    };
    this.conversations = {
      get: async (conv) => {
        const c = this.convs.get(conv);
        return c ? { ...c.meta } : null;
      },
      members: async (conv) =>
        [...(this.convs.get(conv)?.members.values() ?? [])]
          .map((m) => ({ ...m }))
          .sort((a, b) => a.joinedSeq - b.joinedSeq || (a.user < b.user ? -1 : a.user > b.user ? 1 : 0)),
      watermarks: async (conv, users) => {
        const marks = this.marks.get(conv);
        if (!marks) return [];
        const rows = [...marks.values()].sort((a, b) => (a.user < b.user ? -1 : 1)).map((w) => ({ ...w }));
        return users ? rows.filter((r) => users.includes(r.user)) : rows;
      },
      mergeWatermarks: async (rows) => {
        for (const w of rows) {
          let marks = this.marks.get(w.conv);
          if (!marks) {
            marks = new Map();
            this.marks.set(w.conv, marks);
          }
          const old = marks.get(w.user);
          marks.set(w.user, {
            conv: w.conv,
            user: w.user,
            delivered: Math.max(old?.delivered ?? 0, w.delivered),
            read: Math.max(old?.read ?? 0, w.read),
          });
        }
      },
    };
    this.users = {
      settings: async (user) => ({ ...(this.settingsByUser.get(user) ?? DEFAULT_SETTINGS) }),
      saveSettings: async (user, settings) => {
        this.settingsByUser.set(user, { ...settings });
      },
      blocked: async (user) => [...(this.blocks.get(user) ?? [])].sort(),
      setBlocked: async (user, other, blocked) => {
        let set = this.blocks.get(user);
        if (!set) {
          set = new Set();
          this.blocks.set(user, set);
        }
        if (blocked) set.add(other);
        else set.delete(other);
      },
      lastSeen: async (users) => {
        const out = new Map<string, number>();
        for (const u of users) {
          const ts = this.lastSeenByUser.get(u);
          if (ts !== undefined) out.set(u, ts);
        }
        return out;
      },
      saveLastSeen: async (user, ts) => {
        this.lastSeenByUser.set(user, ts);
      },
      setMute: async (user, conv, until) => {
        let mutes = this.mutesByUser.get(user);
        if (until === null) {
          mutes?.delete(conv);
          if (mutes?.size === 0) this.mutesByUser.delete(user);
          return;
        }
        if (!mutes) {
          mutes = new Map();
          this.mutesByUser.set(user, mutes);
        }
        mutes.set(conv, until);
      },
      mutes: async (user, convs) => {
        const mutes = this.mutesByUser.get(user);
        const out = new Map<string, number>();
        for (const conv of convs) {
          const until = mutes?.get(conv);
          if (until !== undefined) out.set(conv, until);
        }
        return out;
      },
    };
    this.devices = {
      seen: async (user, device, ts) => {
        let devices = this.devicesByUser.get(user);
        if (!devices) {
          devices = new Map();
          this.devicesByUser.set(user, devices);
        }
        const d = devices.get(device);
        // Connect and disconnect times may arrive out of order: last seen only moves forward.
        if (d) d.lastSeen = Math.max(d.lastSeen, ts);
        else devices.set(device, { lastSeen: ts });
        while (devices.size > MAX_DEVICES_PER_USER) {
          let oldest: [string, DeviceState] | undefined;
          for (const entry of devices) {
            if (entry[0] === device) continue;
            if (
              !oldest ||
              entry[1].lastSeen < oldest[1].lastSeen ||
              (entry[1].lastSeen === oldest[1].lastSeen && entry[0] < oldest[0])
            )
              oldest = entry;
          }
          if (!oldest) break;
          devices.delete(oldest[0]);
        }
      },
      list: async (user) =>
        [...(this.devicesByUser.get(user) ?? [])]
          .sort(([a, x], [b, y]) => y.lastSeen - x.lastSeen || (a < b ? -1 : a > b ? 1 : 0))
          .map(([device, d]) => {
            const r: DeviceRecord = { device, lastSeen: d.lastSeen };
            if (d.push) r.push = structuredClone(d.push);
            return r;
          }),
      setPush: async (user, device, registration) => {
        // Only a known device has a registration: one revoked or evicted meanwhile gets none.
        const d = this.devicesByUser.get(user)?.get(device);
        if (!d) return;
        if (registration === null) delete d.push;
        else d.push = structuredClone(registration);
      },
      dropPush: async (user, device, registration) => {
        const d = this.devicesByUser.get(user)?.get(device);
        if (d?.push && registrationJson(d.push) === registrationJson(registration)) delete d.push;
      },
      pushRegistrations: async (users) => {
        const out = new Map<string, Map<string, PushRegistration>>();
        for (const user of users) {
          const regs = new Map<string, PushRegistration>();
          const devices = [...(this.devicesByUser.get(user) ?? [])].sort(([a], [b]) => (a < b ? -1 : 1));
          for (const [device, d] of devices) if (d.push) regs.set(device, structuredClone(d.push));
          if (regs.size > 0) out.set(user, regs);
        }
        return out;
      },
      revoke: async (user, device, ts) => {
        const devices = this.devicesByUser.get(user);
        const known = devices?.delete(device) ?? false;
        if (devices?.size === 0) this.devicesByUser.delete(user);
        const key = `${user}\u0000${device}`;
        this.revocations.set(key, Math.max(this.revocations.get(key) ?? ts, ts));
        for (const [k, revoked] of this.revocations)
          if (revoked < ts - REVOCATION_RETENTION_MS) this.revocations.delete(k);
        return known;
      },
      revokedAt: async (user, device) => this.revocations.get(`${user}\u0000${device}`),
    };
    this.invites = {
      create: async (invite) => {
        // Expired invites are dropped as new ones come (a bounded sweep), so the map stays small.
        let sweep = 100;
        for (const [id, i] of this.invitesById) {
          if (sweep-- === 0) break;
          if (i.expiresTs <= invite.createdTs) this.invitesById.delete(id);
        }
        this.invitesById.set(invite.id, { ...invite, uses: 0 });
      },
      get: async (id) => {
        const i = this.invitesById.get(id);
        return i ? { ...i } : null;
      },
      take: async (id, now) => {
        const i = this.invitesById.get(id);
        if (!i || i.expiresTs <= now || (i.maxUses !== undefined && i.uses >= i.maxUses)) return null;
        i.uses++;
        return { ...i };
      },
      release: async (id) => {
        const i = this.invitesById.get(id);
        if (i && i.uses > 0) i.uses--;
      },
      revoke: async (id) => {
        this.invitesById.delete(id);
      },
    };
  }

  private conv(conv: string, kind: 'direct' | 'group', ts: number): ConvState {
    let c = this.convs.get(conv);
    if (!c) {
      c = {
        meta: { conv, kind, createdTs: ts, lastSeq: 0, lastTs: 0 },
        messages: new Map(),
        byCmid: new Map(),
        fannedSeq: 0,
        members: new Map(),
      };
      this.convs.set(conv, c);
    }
    return c;
  }

  private user(user: string): UserState {
    let u = this.inboxes.get(user);
    if (!u) {
      u = { head: 0, entries: [], conversations: new Map() };
      this.inboxes.set(user, u);
    }
    return u;
  }

  private applyEffect(e: GroupEffect): void {
    const c = this.convs.get(e.conv);
    if (!c) return;
    const join = (user: string, role: 'admin' | 'member') =>
      c.members.set(user, { conv: e.conv, user, role, joinedSeq: e.seq });
    switch (e.type) {
      case 'create':
        c.meta.kind = 'group';
        c.meta.name = e.name;
        c.meta.createdTs = e.createdTs;
        for (const m of e.members) join(m.user, m.role);
        return;
      case 'join':
        for (const u of e.users) join(u, 'member');
        return;
      case 'remove':
        for (const u of e.users) {
          const m = c.members.get(u);
          if (!m) continue;
          m.removedSeq = e.seq;
          if (e.name !== undefined) m.nameAtRemoval = e.name;
          if (e.members !== undefined) m.membersAtRemoval = e.members;
        }
        return;
      case 'role': {
        const m = c.members.get(e.user);
        if (m) m.role = e.role;
        return;
      }
      case 'rename':
        c.meta.name = e.name;
        return;
    }
  }

  private appendMessages(rows: readonly StoredMessage[]): Set<string> {
    const inserted = new Set<string>();
    for (const m of rows) {
      const c = this.conv(m.conv, m.conv.startsWith('dm:') ? 'direct' : 'group', m.ts);
      if (c.messages.has(m.seq)) continue;
      const stored = structuredClone(m);
      c.messages.set(m.seq, stored);
      c.byCmid.set(`${m.from}\u0000${m.cmid}`, stored);
      c.meta.lastSeq = Math.max(c.meta.lastSeq, m.seq);
      c.meta.lastTs = Math.max(c.meta.lastTs, m.ts);
      inserted.add(`${m.seq}\u0000${m.conv}`);
    }
    return inserted;
  }

  /** Keeps each message past the published head unless a row under a higher epoch holds its seq. */
  private writeUnpublishedLog(
    rows: readonly StoredMessage[],
    effects: readonly GroupEffect[],
    epoch: number,
  ): void {
    for (const m of rows) {
      if (m.seq <= (this.convs.get(m.conv)?.meta.lastSeq ?? 0)) continue;
      const log = this.unpublishedLog.get(m.conv) ?? new Map();
      this.unpublishedLog.set(m.conv, log);
      const there = log.get(m.seq);
      if (there && there.epoch > epoch) continue;
      const mine = effects.filter((e) => e.conv === m.conv && e.seq === m.seq);
      log.set(m.seq, { message: structuredClone(m), effects: structuredClone(mine), epoch });
    }
  }

  /** Keeps each entry past the published head unless a row under a higher epoch holds its number. */
  private writeUnpublished(entries: readonly InboxEntry[], epoch: number): void {
    for (const e of entries) {
      // Nobody writes under a published number (a newer owner loads heads after its epoch).
      if (e.inbox <= (this.inboxes.get(e.user)?.head ?? 0)) continue;
      const rows = this.unpublished.get(e.user) ?? new Map<number, { entry: InboxEntry; epoch: number }>();
      this.unpublished.set(e.user, rows);
      const there = rows.get(e.inbox);
      if (!there || there.epoch <= epoch) rows.set(e.inbox, { entry: { ...e }, epoch });
    }
  }

  /** Moves the user's unpublished entries up to `head` into the inbox readers see. */
  private publishUpTo(user: string, head: number): void {
    const rows = this.unpublished.get(user);
    if (!rows) return;
    const ready = [...rows.values()].map((r) => r.entry).filter((e) => e.inbox <= head);
    this.appendInbox(
      ready.sort((a, b) => a.inbox - b.inbox),
      [],
    );
    for (const e of ready) rows.delete(e.inbox);
    if (rows.size === 0) this.unpublished.delete(user);
  }

  private appendInbox(rows: readonly InboxEntry[], fanned: readonly FannedMark[]): void {
    for (const e of rows) {
      const u = this.user(e.user);
      if (u.entries.some((x) => x.inbox === e.inbox) || e.inbox <= u.head - u.entries.length) continue;
      u.entries.push({ ...e });
      u.entries.sort((a, b) => a.inbox - b.inbox);
      u.head = Math.max(u.head, e.inbox);
      if (e.type === 'message') {
        const c = u.conversations.get(e.conv);
        u.conversations.set(e.conv, {
          lastTs: Math.max(c?.lastTs ?? 0, e.ts),
          lastSeq: Math.max(c?.lastSeq ?? 0, e.seq),
        });
      }
    }
    for (const f of fanned) {
      const c = this.convs.get(f.conv);
      if (c) c.fannedSeq = Math.max(c.fannedSeq, f.seq);
    }
  }

  private page(conv: string, query: PageQuery): StoredMessage[] {
    const c = this.convs.get(conv);
    if (!c) return [];
    const floor = query.floor ?? 1;
    const all = [...c.messages.values()].filter((m) => m.seq >= floor).sort((a, b) => a.seq - b.seq);
    if (query.after !== undefined) {
      const after = query.after;
      const before = query.before ?? Number.MAX_SAFE_INTEGER;
      return all
        .filter((m) => m.seq > after && m.seq < before)
        .slice(0, query.limit)
        .map((m) => structuredClone(m));
    }
    const before = query.before ?? Number.MAX_SAFE_INTEGER;
    const older = all.filter((m) => m.seq < before);
    return older.slice(Math.max(0, older.length - query.limit)).map((m) => structuredClone(m));
  }
}
