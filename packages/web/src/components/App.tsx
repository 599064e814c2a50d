/**
 * The signed-in client: top bar, connection banner, chat list and the open conversation. On a
 * phone-sized screen only one of the list and the conversation shows (CSS), and the hash route
 * (or, embedded, local state) says which.
 */

import { useEffect } from 'preact/hooks';
import { StoreContext, useStoreUpdates } from '../lib/context.js';
import { convFromHash, hashFor } from '../lib/route.js';
import type { ChatStore } from '../lib/store.js';
import { ChatList } from './ChatList.js';
import { ConnectionBanner } from './ConnectionBanner.js';
import { ConversationView } from './ConversationView.js';
import { Notice } from './Notice.js';
import { TopBar } from './TopBar.js';
import '../styles.css';

export interface AppProps {
  store: ChatStore;
  /** Keep the open conversation in `location.hash` (the standalone page; not when embedded). */
  hashRouting: boolean;
  /** Offered in the top bar when given. */
  onSignOut?: () => void;
}

export function App({ store, hashRouting, onSignOut }: AppProps) {
  useStoreUpdates(store);

  useEffect(() => {
    if (!hashRouting) return;
    const follow = () => store.open(convFromHash());
    follow();
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, [store, hashRouting]);

  const open = (conv: string | null) => {
    if (hashRouting) location.hash = hashFor(conv);
    else store.open(conv);
  };

  const openId = store.openId;
  return (
    <StoreContext.Provider value={store}>
      <div class={openId ? 'app has-open' : 'app'}>
        <TopBar onSignOut={onSignOut} />
        <ConnectionBanner />
        <Notice />
        <div class="panes">
          <ChatList onOpen={open} />
          <main class="pane conversation-pane" aria-label="Conversation">
            {openId ? (
              <ConversationView key={openId} id={openId} onClose={() => open(null)} />
            ) : (
              <p class="empty-state">Pick a chat, or start one.</p>
            )}
          </main>
        </div>
      </div>
    </StoreContext.Provider>
  );
}
