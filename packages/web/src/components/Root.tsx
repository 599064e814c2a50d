/**
 * The standalone page: the sign-in form until this tab is signed in, then the client. The
 * sign-in is kept in sessionStorage, so a reload stays signed in as the same device.
 */

import { useEffect, useMemo, useState } from 'preact/hooks';
import {
  clearSignIn,
  cursorStore,
  devTokenProvider,
  type SignIn as SignInData,
  savedSignIn,
  saveSignIn,
  tokenSubject,
} from '../lib/session.js';
import { ChatStore } from '../lib/store.js';
import { App } from './App.js';
import { SignIn } from './SignIn.js';

/** The page's own WebSocket endpoint: the server that served the page. */
export function sameOriginWsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
}

export function Root() {
  const [signIn, setSignIn] = useState<SignInData | null>(savedSignIn());
  const [message, setMessage] = useState<string | undefined>(undefined);
  if (!signIn) {
    return (
      <SignIn
        message={message}
        onSignedIn={(s) => {
          saveSignIn(s);
          setMessage(undefined);
          setSignIn(s);
        }}
      />
    );
  }
  const signOut = (why?: string) => {
    clearSignIn();
    setMessage(why);
    setSignIn(null);
  };
  return <Session signIn={signIn} onSignOut={signOut} />;
}

function Session({ signIn, onSignOut }: { signIn: SignInData; onSignOut: (why?: string) => void }) {
  const store = useMemo(() => {
    const user = signIn.mode === 'dev' ? signIn.user : (tokenSubject(signIn.token) ?? '');
    const tokenProvider =
      signIn.mode === 'dev'
        ? devTokenProvider(signIn.user, signIn.device)
        : ({ refresh }: { refresh: boolean }) => {
            if (!refresh) return signIn.token;
            // A pasted token cannot be renewed here: ask for a new one. This attempt never ends; the
            // store is disposed with this session.
            queueMicrotask(() => onSignOut('The server refused the token, or it expired. Paste a new one.'));
            return new Promise<string>(() => {});
          };
    return new ChatStore({
      url: sameOriginWsUrl(),
      device: signIn.device,
      user,
      tokenProvider,
      cursorStore: cursorStore(user, signIn.device),
    });
  }, [signIn]);

  useEffect(() => {
    store.start();
    return () => void store.dispose();
  }, [store]);

  return <App store={store} hashRouting onSignOut={() => onSignOut()} />;
}
