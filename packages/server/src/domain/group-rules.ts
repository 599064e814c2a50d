import type { GroupEffect } from '../ports/conversation-store.js';
import type { GroupMember, GroupOp, GroupState } from '../ports/conversation-writer.js';
import { ParleyError } from './errors.js';

/** What a change does once it gets its seq: the system message, the stored effect, who hears of it. */
export interface PlannedChange {
  /** The system message's body (a JSON object, stored as a string). */
  body: Record<string, unknown>;
  /** Stored with the system message, in one durable step. */
  effects: GroupEffect[];
  /** Members after the change, plus anyone it removed. */
  recipients: string[];
  next: GroupState;
}

const forbiddenFor = (conv: string) => new ParleyError('forbidden', `not a member of ${conv}`);

/**
 * What joining with an invite that cannot be used answers, whatever the reason (unknown, expired,
 * revoked, used up, its creator no longer an admin, the group gone): nothing more is revealed.
 */
export const inviteNotFound = () => new ParleyError('not_found', 'no such invite');

/** Whether an invite made by `inviter` (an admin since `joinedSeq`) still speaks for the group. */
export function inviterStands(state: GroupState, inviter: string, joinedSeq: number): boolean {
  const m = state.members.get(inviter);
  return m !== undefined && m.role === 'admin' && m.joinedSeq === joinedSeq;
}

/**
 * Decides a group change against the group's current state: who may do it, what it changes,
 * which system message records it. Pure: no I/O, so it runs inside the group's single writer at
 * the moment the change gets its seq. Returns null when the change changes nothing (a retried
 * add of existing members, a rename to the same name), so retries are safe.
 */
export function planChange(
  state: GroupState | null,
  conv: string,
  actor: string,
  op: GroupOp,
  seq: number,
  ts: number,
  maxGroupSize: number,
): PlannedChange | null {
  if (op.op === 'create') {
    if (state) throw new ParleyError('conflict', `${conv} already exists`);
    const users = [actor, ...op.members.filter((u) => u !== actor)];
    if (users.length > maxGroupSize)
      throw new ParleyError('too_large', `a group has at most ${maxGroupSize} members`);
    const members = new Map<string, GroupMember>(
      users.map((u) => [u, { role: u === actor ? 'admin' : 'member', joinedSeq: seq }] as const),
    );
    return {
      body: { event: 'created', name: op.name, members: users },
      effects: [
        {
          type: 'create',
          conv,
          seq,
          name: op.name,
          createdTs: ts,
          members: users.map((u) => ({ user: u, role: members.get(u)!.role })),
        },
      ],
      recipients: users,
      next: { conv, name: op.name, createdTs: ts, members },
    };
  }
  if (op.op === 'join') {
    if (!state || !inviterStands(state, op.inviter, op.inviterJoinedSeq)) throw inviteNotFound();
    if (state.members.has(actor)) return null;
    if (state.members.size + 1 > maxGroupSize) {
      throw new ParleyError('too_large', `a group has at most ${maxGroupSize} members`);
    }
    const members = new Map(state.members);
    members.set(actor, { role: 'member', joinedSeq: seq });
    return {
      body: { event: 'members_added', users: [actor] },
      effects: [{ type: 'join', conv, seq, users: [actor] }],
      recipients: [...members.keys()],
      next: { ...state, members },
    };
  }
  const me = state?.members.get(actor);
  if (!state || !me) throw forbiddenFor(conv);
  const members = new Map(state.members);
  const next: GroupState = { ...state, members };
  const requireAdmin = () => {
    if (me.role !== 'admin') throw new ParleyError('forbidden', `only admins of ${conv} may do this`);
  };
  switch (op.op) {
    case 'add': {
      requireAdmin();
      const added = op.users.filter((u) => !members.has(u));
      if (added.length === 0) return null;
      if (members.size + added.length > maxGroupSize) {
        throw new ParleyError('too_large', `a group has at most ${maxGroupSize} members`);
      }
      for (const u of added) members.set(u, { role: 'member', joinedSeq: seq });
      return {
        body: { event: 'members_added', users: added },
        effects: [{ type: 'join', conv, seq, users: added }],
        recipients: [...members.keys()],
        next,
      };
    }
    case 'remove': {
      // Removing oneself is leaving; anything else needs an admin, even when it changes nothing.
      if (!(op.users.length === 1 && op.users[0] === actor)) requireAdmin();
      const removed = op.users.filter((u) => members.has(u));
      if (removed.length === 0) return null;
      const recipients = [...members.keys()];
      for (const u of removed) members.delete(u);
      const promoted = promoteIfNoAdmin(members);
      return withPromotion(
        { event: 'members_removed', users: removed },
        { type: 'remove', conv, seq, users: removed, name: state.name, members: members.size },
        recipients,
        next,
        promoted,
      );
    }
    case 'leave': {
      const recipients = [...members.keys()];
      members.delete(actor);
      const promoted = promoteIfNoAdmin(members);
      return withPromotion(
        { event: 'member_left', user: actor },
        { type: 'remove', conv, seq, users: [actor], name: state.name, members: members.size },
        recipients,
        next,
        promoted,
      );
    }
    case 'delete': {
      // Every member goes at once; an invite needs an admin member to stand for it, and every
      // other change a member, so a group with nobody left stays ended.
      requireAdmin();
      const recipients = [...members.keys()];
      members.clear();
      return {
        body: { event: 'group_deleted' },
        effects: [{ type: 'remove', conv, seq, users: recipients, name: state.name, members: 0 }],
        recipients,
        next,
      };
    }
    case 'rename':
      requireAdmin();
      if (op.name === state.name) return null;
      next.name = op.name;
      return {
        body: { event: 'renamed', name: op.name },
        effects: [{ type: 'rename', conv, seq, name: op.name }],
        recipients: [...members.keys()],
        next,
      };
    case 'role': {
      requireAdmin();
      const target = members.get(op.user);
      if (!target) throw new ParleyError('not_found', `${op.user} is not a member of ${conv}`);
      if (target.role === op.role) return null;
      if (op.role === 'member' && [...members.values()].filter((m) => m.role === 'admin').length === 1) {
        throw new ParleyError('conflict', 'a group needs at least one admin');
      }
      members.set(op.user, { ...target, role: op.role });
      return {
        body: { event: 'role_changed', user: op.user, role: op.role },
        effects: [{ type: 'role', conv, seq, user: op.user, role: op.role }],
        recipients: [...members.keys()],
        next,
      };
    }
  }
}

/** When no admin is left, the longest-standing member (lowest joined seq, then user id) becomes one. */
function promoteIfNoAdmin(members: Map<string, GroupMember>): string | null {
  if (members.size === 0) return null;
  for (const m of members.values()) if (m.role === 'admin') return null;
  let best: [string, GroupMember] | null = null;
  for (const entry of members) {
    if (
      !best ||
      entry[1].joinedSeq < best[1].joinedSeq ||
      (entry[1].joinedSeq === best[1].joinedSeq && entry[0] < best[0])
    ) {
      best = entry;
    }
  }
  const [user, m] = best!;
  members.set(user, { ...m, role: 'admin' });
  return user;
}

function withPromotion(
  body: Record<string, unknown>,
  removal: GroupEffect,
  recipients: string[],
  next: GroupState,
  promoted: string | null,
): PlannedChange {
  if (promoted === null) return { body, effects: [removal], recipients, next };
  // The promotion rides on the same system message; its role change is stored with it.
  const promotion: GroupEffect = {
    type: 'role',
    conv: removal.conv,
    seq: removal.seq,
    user: promoted,
    role: 'admin',
  };
  return { body: { ...body, promoted }, effects: [removal, promotion], recipients, next };
}

/** Members of a group at `seq`, from stored records (removed members included up to their removal). */
export function membersAt(
  records: readonly { user: string; joinedSeq: number; removedSeq?: number }[],
  seq: number,
): string[] {
  return records
    .filter((r) => r.joinedSeq <= seq && (r.removedSeq === undefined || r.removedSeq >= seq))
    .map((r) => r.user);
}
