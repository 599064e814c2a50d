import { parseConv } from '@parley/protocol';
import { forbidden } from './errors.js';

/**
 * Who belongs to a conversation. A direct conversation `dm:a:b` has exactly its two users (one for
 * a note-to-self), fixed by its id, so no lookup is needed.
 */
export class Membership {
  /** The members of `conv`, or null when it is not a conversation this server knows. */
  async members(conv: string): Promise<string[] | null> {
    const p = parseConv(conv);
    if (!p) return null;
    if (p.kind === 'direct') return p.a === p.b ? [p.a] : [p.a, p.b];
    return null;
  }

  /** The members of a direct conversation, without a round trip; null for other conversations. */
  directMembers(conv: string): string[] | null {
    const p = parseConv(conv);
    if (p?.kind !== 'direct') return null;
    return p.a === p.b ? [p.a] : [p.a, p.b];
  }

  /** Throws `forbidden` unless `user` is a member of `conv`. */
  async assertMember(user: string, conv: string): Promise<void> {
    const members = this.directMembers(conv) ?? (await this.members(conv));
    if (!members?.includes(user)) throw forbidden(`not a member of ${conv}`);
  }
}
