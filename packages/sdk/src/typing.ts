/**
 * Typing indicators: {@link TypingController} turns keystrokes into indicators, so an application
 * does not have to remember to send `stop` when the user pauses; {@link TypingLimiter} applies
 * the protocol's rate limit on the client.
 *
 * @module
 */

import type { TypingState } from '@parley/protocol';

/** What a {@link TypingController} needs from the client (`ParleyClient.typing`). */
export interface TypingSender {
  typing(conv: string, state: TypingState): boolean;
}

/** Options of `ParleyClient.typingController`. */
export interface TypingControllerOptions {
  /** After this long without {@link TypingController.input}, `stop` is sent. Default 3000 ms. */
  idleMs?: number;
}

/**
 * Typing indicator of one conversation. Call {@link TypingController.input} on every keystroke:
 * it sends `start` (the client's own rate limit lets one through per 2 s, which doubles as a
 * keepalive for the other members' indicators) and sends `stop` by itself after `idleMs`
 * without input. Call {@link TypingController.stop} when the message is sent or the input loses
 * focus.
 */
export class TypingController {
  /** The conversation this controller types in. */
  readonly conv: string;
  readonly #client: TypingSender;
  readonly #idleMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #active = false;

  constructor(client: TypingSender, conv: string, options: TypingControllerOptions = {}) {
    this.#client = client;
    this.conv = conv;
    const idle = options.idleMs;
    this.#idleMs = typeof idle === 'number' && Number.isFinite(idle) && idle >= 0 ? idle : 3000;
  }

  /** Whether a `start` is outstanding (no `stop` sent since). */
  get active(): boolean {
    return this.#active;
  }

  /** The user typed: sends `start` unless one went out recently; re-arms the idle timer. Returns whether a frame was sent. */
  input(): boolean {
    const sent = this.#client.typing(this.conv, 'start');
    // A start dropped within the interval after a stop shows nothing: stay inactive until one goes out.
    if (sent) this.#active = true;
    if (!this.#active) return false;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.stop();
    }, this.#idleMs);
    return sent;
  }

  /** The user stopped (sent the message, cleared the input, left): sends `stop` if a `start` is outstanding. */
  stop(): boolean {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#active) return false;
    this.#active = false;
    return this.#client.typing(this.conv, 'stop');
  }
}

/** Conversations remembered by a {@link TypingLimiter} before the expired ones are pruned. */
const PRUNE_AT = 1000;

/**
 * The client's local copy of the server's typing rate limit: at most one `start` per
 * conversation per interval. Starts the server would drop anyway are not written at all, which
 * saves the frames and lets `typing()` tell the caller that nothing went out.
 */
export class TypingLimiter {
  /** When the last `typing: start` of each conversation was written. */
  readonly #starts = new Map<string, number>();
  readonly #intervalMs: number;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** Whether a `state` frame for `conv` may be written at `now` (a `stop` always may). */
  allows(conv: string, state: TypingState, now: number): boolean {
    if (state !== 'start') return true;
    const last = this.#starts.get(conv);
    return last === undefined || now - last >= this.#intervalMs;
  }

  /**
   * Records a frame written at `now`. A stop does not reset the interval: the server forwards one
   * start per 2 s, stop or not.
   */
  wrote(conv: string, state: TypingState, now: number): void {
    if (state !== 'start') return;
    if (this.#starts.size >= PRUNE_AT) {
      for (const [c, t] of this.#starts) {
        if (now - t >= this.#intervalMs) this.#starts.delete(c);
      }
    }
    this.#starts.set(conv, now);
  }
}
