/**
 * The conversation's header: back to the list (phones), the title, and for a direct chat the
 * other user's presence and last seen; for a group the member count and group info.
 */

import { useNow, useStore } from '../lib/context.js';
import type { Conversation } from '../lib/conversation.js';
import { formatLastSeen } from '../lib/format.js';
import { PresenceDot } from './PresenceDot.js';

interface Props {
  conv: Conversation;
  onBack: () => void;
  onGroupInfo: () => void;
}

export function ConversationHeader({ conv, onBack, onGroupInfo }: Props) {
  const store = useStore();
  const now = useNow(60_000);
  const peer = conv.peer !== store.me ? conv.peer : undefined;
  let status = '';
  if (peer) {
    const p = store.client.presence(peer);
    if (p?.status === 'online') status = 'online';
    else if (p?.last_seen !== undefined) status = formatLastSeen(p.last_seen, now);
    else if (p) status = 'offline';
  } else if (conv.kind === 'group') {
    status = conv.active ? `${conv.members} member${conv.members === 1 ? '' : 's'}` : 'you left this group';
  } else {
    status = 'notes to self';
  }
  return (
    <header class="conversation-header">
      <button type="button" class="ghost back" onClick={onBack} aria-label="Back to chats" data-testid="back">
        ←
      </button>
      <div class="conversation-title">
        <h2 data-testid="conv-title">
          {peer && <PresenceDot user={peer} />}
          {conv.title}
        </h2>
        <p class="muted" data-testid="conv-status">
          {status}
        </p>
      </div>
      {conv.kind === 'group' && (
        <button type="button" class="ghost" onClick={onGroupInfo} data-testid="group-info-button">
          Group info
        </button>
      )}
    </header>
  );
}
