/**
 * A browser WebSocket that the app can drop at once. Browsers keep a socket "open" for a long
 * time after the network is gone (until TCP gives up or the SDK's heartbeat times out, up to a
 * minute), so when the browser reports that it went offline the app drops the socket itself:
 * the SDK sees a close at once, shows the reconnecting state and queues sends.
 *
 * @module
 */

import type { WebSocketConstructor, WebSocketLike } from '@parley/sdk';

/** Close code reported to the SDK for a dropped socket: the one of an abnormal closure. */
const ABNORMAL_CLOSURE = 1006;

/** Tracks the sockets the SDK opened through {@link SocketControl.WebSocket}. */
export class SocketControl {
  readonly #open = new Set<DroppableSocket>();
  /** The class to give to `ParleyClient` as its `WebSocket` option. */
  readonly WebSocket: WebSocketConstructor;

  constructor(Base: typeof WebSocket = WebSocket) {
    const open = this.#open;
    this.WebSocket = class extends DroppableSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(new Base(url, protocols), open);
      }
    };
  }

  /** Closes every socket now and tells the SDK at once (it reconnects with its backoff). */
  dropAll(): void {
    for (const s of [...this.#open]) s.drop();
  }
}

/** Forwards the standard WebSocket surface the SDK uses; see {@link SocketControl}. */
class DroppableSocket implements WebSocketLike {
  onopen: ((event: never) => unknown) | null = null;
  onmessage: ((event: never) => unknown) | null = null;
  onclose: ((event: never) => unknown) | null = null;
  onerror: ((event: never) => unknown) | null = null;
  readonly #ws: WebSocket;
  readonly #registry: Set<DroppableSocket>;
  #dropped = false;

  constructor(ws: WebSocket, registry: Set<DroppableSocket>) {
    this.#ws = ws;
    this.#registry = registry;
    registry.add(this);
    ws.onopen = (e) => this.onopen?.(e as never);
    ws.onmessage = (e) => this.onmessage?.(e as never);
    ws.onerror = (e) => this.onerror?.(e as never);
    ws.onclose = (e) => {
      registry.delete(this);
      // A dropped socket already reported its close; the late real one must not count twice.
      if (!this.#dropped) this.onclose?.(e as never);
    };
  }

  get readyState(): number {
    return this.#dropped ? WebSocket.CLOSED : this.#ws.readyState;
  }

  get protocol(): string {
    return this.#ws.protocol;
  }

  send(data: string): void {
    if (!this.#dropped) this.#ws.send(data);
  }

  close(code?: number, reason?: string): void {
    this.#registry.delete(this);
    this.#ws.close(code, reason);
  }

  drop(): void {
    if (this.#dropped) return;
    this.#dropped = true;
    this.#registry.delete(this);
    this.#ws.close();
    this.onclose?.({ code: ABNORMAL_CLOSURE, reason: 'offline' } as never);
  }
}
