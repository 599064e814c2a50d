/**
 * Times and days as people read them, in the browser's locale: message times, day separators
 * and "last seen".
 *
 * @module
 */

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const DAY_MS = 86_400_000;

/** The time of day of a timestamp: 14:05. */
export function formatTime(ts: number): string {
  return timeFormat.format(ts);
}

/** The local day of a timestamp, as a key to compare days. */
export function dayKey(ts: number): string {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** A day separator's label: Today, Yesterday, or the date. */
export function formatDay(ts: number, now = Date.now()): string {
  if (dayKey(ts) === dayKey(now)) return 'Today';
  if (dayKey(ts) === dayKey(now - DAY_MS)) return 'Yesterday';
  return dateFormat.format(ts);
}

/** The chat list's time of the last activity: the time today, otherwise the day. */
export function formatListTime(ts: number, now = Date.now()): string {
  return dayKey(ts) === dayKey(now) ? formatTime(ts) : formatDay(ts, now);
}

/** "last seen today at 14:05", "last seen yesterday at 09:12", "last seen 3 Mar 2027 at …". */
export function formatLastSeen(ts: number, now = Date.now()): string {
  const day = formatDay(ts, now);
  const label = day === 'Today' || day === 'Yesterday' ? day.toLowerCase() : day;
  return `last seen ${label} at ${formatTime(ts)}`;
}
