/** Something that failed, said once in an alert region, until dismissed. */

import { useStore } from '../lib/context.js';

export function Notice() {
  const store = useStore();
  if (!store.notice) return null;
  return (
    <div class="notice" role="alert" data-testid="notice">
      <span>{store.notice}</span>
      <button type="button" class="link" onClick={() => store.clearNotice()}>
        Dismiss
      </button>
    </div>
  );
}
