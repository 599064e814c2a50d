/** The page Parley serves at `/`: applies the theme, renders the client, follows notification clicks. */

import { render } from 'preact';
import { Root } from './components/Root.js';
import { hashFor } from './lib/route.js';
import { applySavedTheme } from './lib/theme.js';

applySavedTheme();
render(<Root />, document.getElementById('app')!);

// A click on a notification asks the open page (through the service worker) to show its chat.
navigator.serviceWorker?.startMessages();
navigator.serviceWorker?.addEventListener('message', (e: MessageEvent<{ type?: string; conv?: string }>) => {
  if (e.data?.type === 'open' && typeof e.data.conv === 'string') location.hash = hashFor(e.data.conv);
});
