/**
 * Where the client keeps its inbox cursor between runs: the highest inbox number it has
 * handled with no gap below it. Resuming from it is how a device gets exactly what it missed.
 *
 * @module
 */

/**
 * Persists the inbox cursor of one user account on one device. Give each account its own
 * store (the cursor is a position in that user's inbox). `load` is called once per
 * `connect()` before the socket opens; `save` after events are emitted, never with a smaller
 * number than before, and never concurrently with itself (saves are serialized and coalesced).
 * Back it with `localStorage`, IndexedDB, a file, or the application's own database (saving in
 * the same transaction as the messages makes handling exactly-once across crashes).
 */
export interface CursorStore {
  /** The saved cursor, or 0 for a device that has never synced. */
  load(): Promise<number> | number;
  /** Persists the cursor. */
  save(inbox: number): Promise<void> | void;
}

/**
 * The default {@link CursorStore}: keeps the cursor in memory, so it survives reconnects but
 * not a restart of the process or a page reload (a restart then syncs the whole retained inbox).
 */
export class MemoryCursorStore implements CursorStore {
  #value: number;

  constructor(initial = 0) {
    this.#value = initial;
  }

  load(): number {
    return this.#value;
  }

  save(inbox: number): void {
    this.#value = inbox;
  }
}
