/** The state of an own message: waiting, failed, sent, delivered, read. */

import type { Tick } from '../lib/conversation.js';

const GLYPHS: Record<Tick, string> = {
  pending: '◷',
  failed: '!',
  sent: '✓',
  delivered: '✓✓',
  read: '✓✓',
};

const LABELS: Record<Tick, string> = {
  pending: 'Waiting to send',
  failed: 'Not sent',
  sent: 'Sent',
  delivered: 'Delivered',
  read: 'Read',
};

export function Ticks({ tick }: { tick: Tick }) {
  return (
    <span class={`tick tick-${tick}`} data-testid="tick" data-state={tick} title={LABELS[tick]}>
      <span aria-hidden="true">{GLYPHS[tick]}</span>
      <span class="visually-hidden">{LABELS[tick]}</span>
    </span>
  );
}
