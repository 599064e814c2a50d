/**
 * A small typed event emitter, so the SDK has no dependency on Node's `EventEmitter` and
 * listeners get the payload type of the event they subscribe to.
 *
 * @module
 */

/** A listener of event `K` of the event map `E`. */
export type Listener<E, K extends keyof E> = (payload: E[K]) => void;

/**
 * Typed publish/subscribe over an event map (`{ eventName: payloadType }`).
 *
 * A listener that throws does not stop the other listeners nor the client: the exception is
 * handed to {@link TypedEmitter.onListenerError} (the client re-emits it as `error`).
 */
export class TypedEmitter<E> {
  readonly #listeners = new Map<keyof E, Set<Listener<E, keyof E>>>();

  /** Subscribes; returns a function that unsubscribes. */
  on<K extends keyof E>(event: K, listener: Listener<E, K>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as Listener<E, keyof E>);
    return () => this.off(event, listener);
  }

  /** Subscribes for the next emission only; returns a function that unsubscribes. */
  once<K extends keyof E>(event: K, listener: Listener<E, K>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /** Unsubscribes a listener given to {@link TypedEmitter.on}. */
  off<K extends keyof E>(event: K, listener: Listener<E, K>): void {
    this.#listeners.get(event)?.delete(listener as Listener<E, keyof E>);
  }

  /** Number of listeners of an event. */
  listenerCount(event: keyof E): number {
    return this.#listeners.get(event)?.size ?? 0;
  }

  /** Calls every listener of `event` synchronously, in subscription order. */
  protected emit<K extends keyof E>(event: K, payload: E[K]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<E, K>)(payload);
      } catch (err) {
        this.onListenerError(event, err);
      }
    }
  }

  /**
   * Called when a listener throws. The default rethrows asynchronously so the exception is
   * visible (an uncaught exception) without breaking the emitter's caller.
   */
  protected onListenerError(_event: keyof E, err: unknown): void {
    setTimeout(() => {
      throw err;
    }, 0);
  }
}
