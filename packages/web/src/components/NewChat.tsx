/** Starting a chat: a direct chat by user id, or a group with a name and members. */

import { useRef, useState } from 'preact/hooks';
import { useStore } from '../lib/context.js';
import { ID_PATTERN } from '../lib/session.js';

export function NewChat({ onOpen }: { onOpen: (conv: string) => void }) {
  const store = useStore();
  const [user, setUser] = useState('');
  const [groupName, setGroupName] = useState('');
  const [members, setMembers] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const details = useRef<HTMLDetailsElement>(null);
  /** The forms fold away once a chat is open: the list is what matters then. */
  const done = (conv: string) => {
    if (details.current) details.current.open = false;
    onOpen(conv);
  };

  const startDirect = (e: Event) => {
    e.preventDefault();
    const u = user.trim();
    if (!ID_PATTERN.test(u)) return setError('A user id is letters, digits, ".", "_" or "-".');
    setError('');
    setUser('');
    done(store.startDirect(u));
  };

  const createGroup = async (e: Event) => {
    e.preventDefault();
    const list = members
      .split(/[\s,]+/)
      .map((m) => m.trim())
      .filter((m) => m !== '');
    if (groupName.trim() === '') return setError('Give the group a name.');
    const bad = list.find((m) => !ID_PATTERN.test(m));
    if (bad) return setError(`"${bad}" is not a user id.`);
    setError('');
    setBusy(true);
    const id = await store.createGroup(groupName.trim(), list);
    setBusy(false);
    if (id) {
      setGroupName('');
      setMembers('');
      done(id);
    }
  };

  return (
    <details class="new-chat" ref={details}>
      <summary data-testid="new-chat-toggle">New chat or group</summary>
      <form class="stack" onSubmit={startDirect} aria-label="Start a direct chat">
        <label for="new-chat-user">Chat with (user id)</label>
        <div class="row">
          <input
            id="new-chat-user"
            data-testid="new-chat-user"
            value={user}
            onInput={(e) => setUser(e.currentTarget.value)}
            autocomplete="off"
            autocapitalize="none"
            required
          />
          <button type="submit" data-testid="new-chat-submit">
            Start
          </button>
        </div>
      </form>
      <form class="stack" onSubmit={(e) => void createGroup(e)} aria-label="Create a group">
        <label for="new-group-name">Group name</label>
        <input
          id="new-group-name"
          data-testid="new-group-name"
          value={groupName}
          onInput={(e) => setGroupName(e.currentTarget.value)}
          maxLength={128}
        />
        <label for="new-group-members">Members (user ids, separated by commas)</label>
        <input
          id="new-group-members"
          data-testid="new-group-members"
          value={members}
          onInput={(e) => setMembers(e.currentTarget.value)}
          autocomplete="off"
          autocapitalize="none"
        />
        <button type="submit" data-testid="new-group-submit" disabled={busy}>
          Create group
        </button>
      </form>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
    </details>
  );
}
