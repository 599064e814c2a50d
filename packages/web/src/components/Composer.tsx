/**
 * Writing: a text field (Enter sends, Shift+Enter breaks the line), a photo/file picker, the
 * message being replied to, and typing notifications while the user types.
 */

import { useEffect, useRef, useState } from 'preact/hooks';
import { useStore } from '../lib/context.js';
import type { ChatMessage, Conversation } from '../lib/conversation.js';
import { Icon } from './Icon.js';
import { snippet } from './MessageBubble.js';

interface Props {
  conv: Conversation;
  replyTo: ChatMessage | null;
  onCancelReply: () => void;
}

/** The protocol's body limit is 64 KiB of UTF-8; stay clear of it. */
const MAX_TEXT = 16_000;

export function Composer({ conv, replyTo, onCancelReply }: Props) {
  const store = useStore();
  const [text, setText] = useState('');
  const input = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    // Opening a conversation or choosing a message to reply to puts the cursor in the field.
    input.current?.focus();
  }, [conv.id, replyTo]);

  useEffect(() => () => store.stoppedTyping(conv.id), [store, conv.id]);

  if (!conv.active) {
    return (
      <p class="composer inactive" data-testid="composer-inactive">
        You are no longer a member of this group.
      </p>
    );
  }

  const send = () => {
    const body = text.trim();
    if (body === '') return;
    store.sendText(conv.id, body, replyTo?.seq);
    store.stoppedTyping(conv.id);
    setText('');
    onCancelReply();
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === 'Escape' && replyTo) {
      onCancelReply();
    }
  };

  const onFiles = (e: Event) => {
    const el = e.currentTarget as HTMLInputElement;
    for (const file of el.files ?? []) store.sendFile(conv.id, file, replyTo?.seq);
    el.value = '';
    onCancelReply();
  };

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      {replyTo && (
        <div class="replying" data-testid="replying-to">
          <span>
            Replying to <strong>{replyTo.from}</strong>: {snippet(replyTo)}
          </span>
          <button type="button" class="ghost small" onClick={onCancelReply} aria-label="Cancel reply">
            ✕
          </button>
        </div>
      )}
      <div class="composer-row">
        <label class="attach ghost" title="Attach a photo or file">
          <Icon name="attach" />
          <span class="visually-hidden">Attach a photo or file</span>
          <input type="file" class="visually-hidden" data-testid="attach-input" onChange={onFiles} multiple />
        </label>
        <label for="composer-input" class="visually-hidden">
          Message
        </label>
        <textarea
          id="composer-input"
          ref={input}
          data-testid="composer-input"
          rows={1}
          maxLength={MAX_TEXT}
          placeholder="Message"
          value={text}
          onInput={(e) => {
            const value = e.currentTarget.value;
            setText(value);
            store.typed(conv.id, value);
          }}
          onKeyDown={onKeyDown}
        />
        <button type="submit" data-testid="composer-send" disabled={text.trim() === ''}>
          Send
        </button>
      </div>
    </form>
  );
}
