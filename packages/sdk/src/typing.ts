/**
 * {@link TypingController}: turns keystrokes into typing indicators, so an application does not
 * have to remember to send `stop` when the user pauses.
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
