/**
 * Small helpers shared by the client's modules (as centrifuge-js keeps its own in
 * `src/utils.ts`): the frame shape, reply unpacking, option parsing and client message ids.
 *
 * @module
 */

/** A protocol frame as the client handles it before and after encoding: a plain JSON object. */
export type Frame = Record<string, unknown>;

/** A handle from `setTimeout`, in browsers (a number) and in Node (an object). */
export type Timer = ReturnType<typeof setTimeout>;

/** Does nothing: a placeholder for socket handlers and callbacks nobody needs to hear. */
export const noop = (): void => {};

/** Whether a decoded value is a JSON object (frames and their nested objects are read through it). */
export function isObject(x: unknown): x is Frame {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The result fields of a reply: everything but `type`, `id` and `ok`, which callers never want. */
export function resultOf<T>(reply: Frame): T {
  const { type: _type, id: _id, ok: _ok, ...rest } = reply;
  return rest as T;
}

/** `value` if it is a finite number >= 0, else `fallback`: options given as garbage fall back to defaults. */
export function nonNegative(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

/**
 * A random UUID v4 for a `cmid`. `crypto.randomUUID` exists only in secure contexts in browsers
 * (https, localhost), so a page served over plain http falls back to `getRandomValues`.
 */
export function newCmid(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
