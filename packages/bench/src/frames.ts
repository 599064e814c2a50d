/**
 * Cheap reading of server frames: the load generator must not JSON.parse every frame (at tens of
 * thousands of frames per second the parsing would cost more than the server's work), so it finds
 * the few fields it needs with `indexOf` on the raw bytes.
 *
 * This is sound for JSON written by a serializer: inside a JSON string a quote is always escaped,
 * so the byte sequence `"key":` can only be an object key, never part of a string value. The
 * fields read here (`type` first, then top-level `id`, `ok`, `conv`, `seq`, `body`, `more`,
 * `inbox`) occur once per frame, except `inbox`, which the sync reply repeats per event.
 *
 * The bench's own message bodies start with `t=<intended send time>;k=<message key>;` so that a
 * receiver can time a delivery against the moment the message was meant to be sent.
 * @module
 */

const TYPE_PREFIX = Buffer.from('{"type":"');

/** The frame's `type`, when it is the first key (as every Parley and relay frame writes it). */
export function frameType(buf: Buffer): string | undefined {
  if (
    buf.length < TYPE_PREFIX.length ||
    buf.compare(TYPE_PREFIX, 0, TYPE_PREFIX.length, 0, TYPE_PREFIX.length) !== 0
  )
    return undefined;
  const end = buf.indexOf(0x22, TYPE_PREFIX.length);
  return end < 0 ? undefined : buf.toString('latin1', TYPE_PREFIX.length, end);
}

/** The string value of the first `"key":"…"` in the frame (no unescaping: for ids and conv ids). */
export function stringField(buf: Buffer, key: string, from = 0): string | undefined {
  const marker = `"${key}":"`;
  const i = buf.indexOf(marker, from, 'latin1');
  if (i < 0) return undefined;
  const start = i + marker.length;
  const end = buf.indexOf(0x22, start);
  return end < 0 ? undefined : buf.toString('utf8', start, end);
}

/** The numeric value of the first `"key":<number>` at or after `from`, or NaN. */
export function numberField(buf: Buffer, key: string, from = 0): number {
  const marker = `"${key}":`;
  const i = buf.indexOf(marker, from, 'latin1');
  if (i < 0) return Number.NaN;
  return readNumber(buf, i + marker.length);
}

/** The numeric value of the last `"key":<number>` in the frame, or NaN (the last event of a sync page). */
export function lastNumberField(buf: Buffer, key: string): number {
  const marker = `"${key}":`;
  const i = buf.lastIndexOf(marker, undefined, 'latin1');
  if (i < 0) return Number.NaN;
  return readNumber(buf, i + marker.length);
}

/** Counts occurrences of `"key":` (the events of a sync page, by their `inbox` key). */
export function countKey(buf: Buffer, key: string): number {
  const marker = Buffer.from(`"${key}":`);
  let n = 0;
  let i = buf.indexOf(marker);
  while (i >= 0) {
    n++;
    i = buf.indexOf(marker, i + marker.length);
  }
  return n;
}

/** True when the frame holds `"key":true`. */
export function hasTrue(buf: Buffer, key: string): boolean {
  return buf.indexOf(`"${key}":true`, 0, 'latin1') >= 0;
}

/** Parses an unsigned decimal number (with optional fraction) starting at `pos`. */
function readNumber(buf: Buffer, pos: number): number {
  let n = 0;
  let i = pos;
  let c = buf[i];
  if (c === undefined || c < 0x30 || c > 0x39) return Number.NaN;
  while (c !== undefined && c >= 0x30 && c <= 0x39) {
    n = n * 10 + (c - 0x30);
    c = buf[++i];
  }
  if (c === 0x2e) {
    let scale = 0.1;
    c = buf[++i];
    while (c !== undefined && c >= 0x30 && c <= 0x39) {
      n += (c - 0x30) * scale;
      scale /= 10;
      c = buf[++i];
    }
  }
  return n;
}

/** What the bench writes at the start of every message body it sends. */
export interface BodyStamp {
  /** Intended send time, epoch ms (fractional). */
  t: number;
  /** `<worker>.<counter>.<group index>`: identifies the message across receivers. */
  key: string;
}

const BODY_MARKER = Buffer.from('"body":"t=');

/** Builds a message body: the stamp, then padding up to `bytes` characters. */
export function stampBody(t: number, key: string, bytes: number): string {
  const head = `t=${t.toFixed(3)};k=${key};`;
  return head.length >= bytes ? head : head + 'x'.repeat(bytes - head.length);
}

/** Reads the stamp of a `message` event written by `stampBody`; undefined for other messages (system messages). */
export function readStamp(buf: Buffer): BodyStamp | undefined {
  const i = buf.indexOf(BODY_MARKER);
  if (i < 0) return undefined;
  const tStart = i + BODY_MARKER.length;
  const t = readNumber(buf, tStart);
  const k = buf.indexOf(';k=', tStart, 'latin1');
  if (Number.isNaN(t) || k < 0) return undefined;
  const kEnd = buf.indexOf(0x3b, k + 3);
  if (kEnd < 0) return undefined;
  return { t, key: buf.toString('latin1', k + 3, kEnd) };
}
