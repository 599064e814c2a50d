/**
 * Where a device keeps its keys and sessions between runs. The application supplies the storage
 * (IndexedDB in a browser, an encrypted file or the OS keychain in Node); this package only needs
 * named JSON values, so it never depends on one.
 *
 * @module
 */

/** A JSON value as stored: what `JSON.stringify` writes and `JSON.parse` reads back. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Asynchronous get/set/delete of JSON values by name. Values hold private keys: an
 * implementation should keep them encrypted at rest where the platform allows it.
 */
export interface KeyStorage {
  /** The value stored under `name`, or `undefined` when there is none. */
  get(name: string): Promise<Json | undefined>;
  /** Stores `value` under `name`, replacing any previous value. */
  set(name: string, value: Json): Promise<void>;
  /** Removes `name` (no error when absent). */
  delete(name: string): Promise<void>;
}

/**
 * A {@link KeyStorage} in memory, for tests and for sessions that must not outlive the process.
 * It stores serialized copies, so a caller that mutates an object after `set` does not change
 * what was stored (as with a real store), and a value that is not JSON fails here as it would there.
 */
export class MemoryKeyStorage implements KeyStorage {
  readonly #values = new Map<string, string>();

  async get(name: string): Promise<Json | undefined> {
    const text = this.#values.get(name);
    return text === undefined ? undefined : (JSON.parse(text) as Json);
  }

  async set(name: string, value: Json): Promise<void> {
    this.#values.set(name, JSON.stringify(value));
  }

  async delete(name: string): Promise<void> {
    this.#values.delete(name);
  }

  /** The names stored, for tests and diagnostics. */
  names(): string[] {
    return [...this.#values.keys()];
  }
}
