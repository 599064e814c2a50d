/**
 * What the connection is doing, from the SDK's `state` and `disconnected` events and the
 * browser's online status: connecting, catching up, reconnecting in N s, offline, stopped. Quiet
 * while connected. Also says how many messages wait to be sent.
 */

import { ClientState } from '@parley/sdk';
import { useNow, useStore } from '../lib/context.js';

/** Why the SDK stopped for good, in words (reasons from its `disconnected` event). */
const STOPPED: Record<string, string> = {
  replaced: 'This device connected again in another tab or window.',
  client_closed: 'Disconnected.',
  connect_rejected: 'The server refused this sign-in.',
  protocol_abuse: 'The server closed the connection (protocol error).',
  policy: 'The server refused the connection (its origin or size policy).',
};

export function ConnectionBanner() {
  const store = useStore();
  const { state, online, retryAt, stopped, everConnected } = store.connection;
  const waiting = state === ClientState.Connecting && retryAt !== undefined;
  const now = useNow(1000, waiting);
  let pending = 0;
  for (const conv of store.conversations.values())
    pending += conv.pending.filter((m) => m.status === 'pending').length;

  let text: string | null;
  let retry = false;
  if (!online) {
    text = 'You are offline. Messages you write are sent when the connection is back.';
  } else if (state === ClientState.Closed) {
    text = (stopped && STOPPED[stopped]) ?? `Disconnected (${stopped ?? 'stopped'}).`;
    retry = true;
  } else if (waiting) {
    const s = Math.max(0, Math.ceil((retryAt - now) / 1000));
    text = s > 0 ? `Connection lost. Reconnecting in ${s} s…` : 'Reconnecting…';
    retry = true;
  } else if (state === ClientState.Connecting || state === ClientState.Disconnected) {
    text = everConnected ? 'Reconnecting…' : 'Connecting…';
  } else if (state === ClientState.Syncing) {
    text = 'Catching up…';
  } else {
    text = null;
  }
  if (text === null && pending === 0) return <div class="banner-slot" aria-live="polite" />;
  const waitingNote = pending > 0 ? ` ${pending} message${pending === 1 ? '' : 's'} waiting to be sent.` : '';
  return (
    <div class="banner-slot" aria-live="polite">
      <div
        class={`banner banner-${online ? state : 'offline'}`}
        data-testid="connection-banner"
        data-state={online ? state : 'offline'}
      >
        <span>
          {text}
          {waitingNote}
        </span>
        {retry && online && (
          <button type="button" class="link" onClick={() => store.reconnectNow()}>
            {state === ClientState.Closed ? 'Reconnect' : 'Retry now'}
          </button>
        )}
      </div>
    </div>
  );
}
