/**
 * The service worker (`/sw.js`): shows a notification for each Web Push and opens the chat when
 * it is clicked. Pushes carry no message text (content may be end-to-end encrypted), only
 * `{conv, seq, from, kind, inbox, unread}`. It caches nothing: the server serves the page.
 *
 * @module
 */

// A module, so that this declaration shadows the global `self` of the WebWorker library.
export {};

declare const self: ServiceWorkerGlobalScope;

/** The fields of a Parley push payload that the notification uses. */
interface PushPayload {
  conv?: string;
  from?: string;
  kind?: string;
  unread?: number;
}

self.addEventListener('install', () => {
  void self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('push', (event) => {
  event.waitUntil(showPush(readPayload(event.data)));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const conv = (event.notification.data as { conv?: string } | null)?.conv;
  event.waitUntil(openChat(conv));
});

function readPayload(data: PushMessageData | null): PushPayload {
  try {
    const p = data?.json() as unknown;
    return typeof p === 'object' && p !== null ? (p as PushPayload) : {};
  } catch {
    return {};
  }
}

async function showPush(p: PushPayload): Promise<void> {
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  // A Parley window in front shows the message itself (another tab is another device, which the
  // server may push to while this one is open). Open windows hear of every push either way.
  const inFront = windows.some((w) => w.focused && w.visibilityState === 'visible');
  for (const w of windows) w.postMessage({ type: 'push', conv: p.conv, shown: !inFront });
  if (inFront) return;
  const from = typeof p.from === 'string' ? p.from : 'Someone';
  const what = p.kind === 'image' ? 'sent a photo' : p.kind === 'file' ? 'sent a file' : 'sent a message';
  const unread = typeof p.unread === 'number' && p.unread > 0 ? p.unread : undefined;
  const nav = self.navigator as WorkerNavigator & { setAppBadge?: (n?: number) => Promise<void> };
  if (unread !== undefined) void nav.setAppBadge?.(unread).catch(() => {});
  await self.registration.showNotification(`Parley: ${from}`, {
    body: unread !== undefined ? `${from} ${what} (${unread} unread)` : `${from} ${what}`,
    tag: typeof p.conv === 'string' ? p.conv : 'parley',
    data: { conv: p.conv },
  });
}

async function openChat(conv: string | undefined): Promise<void> {
  const hash = conv ? `#/c/${encodeURIComponent(conv)}` : '#/';
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const win = windows[0];
  if (win) {
    win.postMessage({ type: 'open', conv });
    await win.focus();
    return;
  }
  await self.clients.openWindow(`/${hash}`);
}
