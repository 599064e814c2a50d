/** An open conversation: header, timeline, who is typing, composer, and its dialogs. */

import { useEffect, useState } from 'preact/hooks';
import { useStore } from '../lib/context.js';
import type { ChatMessage } from '../lib/conversation.js';
import { Composer } from './Composer.js';
import { ConversationHeader } from './ConversationHeader.js';
import { GroupInfo } from './GroupInfo.js';
import { MessageInfo } from './MessageInfo.js';
import { MessageList } from './MessageList.js';
import { TypingIndicator } from './TypingIndicator.js';

export function ConversationView({ id, onClose }: { id: string; onClose: () => void }) {
  const store = useStore();
  const conv = store.conversation(id);
  const [replyTo, setReplyTo] = useState<ChatMessage | null>(null);
  const [info, setInfo] = useState<ChatMessage | null>(null);
  const [groupInfo, setGroupInfo] = useState(false);

  // Escape from anywhere in the conversation (outside dialogs and the composer's reply) goes back.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !e.defaultPrevented && !document.querySelector('dialog[open]') && !replyTo)
        onClose();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onClose, replyTo]);

  return (
    <section class="conversation" data-testid="conversation" data-conv={id} aria-label={conv.title}>
      <ConversationHeader conv={conv} onBack={onClose} onGroupInfo={() => setGroupInfo(true)} />
      <MessageList conv={conv} onReply={setReplyTo} onInfo={setInfo} />
      <TypingIndicator users={conv.typists(Date.now())} />
      <Composer conv={conv} replyTo={replyTo} onCancelReply={() => setReplyTo(null)} />
      {info && <MessageInfo conv={conv} message={info} onClose={() => setInfo(null)} />}
      {groupInfo && <GroupInfo conv={conv} onClose={() => setGroupInfo(false)} onLeft={onClose} />}
    </section>
  );
}
