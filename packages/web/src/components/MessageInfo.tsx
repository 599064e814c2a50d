/** "Message info": which members received and read one of this user's messages (from `receipts`). */

import type { ReceiptsResult } from '@parley/sdk';
import { useEffect, useState } from 'preact/hooks';
import { useStore } from '../lib/context.js';
import type { ChatMessage, Conversation } from '../lib/conversation.js';
import { Dialog } from './Dialog.js';
import { snippet } from './MessageBubble.js';
import { Ticks } from './Ticks.js';

interface Props {
  conv: Conversation;
  message: ChatMessage;
  onClose: () => void;
}

export function MessageInfo({ conv, message, onClose }: Props) {
  const store = useStore();
  const [result, setResult] = useState<ReceiptsResult | null>(null);
  const [error, setError] = useState('');
  const seq = message.seq ?? 0;

  useEffect(() => {
    store.client.receipts(conv.id).then(
      (r) => {
        conv.applyReceipts(r, store.me);
        setResult(r);
      },
      (err: unknown) => setError(err instanceof Error ? err.message : String(err)),
    );
  }, [store, conv, conv.lastSeq]);

  const others = result?.members.filter((m) => m.user !== store.me) ?? [];
  return (
    <Dialog title="Message info" onClose={onClose} testId="message-info">
      <p class="muted">{snippet(message)}</p>
      {error && <p class="form-error">{error}</p>}
      {!result && !error && <p class="muted">Loading…</p>}
      <ul class="member-list">
        {others.map((m) => {
          const state = m.read >= seq ? 'read' : m.delivered >= seq ? 'delivered' : 'sent';
          return (
            <li key={m.user} data-testid="receipt-row" data-user={m.user} data-state={state}>
              <span>{m.user}</span>
              <Ticks tick={state} />
              <span class="muted">
                {state === 'read' ? 'Read' : state === 'delivered' ? 'Delivered' : 'Not yet delivered'}
              </span>
            </li>
          );
        })}
      </ul>
    </Dialog>
  );
}
