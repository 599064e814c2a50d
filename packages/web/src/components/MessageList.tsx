/**
 * The timeline: day separators, messages, group changes. It stays at the bottom while the user
 * is there, keeps its place when older history is prepended, and loads older history when the
 * top comes into view (or by the button, for keyboard users).
 */

import { parseSystemMessage } from '@parley/sdk';
import type { JSX } from 'preact';
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';
import { useStore } from '../lib/context.js';
import type { ChatMessage, Conversation } from '../lib/conversation.js';
import { dayKey, formatDay } from '../lib/format.js';
import { MessageBubble } from './MessageBubble.js';
import { SystemMessage } from './SystemMessage.js';

interface Props {
  conv: Conversation;
  onReply: (m: ChatMessage) => void;
  onInfo: (m: ChatMessage) => void;
}

/** Within this many pixels of the bottom counts as "at the bottom". */
const STICKY_PX = 80;

export function MessageList({ conv, onReply, onInfo }: Props) {
  const store = useStore();
  const scroller = useRef<HTMLDivElement>(null);
  const sentinel = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const before = useRef({ height: 0, oldest: undefined as number | undefined });
  const timeline = conv.timeline();
  const oldest = conv.oldestSeq;
  const loadOlder = () => void store.loadOlder(conv.id);

  // Keep the reader's place: at the bottom if they were there, or on the same message when
  // older ones were added above.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const prev = before.current;
    if (prev.oldest !== undefined && oldest !== undefined && oldest < prev.oldest && !atBottom.current) {
      el.scrollTop += el.scrollHeight - prev.height;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
    before.current = { height: el.scrollHeight, oldest };
  });

  useEffect(() => {
    const el = sentinel.current;
    if (!el || !scroller.current) return;
    const io = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) loadOlder();
      },
      { root: scroller.current },
    );
    io.observe(el);
    return () => io.disconnect();
  });

  const onScroll = () => {
    const el = scroller.current;
    if (el) atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < STICKY_PX;
  };

  const items: JSX.Element[] = [];
  let day = '';
  for (const m of timeline) {
    const key = dayKey(m.ts);
    if (key !== day) {
      day = key;
      items.push(
        <li class="day-separator" key={`day-${key}`} data-testid="day-separator">
          <span>{formatDay(m.ts)}</span>
        </li>,
      );
    }
    const sys =
      m.kind === 'system' && m.seq !== undefined
        ? parseSystemMessage({ ...m, seq: m.seq, from_device: '' })
        : null;
    items.push(
      sys ? (
        <SystemMessage key={`${m.from}/${m.cmid}`} sys={sys} me={store.me} />
      ) : (
        <MessageBubble
          key={`${m.from}/${m.cmid}`}
          conv={conv}
          message={m}
          onReply={onReply}
          onInfo={onInfo}
        />
      ),
    );
  }

  return (
    <div class="message-scroller" ref={scroller} onScroll={onScroll}>
      <div ref={sentinel} class="sentinel" />
      {conv.hasMore && (
        <button
          type="button"
          class="link load-older"
          onClick={loadOlder}
          disabled={conv.loadingOlder}
          data-testid="load-older"
        >
          {conv.loadingOlder ? 'Loading…' : 'Load earlier messages'}
        </button>
      )}
      {!conv.loaded && conv.loading && <p class="muted center">Loading messages…</p>}
      {conv.loaded && timeline.length === 0 && <p class="muted center">No messages yet. Say hello.</p>}
      <div role="log" aria-live="polite" aria-label={`Messages with ${conv.title}`}>
        <ol class="messages" data-testid="messages">
          {items}
        </ol>
      </div>
    </div>
  );
}
