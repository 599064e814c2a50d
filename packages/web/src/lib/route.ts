/**
 * The open conversation lives in the URL hash (`#/c/<conversation id>`), so a reload reopens it,
 * the back button closes it on a phone, and a notification can link to it.
 *
 * @module
 */

const PREFIX = '#/c/';

/** The conversation named by the current hash, if any. */
export function convFromHash(hash = location.hash): string | null {
  if (!hash.startsWith(PREFIX)) return null;
  try {
    return decodeURIComponent(hash.slice(PREFIX.length)) || null;
  } catch {
    return null;
  }
}

/** The hash that opens a conversation. */
export function hashFor(conv: string | null): string {
  return conv === null ? '#/' : `${PREFIX}${encodeURIComponent(conv)}`;
}
