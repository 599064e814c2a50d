/**
 * The inbox sequencer: turns the at-least-once, possibly out-of-order stream of inbox events
 * (live events and `sync` pages, interleaved, with repeats after reconnects) into an
 * exactly-once, in-order stream. Pure logic with no I/O, so it is tested on its own.
 *
 * The invariant: `cursor` is the highest inbox number such that every number in `1..cursor`
 * has been delivered (or skipped on purpose by {@link InboxSequencer.jumpTo}). An event at or
 * below the cursor is a repeat and is dropped; the event right after it is delivered and moves
 * the cursor; an event further on is held until the numbers before it arrive (from a live
 * event or a `sync` page). `known` is the highest inbox number known to exist; while
 * `cursor < known` there is a gap, which the client closes with `sync`.
 *
 * @module
 */

/** The part of an inbox event the sequencer looks at. */
export interface Numbered {
  inbox: number;
}

/** Events held above a gap beyond this many are dropped; `sync` fetches them again. */
export const DEFAULT_MAX_HELD = 10_000;

/** Orders and deduplicates inbox events; see the module comment. */
export class InboxSequencer<T extends Numbered> {
  #cursor: number;
  #known: number;
  readonly #held = new Map<number, T>();
  readonly #deliver: (event: T) => void;
  readonly #maxHeld: number;
  readonly #open: () => boolean;

  /**
   * @param cursor - the highest inbox number already handled (0 for none).
   * @param deliver - called once per inbox number, in increasing order.
   * @param options.maxHeld - how many out-of-order events to hold at most.
   * @param options.open - checked before each delivery; while it returns false nothing is
   *   delivered and the cursor stays (events are held), e.g. after the client was closed from
   *   inside a listener in the middle of a `sync` page.
   */
  constructor(
    cursor: number,
    deliver: (event: T) => void,
    options: { maxHeld?: number; open?: () => boolean } = {},
  ) {
    this.#cursor = cursor;
    this.#known = cursor;
    this.#deliver = deliver;
    this.#maxHeld = options.maxHeld ?? DEFAULT_MAX_HELD;
    this.#open = options.open ?? (() => true);
  }

  /** The highest inbox number with no gap below it. */
  get cursor(): number {
    return this.#cursor;
  }

  /** The highest inbox number known to exist (seen live, or a reported `inbox_head`). */
  get known(): number {
    return this.#known;
  }

  /** Whether some inbox number between the cursor and {@link InboxSequencer.known} is missing. */
  get hasGap(): boolean {
    return this.#cursor < this.#known;
  }

  /** How many events are held above a gap. */
  get heldCount(): number {
    return this.#held.size;
  }

  /**
   * Takes one event. Returns true when it moved the cursor (it, and maybe held events after
   * it, were delivered). Events with an inbox number that is not a positive safe integer are ignored.
   */
  offer(event: T): boolean {
    const n = event.inbox;
    if (!Number.isSafeInteger(n) || n < 1) return false;
    if (n > this.#known) this.#known = n;
    if (n <= this.#cursor) return false;
    if (n !== this.#cursor + 1) {
      if (!this.#held.has(n) && this.#held.size < this.#maxHeld) this.#held.set(n, event);
      return false;
    }
    this.#advance(event);
    return this.#cursor >= n;
  }

  /** Records that inbox numbers up to `head` exist (a `connect` or `sync` `inbox_head`). */
  noteHead(head: number): void {
    if (Number.isSafeInteger(head) && head > this.#known) this.#known = head;
  }

  /**
   * Moves the cursor forward to `to` without delivering what lies below (after `sync` answers
   * `gone`, or when the saved cursor is ahead of the server's inbox), then delivers held
   * events that follow. Moving backwards is allowed only through {@link InboxSequencer.reset}.
   */
  jumpTo(to: number): void {
    if (to <= this.#cursor) return;
    for (const n of this.#held.keys()) if (n <= to) this.#held.delete(n);
    this.#cursor = to;
    if (to > this.#known) this.#known = to;
    const next = this.#held.get(to + 1);
    if (next !== undefined) {
      this.#held.delete(to + 1);
      this.#advance(next);
    }
  }

  /** Sets the cursor to any value (a cursor store reset) and forgets held events and `known`. */
  reset(to: number): void {
    this.#held.clear();
    this.#cursor = to;
    this.#known = to;
  }

  #advance(first: T): void {
    let event: T | undefined = first;
    while (event !== undefined) {
      if (!this.#open()) {
        if (this.#held.size < this.#maxHeld) this.#held.set(event.inbox, event);
        return;
      }
      this.#held.delete(event.inbox);
      this.#cursor = event.inbox;
      this.#deliver(event);
      event = this.#held.get(this.#cursor + 1);
    }
  }
}
