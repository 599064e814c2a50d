/** The top bar: who is signed in, the theme toggle, notifications, sign-out. */

import { useStore } from '../lib/context.js';
import { NotificationsButton } from './NotificationsButton.js';
import { ThemeToggle } from './ThemeToggle.js';

export function TopBar({ onSignOut }: { onSignOut?: (() => void) | undefined }) {
  const store = useStore();
  return (
    <header class="top-bar">
      <h1 class="brand">Parley</h1>
      <span class="me" data-testid="me">
        {store.me}
        <span class="visually-hidden"> on device </span>
        <span class="device"> · {store.device}</span>
      </span>
      <div class="top-actions">
        <NotificationsButton />
        <ThemeToggle />
        {onSignOut && (
          <button type="button" class="ghost" onClick={onSignOut} data-testid="sign-out">
            Sign out
          </button>
        )}
      </div>
    </header>
  );
}
