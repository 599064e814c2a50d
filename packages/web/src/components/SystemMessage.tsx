/** Group changes (system messages) in words, in the timeline and the chat list. */

import type { SystemMessage as Sys } from '@parley/sdk';

/** One group change as a sentence, naming this user "you". */
export function describeSystem(sys: Sys, me: string): string {
  const who = (u: string) => (u === me ? 'you' : u);
  const actor = sys.actor === me ? 'You' : sys.actor;
  const promoted = 'promoted' in sys && sys.promoted ? `; ${who(sys.promoted)} became admin` : '';
  switch (sys.event) {
    case 'created':
      return `${actor} created "${sys.name}"`;
    case 'members_added':
      return sys.users.length === 1 && sys.users[0] === sys.actor
        ? `${actor} joined`
        : `${actor} added ${sys.users.map(who).join(', ')}`;
    case 'members_removed':
      return `${actor} removed ${sys.users.map(who).join(', ')}${promoted}`;
    case 'member_left':
      return `${actor} left${promoted}`;
    case 'renamed':
      return `${actor} renamed the group to "${sys.name}"`;
    case 'role_changed':
      return `${actor} made ${who(sys.user)} ${sys.role === 'admin' ? 'an admin' : 'a member'}`;
    case 'group_deleted':
      return `${actor} ended the group`;
  }
}

export function SystemMessage({ sys, me }: { sys: Sys; me: string }) {
  return (
    <li class="system-message" data-testid="system-message">
      {describeSystem(sys, me)}
    </li>
  );
}
