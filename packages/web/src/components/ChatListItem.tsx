/** One chat in the list: title, presence, last message preview, time, unread count, typing. */

import { parseSystemMessage } from '@parley/sdk';
import { useStore } from '../lib/context.js';
import type { ChatMessage, Conversation } from '../lib/conversation.js';
import { formatListTime } from '../lib/format.js';
import { PresenceDot } from './PresenceDot.js';
import { describeSystem } from './SystemMessage.js';

interface Props {
  conv: Conversation;
  selected: boolean;
  onOpen: (conv: string) => void;
}

export function ChatListItem({ conv, selected, onOpen }: Props) {
  const store = useStore();
  const typists = conv.typists(Date.now());
  const unread = conv.unread;
  const activity = Math.max(conv.lastTs, conv.last?.ts ?? 0);
  return (
    <li>
      <button
        type="button"
        class={selected ? 'chat-item selected' : 'chat-item'}
        aria-current={selected ? 'true' : undefined}
        data-testid="chat-item"
        data-conv={conv.id}
        onClick={() => onOpen(conv.id)}
      >
        <span class="chat-title">
          {conv.peer && conv.peer !== store.me && <PresenceDot user={conv.peer} />}
          <span class="chat-name" data-testid="chat-name">
            {conv.title}
          </span>
          {activity > 0 && <time class="chat-time">{formatListTime(activity)}</time>}
        </span>
        <span class="chat-second-line">
          <span class="chat-preview" data-testid="chat-preview">
            {typists.length > 0 ? (
              <em>{typists.join(', ')} typing…</em>
            ) : (
              preview(conv.last, store.me, conv.kind)
            )}
          </span>
          {unread > 0 && (
            <span class="unread" data-testid="chat-unread">
              {unread}
              <span class="visually-hidden"> unread</span>
            </span>
          )}
        </span>
      </button>
    </li>
  );
}

/** The last message in one line. */
function preview(m: ChatMessage | undefined, me: string, kind: 'direct' | 'group'): string {
  if (!m) return '';
  const who = m.from === me ? 'You: ' : kind === 'group' ? `${m.from}: ` : '';
  if (m.kind === 'system' && m.seq !== undefined) {
    const sys = parseSystemMessage({ ...m, seq: m.seq, from_device: '' });
    return sys ? describeSystem(sys, me) : '';
  }
  if (m.kind === 'image') return `${who}Photo`;
  if (m.kind === 'file') return `${who}File`;
  return `${who}${m.body}`;
}
