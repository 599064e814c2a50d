/**
 * Group info: the members and their roles; admins add, remove, rename and change roles; anyone
 * leaves. It reloads whenever a group change arrives (someone else may be editing too).
 */

import type { GroupInfoResult } from '@parley/sdk';
import { useEffect, useState } from 'preact/hooks';
import { useStore } from '../lib/context.js';
import type { Conversation } from '../lib/conversation.js';
import { ID_PATTERN } from '../lib/session.js';
import { Dialog } from './Dialog.js';

interface Props {
  conv: Conversation;
  onClose: () => void;
  onLeft: () => void;
}

export function GroupInfo({ conv, onClose, onLeft }: Props) {
  const store = useStore();
  const [info, setInfo] = useState<GroupInfoResult | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [add, setAdd] = useState('');
  const [name, setName] = useState(conv.title);
  const [busy, setBusy] = useState(false);
  const me = store.me;

  useEffect(() => {
    let live = true;
    void store.groupInfo(conv.id).then((r) => {
      if (!live) return;
      setInfo(r);
      setLoaded(true);
    });
    return () => {
      live = false;
    };
  }, [store, conv.id, conv.changes]);

  const admin = info?.members.some((m) => m.user === me && m.role === 'admin') ?? false;
  const change = async (action: () => Promise<unknown>, what: string) => {
    setBusy(true);
    const ok = await store.groupChange(action, what);
    setBusy(false);
    return ok;
  };

  const onAdd = async (e: Event) => {
    e.preventDefault();
    const users = add.split(/[\s,]+/).filter((u) => u !== '');
    if (users.length === 0 || !users.every((u) => ID_PATTERN.test(u))) return;
    if (await change(() => store.client.addMembers(conv.id, users), `add ${users.join(', ')}`)) setAdd('');
  };

  const onRename = (e: Event) => {
    e.preventDefault();
    const n = name.trim();
    if (n !== '' && n !== info?.name)
      void change(() => store.client.updateGroup(conv.id, { name: n }), 'rename the group');
  };

  const onLeave = async () => {
    if (!confirm(`Leave "${conv.title}"?`)) return;
    if (await change(() => store.client.leave(conv.id), 'leave the group')) {
      onClose();
      onLeft();
    }
  };

  return (
    <Dialog title="Group info" onClose={onClose} testId="group-info">
      {!loaded && <p class="muted">Loading…</p>}
      {loaded && !info && <p class="muted">You are no longer a member of this group.</p>}
      {info && (
        <>
          {admin ? (
            <form class="row" onSubmit={onRename}>
              <label for="group-rename" class="visually-hidden">
                Group name
              </label>
              <input
                id="group-rename"
                data-testid="group-rename-input"
                value={name}
                maxLength={128}
                onInput={(e) => setName(e.currentTarget.value)}
              />
              <button type="submit" disabled={busy} data-testid="group-rename-submit">
                Rename
              </button>
            </form>
          ) : (
            <p>
              <strong>{info.name}</strong>
            </p>
          )}
          <h3>
            {info.members.length} member{info.members.length === 1 ? '' : 's'}
          </h3>
          <ul class="member-list" data-testid="group-members">
            {info.members.map((m) => (
              <li key={m.user} data-testid="group-member" data-user={m.user} data-role={m.role}>
                <span>
                  {m.user === me ? `${m.user} (you)` : m.user}
                  {m.role === 'admin' && <span class="badge">admin</span>}
                </span>
                {admin && m.user !== me && (
                  <span class="member-actions">
                    <button
                      type="button"
                      class="ghost small"
                      disabled={busy}
                      onClick={() =>
                        void change(
                          () =>
                            store.client.setRole(conv.id, m.user, m.role === 'admin' ? 'member' : 'admin'),
                          `change the role of ${m.user}`,
                        )
                      }
                    >
                      {m.role === 'admin' ? 'Make member' : 'Make admin'}
                    </button>
                    <button
                      type="button"
                      class="ghost small danger"
                      disabled={busy}
                      data-testid={`group-remove-${m.user}`}
                      onClick={() =>
                        void change(() => store.client.removeMembers(conv.id, [m.user]), `remove ${m.user}`)
                      }
                    >
                      Remove<span class="visually-hidden"> {m.user}</span>
                    </button>
                  </span>
                )}
              </li>
            ))}
          </ul>
          {admin && (
            <form class="stack" onSubmit={(e) => void onAdd(e)}>
              <label for="group-add">Add members (user ids)</label>
              <div class="row">
                <input
                  id="group-add"
                  data-testid="group-add-input"
                  value={add}
                  autocomplete="off"
                  autocapitalize="none"
                  onInput={(e) => setAdd(e.currentTarget.value)}
                />
                <button type="submit" disabled={busy} data-testid="group-add-submit">
                  Add
                </button>
              </div>
            </form>
          )}
          <button
            type="button"
            class="danger"
            disabled={busy}
            onClick={() => void onLeave()}
            data-testid="group-leave"
          >
            Leave group
          </button>
        </>
      )}
    </Dialog>
  );
}
