import { parseConv } from '@parley/protocol';

/**
 * The members of a direct conversation `dm:a:b`: exactly its two users (one for a note-to-self),
 * fixed by its id, so no lookup is needed. Null for any other conversation id.
 */
export function directMembers(conv: string): string[] | null {
  const p = parseConv(conv);
  if (p?.kind !== 'direct') return null;
  return p.a === p.b ? [p.a] : [p.a, p.b];
}
