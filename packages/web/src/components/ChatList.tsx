/**
 * The chat list: conversations by last activity with unread counts, previews and presence, and
 * the forms to start a chat. Arrow keys move between chats (Tab leaves the list).
 */

import { useStore } from '../lib/context.js';
import { ChatListItem } from './ChatListItem.js';
import { NewChat } from './NewChat.js';

export function ChatList({ onOpen }: { onOpen: (conv: string) => void }) {
  const store = useStore();
  const list = store.conversationList();

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const items = [...(e.currentTarget as HTMLElement).querySelectorAll<HTMLElement>('.chat-item')];
    const i = items.indexOf(document.activeElement as HTMLElement);
    const next = items[i + (e.key === 'ArrowDown' ? 1 : -1)];
    if (next) {
      next.focus();
      e.preventDefault();
    }
  };

  return (
    <nav class="pane chat-list-pane" aria-label="Chats">
      <NewChat onOpen={onOpen} />
      {list.length === 0 ? (
        <p class="empty-state">No chats yet.</p>
      ) : (
        <ul class="chat-list" data-testid="chat-list" onKeyDown={onKeyDown}>
          {list.map((conv) => (
            <ChatListItem key={conv.id} conv={conv} selected={conv.id === store.openId} onOpen={onOpen} />
          ))}
        </ul>
      )}
    </nav>
  );
}
