/**
 * Typed reading of group system messages. Every group change (creation, members added or
 * removed, a member leaving, a rename, a role change) is stored by the server as a message of
 * kind `system` in the conversation's sequence, with a JSON `body`; {@link parseSystemMessage}
 * turns such a message into a discriminated union so an application can render "alice added
 * dave" without parsing JSON itself.
 *
 * @module
 */

import type { GroupRole, MessageObject } from '@parley/protocol';

/** Fields every parsed system message carries. */
interface SystemMessageBase {
  /** Who made the change (the message's `from`): the creator, the admin, or the member who left. */
  actor: string;
}

/** The group was created (always at `seq` 1); `members` lists the creator first. */
export interface GroupCreated extends SystemMessageBase {
  event: 'created';
  name: string;
  members: string[];
}

/** Users were added by an admin. */
export interface MembersAdded extends SystemMessageBase {
  event: 'members_added';
  users: string[];
}

/**
 * Users were removed by an admin (or a member removed themself). `promoted` names the member
 * who became admin because the removal left the group without one.
 */
export interface MembersRemoved extends SystemMessageBase {
  event: 'members_removed';
  users: string[];
  promoted?: string;
}

/** A member left. `promoted` as for {@link MembersRemoved}. */
export interface MemberLeft extends SystemMessageBase {
  event: 'member_left';
  user: string;
  promoted?: string;
}

/** An admin renamed the group. */
export interface GroupRenamed extends SystemMessageBase {
  event: 'renamed';
  name: string;
}

/** An admin changed a member's role. */
export interface RoleChanged extends SystemMessageBase {
  event: 'role_changed';
  user: string;
  role: GroupRole;
}

/** The app's backend ended the group (the server API's DeleteGroup): every member is removed by it. */
export interface GroupDeleted extends SystemMessageBase {
  event: 'group_deleted';
}

/** A parsed group system message; discriminate on `event`. */
export type SystemMessage =
  | GroupCreated
  | MembersAdded
  | MembersRemoved
  | MemberLeft
  | GroupRenamed
  | RoleChanged
  | GroupDeleted;

/** The `event` names {@link parseSystemMessage} knows. */
export type SystemEventName = SystemMessage['event'];

function isStringList(x: unknown): x is string[] {
  return Array.isArray(x) && x.every((u) => typeof u === 'string');
}

/**
 * Reads a group system message (`kind: "system"`) into a typed {@link SystemMessage}.
 *
 * Returns null for ordinary messages, and also for a system message whose body this SDK version
 * cannot read (malformed, or an event a newer server added): render those as a generic
 * "the group changed" line rather than failing.
 *
 * @example
 * ```ts
 * client.on('message', (m) => {
 *   const sys = parseSystemMessage(m);
 *   if (sys?.event === 'members_added') console.log(`${sys.actor} added ${sys.users.join(', ')}`);
 * });
 * ```
 */
export function parseSystemMessage(m: MessageObject): SystemMessage | null {
  if (m.kind !== 'system' || typeof m.body !== 'string') return null;
  let body: unknown;
  try {
    body = JSON.parse(m.body);
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const b = body as Record<string, unknown>;
  const actor = m.from;
  const promoted = typeof b.promoted === 'string' ? { promoted: b.promoted } : {};
  switch (b.event) {
    case 'created':
      return typeof b.name === 'string' && isStringList(b.members)
        ? { event: 'created', actor, name: b.name, members: b.members }
        : null;
    case 'members_added':
      return isStringList(b.users) ? { event: 'members_added', actor, users: b.users } : null;
    case 'members_removed':
      return isStringList(b.users) ? { event: 'members_removed', actor, users: b.users, ...promoted } : null;
    case 'member_left':
      return typeof b.user === 'string' ? { event: 'member_left', actor, user: b.user, ...promoted } : null;
    case 'renamed':
      return typeof b.name === 'string' ? { event: 'renamed', actor, name: b.name } : null;
    case 'role_changed':
      return typeof b.user === 'string' && (b.role === 'admin' || b.role === 'member')
        ? { event: 'role_changed', actor, user: b.user, role: b.role }
        : null;
    case 'group_deleted':
      return { event: 'group_deleted', actor };
    default:
      return null;
  }
}

/**
 * Whether a system message ends `user`'s membership (they were removed, or they left): after it
 * the server answers `forbidden` to everything `user` sends about the conversation.
 */
export function removesMember(sys: SystemMessage | null, user: string | undefined): boolean {
  if (sys === null || user === undefined) return false;
  if (sys.event === 'members_removed') return sys.users.includes(user);
  if (sys.event === 'member_left') return sys.user === user;
  return sys.event === 'group_deleted';
}
