/**
 * One message: sender (in groups), the quoted message it replies to, text or attachment, time,
 * and for own messages the tick; actions to reply, to see who got it (own messages), and to try
 * a failed send again.
 */

import { useStore } from '../lib/context.js';
import type { ChatMessage, Conversation } from '../lib/conversation.js';
import { formatTime } from '../lib/format.js';
import { AttachmentView } from './AttachmentView.js';
import { Ticks } from './Ticks.js';

interface Props {
  conv: Conversation;
  message: ChatMessage;
  onReply: (m: ChatMessage) => void;
  onInfo: (m: ChatMessage) => void;
}

export function MessageBubble({ conv, message: m, onReply, onInfo }: Props) {
  const store = useStore();
  const mine = m.from === store.me;
  const tick = mine ? conv.tick(m) : null;
  const quoted = m.reply_to !== undefined ? conv.messages.get(m.reply_to) : undefined;
  return (
    <li
      class={mine ? 'message mine' : 'message'}
      id={m.seq !== undefined ? `msg-${conv.id}-${m.seq}` : undefined}
      data-testid="message"
      data-seq={m.seq}
      data-cmid={m.cmid}
      data-from={m.from}
      data-state={tick ?? undefined}
    >
      <div class="bubble">
        {!mine && (conv.kind === 'group' || m.bot) && (
          <div class="sender">
            {m.from}
            {m.bot && (
              <span class="bot-badge" data-testid="bot-badge">
                bot
              </span>
            )}
          </div>
        )}
        {m.reply_to !== undefined && (
          <blockquote class="quote" data-testid="quote">
            <span class="sender">{quoted?.from ?? 'Earlier message'}</span>
            <span class="quote-text">{quoted ? snippet(quoted) : `#${m.reply_to}`}</span>
          </blockquote>
        )}
        {m.kind === 'image' || m.kind === 'file' ? (
          <AttachmentView message={m} />
        ) : (
          <p class="body" data-testid="message-body">
            {m.body}
          </p>
        )}
        <div class="meta">
          <time dateTime={new Date(m.ts).toISOString()}>{formatTime(m.ts)}</time>
          {tick && <Ticks tick={tick} />}
        </div>
        {m.status === 'failed' && (
          <div class="failed" role="alert">
            Not sent{m.error ? `: ${m.error}` : ''}.{' '}
            <button
              type="button"
              class="link"
              onClick={() => store.retry(conv.id, m.cmid)}
              data-testid="retry"
            >
              Try again
            </button>
          </div>
        )}
      </div>
      {m.seq !== undefined && (
        <div class="message-actions">
          <button type="button" class="ghost small" onClick={() => onReply(m)} data-testid="reply-button">
            Reply<span class="visually-hidden"> to {m.from}</span>
          </button>
          {mine && (
            <button
              type="button"
              class="ghost small"
              onClick={() => onInfo(m)}
              data-testid="message-info-button"
            >
              Info<span class="visually-hidden">: who received and read it</span>
            </button>
          )}
        </div>
      )}
    </li>
  );
}

/** A message in a few words, for quotes. */
export function snippet(m: ChatMessage): string {
  if (m.kind === 'image') return 'Photo';
  if (m.kind === 'file') return 'File';
  return m.body.length > 80 ? `${m.body.slice(0, 80)}…` : m.body;
}
