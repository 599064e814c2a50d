/**
 * Who this tab is signed in as, and the per-device state that must survive a reload: the device
 * id, the sign-in, and the SDK's inbox cursor.
 *
 * The device id lives in sessionStorage, so that every tab is its own Parley device (two tabs of
 * one user are two devices, as the protocol's multi-device rules expect) while a reload keeps
 * it. The cursor is keyed by user and device in localStorage, so a reload resumes where the
 * tab left off instead of replaying the whole inbox.
 *
 * @module
 */

import type { CursorStore, TokenProvider } from '@parley/sdk';

const DEVICE_KEY = 'parley.device';
const SESSION_KEY = 'parley.session';
const LAST_USER_KEY = 'parley.lastUser';

/** How this tab signed in: a development name (tokens minted by the server) or a pasted token. */
export type SignIn =
  | { mode: 'dev'; user: string; device: string }
  | { mode: 'token'; token: string; device: string };

/** Ids as the protocol allows them (user and device ids). */
export const ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** This tab's device id: made once per tab session, kept across reloads. */
export function deviceId(): string {
  let id = sessionStorage.getItem(DEVICE_KEY);
  if (!id || !ID_PATTERN.test(id)) {
    id = `web-${crypto.randomUUID().slice(0, 8)}`;
    sessionStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

/** The sign-in of this tab, if it has one (a reload stays signed in). */
export function savedSignIn(): SignIn | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null') as SignIn | null;
    if (s?.mode === 'dev' && typeof s.user === 'string' && typeof s.device === 'string') return s;
    if (s?.mode === 'token' && typeof s.token === 'string' && typeof s.device === 'string') return s;
  } catch {
    // A damaged entry is the same as none.
  }
  return null;
}

/** Remembers the sign-in for reloads of this tab (and the name for the next sign-in form). */
export function saveSignIn(s: SignIn): void {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  sessionStorage.setItem(DEVICE_KEY, s.device);
  if (s.mode === 'dev') localStorage.setItem(LAST_USER_KEY, s.user);
}

/** Forgets the sign-in of this tab. */
export function clearSignIn(): void {
  sessionStorage.removeItem(SESSION_KEY);
}

/** The name last used in development sign-in, to prefill the form. */
export function lastUser(): string {
  return localStorage.getItem(LAST_USER_KEY) ?? '';
}

/** The SDK's inbox cursor for one user on one device, in localStorage. */
export function cursorStore(user: string, device: string): CursorStore {
  const key = `parley.cursor.${user}.${device}`;
  return {
    load: () => Number(localStorage.getItem(key) ?? 0) || 0,
    save: (n) => localStorage.setItem(key, String(n)),
  };
}

/** Thrown when the server has no development sign-in (it answers 404 outside development mode). */
export class DevTokensOff extends Error {}

/** Asks the server for a development token (`POST /v1/dev/token`, development mode only). */
export async function fetchDevToken(user: string, device: string): Promise<string> {
  const res = await fetch('/v1/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, device }),
  });
  if (res.status === 404) throw new DevTokensOff('development sign-in is off on this server');
  if (!res.ok) throw new Error(`sign-in failed (HTTP ${res.status})`);
  const { token } = (await res.json()) as { token?: unknown };
  if (typeof token !== 'string') throw new Error('sign-in failed: no token in the answer');
  return token;
}

/** The user id inside a JWT (its `sub`), without verifying it: only to key local storage. */
export function tokenSubject(token: string): string | null {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === 'string' && ID_PATTERN.test(sub) ? sub : null;
  } catch {
    return null;
  }
}

/** The token provider of a development sign-in: a fresh token for every connection attempt. */
export function devTokenProvider(user: string, device: string): TokenProvider {
  return () => fetchDevToken(user, device);
}
