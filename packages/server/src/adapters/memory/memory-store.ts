import type {
  ConversationMeta,
  ConversationStore,
  GroupEffect,
  MemberRecord,
  Watermark,
} from '../../ports/conversation-store.js';
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
import type { MessageStore, PageQuery, StoredMessage } from '../../ports/message-store.js';
import { DEFAULT_SETTINGS, type UserSettings, type UserStore } from '../../ports/user-store.js';

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

/**
 * The in-memory adapter of the store ports: the reference behaviour the conformance suites pin
 * down, and a fast store for domain tests. Not durable; never used by `parley serve`. It offers
 * both capabilities, `FanoutRecovery` and `InboxPruning`, as the embedded store does.
 */
export class MemoryStore {
  readonly messages: MessageStore;
  readonly inbox: InboxStore;
  /** Lists the conversations whose fan-out marks lag their log (crash recovery). */
  readonly fanoutRecovery: FanoutRecovery;
  /** Deletes inbox entries past the retention. */
  readonly inboxPruning: InboxPruning;
  readonly conversations: ConversationStore;
  readonly users: UserStore;
  readonly invites: InviteStore;
  private readonly invitesById = new Map<string, Invite>();
  private readonly settingsByUser = new Map<string, UserSettings>();
  private readonly blocks = new Map<string, Set<string>>();
  private readonly lastSeenByUser = new Map<string, number>();
  private readonly convs = new Map<string, ConvState>();
  private readonly inboxes = new Map<string, UserState>();
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
