/**
 * The store of the signed-in session, for every component below `App` (which re-renders the tree
 * on every store change, so components read the store directly).
 *
 * @module
 */

import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import type { ChatStore } from './store.js';

export const StoreContext = createContext<ChatStore | null>(null);

/** The session's store. */
export function useStore(): ChatStore {
  const store = useContext(StoreContext);
  if (!store) throw new Error('useStore outside StoreContext');
  return store;
}

/** Re-renders the calling component after every store change. */
export function useStoreUpdates(store: ChatStore): void {
  const [, setVersion] = useState(store.version);
  useEffect(() => store.subscribe(() => setVersion(store.version)), [store]);
}

/** The current time, renewed every `intervalMs` while `active` (countdowns, "last seen"). */
export function useNow(intervalMs: number, active = true): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(t);
  }, [intervalMs, active]);
  return now;
}
