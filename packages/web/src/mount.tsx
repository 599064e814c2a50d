/**
 * Embedding: an app that has its own sign-in renders Parley Web into one of its elements and
 * supplies tokens itself.
 */

import type { CursorStore, TokenProvider } from '@parley/sdk';
import { render } from 'preact';
import { App } from './components/App.js';
import { sameOriginWsUrl } from './components/Root.js';
import { ChatStore } from './lib/store.js';

/** Options of {@link mount}. */
export interface MountOptions {
  /** Returns a Parley token for each connection attempt (`refresh`: the last one was refused). */
  tokenProvider: TokenProvider;
  /** This installation's device id (`^[A-Za-z0-9_.-]{1,64}$`), stable across page loads. */
  device: string;
  /** The WebSocket URL; default the page's own origin, `/v1/ws`. */
  url?: string;
  /** Where the inbox cursor is kept (default: memory, so each page load replays the inbox). */
  cursorStore?: CursorStore;
  /** Keep the open conversation in `location.hash` (default false: the host app owns the URL). */
  hashRouting?: boolean;
}

/** A mounted client. */
export interface MountedClient {
  /** The client's state, and its `ParleyClient` as `store.client`. */
  store: ChatStore;
  /** Disconnects and removes the client from the element. */
  unmount(): Promise<void>;
}

/**
 * Renders the chat client into `element`, connected with the app's own tokens.
 *
 * @example
 * ```ts
 * import { mount } from '@parley/web';
 * const chat = mount(document.getElementById('chat')!, {
 *   device: 'web-1',
 *   tokenProvider: ({ refresh }) => fetch('/api/parley-token').then((r) => r.text()),
 * });
 * ```
 */
export function mount(element: Element, options: MountOptions): MountedClient {
  const storeOptions: ConstructorParameters<typeof ChatStore>[0] = {
    url: options.url ?? sameOriginWsUrl(),
    device: options.device,
    tokenProvider: options.tokenProvider,
  };
  if (options.cursorStore) storeOptions.cursorStore = options.cursorStore;
  const store = new ChatStore(storeOptions);
  store.start();
  render(<App store={store} hashRouting={options.hashRouting ?? false} />, element);
  return {
    store,
    async unmount() {
      render(null, element);
      await store.dispose();
    },
  };
}
