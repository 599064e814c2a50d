/**
 * Sign-in. On a development server: a name and a device id, and the server mints a token
 * (`POST /v1/dev/token`). Anywhere: a pasted token (an app that embeds the client supplies
 * tokens itself through `mount`).
 */

import { useState } from 'preact/hooks';
import {
  DevTokensOff,
  deviceId,
  fetchDevToken,
  ID_PATTERN,
  lastUser,
  type SignIn as SignInData,
  tokenSubject,
} from '../lib/session.js';
import { ThemeToggle } from './ThemeToggle.js';

interface Props {
  onSignedIn: (s: SignInData) => void;
  /** Why the user is here again (e.g. a rejected token). */
  message?: string | undefined;
}

export function SignIn({ onSignedIn, message }: Props) {
  // Development sign-in is offered until the server says it has none (404): asking first would
  // cost a request before the form could be used.
  const [dev, setDev] = useState(true);
  const [user, setUser] = useState(lastUser());
  const [device, setDevice] = useState(deviceId());
  const [token, setToken] = useState('');
  const [error, setError] = useState(message ?? '');
  const [busy, setBusy] = useState(false);

  const signInDev = async (e: Event) => {
    e.preventDefault();
    if (!ID_PATTERN.test(user) || !ID_PATTERN.test(device)) {
      setError('Names and device ids are 1–64 letters, digits, ".", "_" or "-".');
      return;
    }
    setBusy(true);
    try {
      await fetchDevToken(user, device); // checks the name now rather than on the first connection
      onSignedIn({ mode: 'dev', user, device });
    } catch (err) {
      if (err instanceof DevTokensOff) setDev(false);
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  const signInToken = (e: Event) => {
    e.preventDefault();
    const t = token.trim();
    if (!tokenSubject(t)) {
      setError('That does not look like a Parley token (a JWT with a user id).');
      return;
    }
    if (!ID_PATTERN.test(device)) {
      setError('A device id is 1–64 letters, digits, ".", "_" or "-".');
      return;
    }
    onSignedIn({ mode: 'token', token: t, device });
  };

  const deviceField = (id: string) => (
    <>
      <label for={id}>Device id</label>
      <input
        id={id}
        data-testid={id}
        value={device}
        onInput={(e) => setDevice(e.currentTarget.value)}
        autocomplete="off"
        autocapitalize="none"
        required
      />
    </>
  );

  return (
    <main class="sign-in">
      <div class="sign-in-card">
        <div class="row spread">
          <h1 class="brand">Parley</h1>
          <ThemeToggle />
        </div>
        {error && (
          <p class="form-error" role="alert" data-testid="signin-error">
            {error}
          </p>
        )}
        {dev !== false && (
          <form class="stack" onSubmit={(e) => void signInDev(e)} aria-label="Development sign-in">
            <p class="muted">Development server: pick any name.</p>
            <label for="signin-user">Your name (user id)</label>
            <input
              id="signin-user"
              data-testid="signin-user"
              value={user}
              onInput={(e) => setUser(e.currentTarget.value)}
              autocomplete="username"
              autocapitalize="none"
              required
            />
            {deviceField('signin-device')}
            <button type="submit" data-testid="signin-submit" disabled={busy}>
              Sign in
            </button>
          </form>
        )}
        <details open={dev === false} class="token-sign-in">
          <summary>Sign in with a token</summary>
          <form class="stack" onSubmit={signInToken} aria-label="Sign in with a token">
            <label for="signin-token">Token</label>
            <textarea
              id="signin-token"
              data-testid="signin-token"
              value={token}
              rows={3}
              onInput={(e) => setToken(e.currentTarget.value)}
              required
            />
            {dev === false && deviceField('signin-token-device')}
            <button type="submit" data-testid="signin-token-submit">
              Sign in with token
            </button>
          </form>
        </details>
      </div>
    </main>
  );
}
