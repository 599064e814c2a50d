/**
 * The WebSocket surface the SDK needs: the standard browser API (`onopen`, `onmessage`,
 * `onclose`, `onerror`, `send`, `close`, `readyState`, `protocol`) and nothing else, so the
 * browser's `WebSocket` and the `ws` package's class both fit.
 *
 * @module
 */

/**
 * A WebSocket as the SDK uses it. Handler parameters are typed `never` so that both the DOM
 * and the `ws` declarations are assignable; the SDK reads only `data` of message events and
 * `code`/`reason` of close events.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  onopen: ((event: never) => unknown) | null;
  onmessage: ((event: never) => unknown) | null;
  onclose: ((event: never) => unknown) | null;
  onerror: ((event: never) => unknown) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/**
 * A WebSocket class: `globalThis.WebSocket` in browsers (and Node 22+), or `WebSocket` from the
 * `ws` package in Node 20.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** `readyState` of an open socket (the same in every implementation). */
export const WS_OPEN = 1;

/** The `globalThis.WebSocket` of the environment, if there is one. */
export function defaultWebSocket(): WebSocketConstructor | undefined {
  return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
}
