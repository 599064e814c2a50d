/** A user's presence as a dot (with its meaning in text for screen readers). */

import { useStore } from '../lib/context.js';

export function PresenceDot({ user }: { user: string }) {
  const store = useStore();
  const status = store.client.presence(user)?.status;
  if (!status) return null;
  return (
    <span class={`presence-dot ${status}`} data-testid="presence-dot" data-status={status}>
      <span class="visually-hidden">{status}</span>
    </span>
  );
}
