import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromServiceAccount, type MessageObject, parseSystemMessage } from '../src/index.js';
import { removesMember } from '../src/system.js';

function msg(body: unknown, extra: Partial<MessageObject> = {}): MessageObject {
  return {
    conv: 'g:01HZ',
    seq: 3,
    ts: 1,
    from: 'alice',
    from_device: 'd1',
    cmid: 'system:3',
    kind: 'system',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...extra,
  };
}

test('parseSystemMessage reads every system event of the protocol, with the actor', () => {
  const cases: [unknown, unknown][] = [
    [
      { event: 'created', name: 'Climbing', members: ['alice', 'bob'] },
      { event: 'created', actor: 'alice', name: 'Climbing', members: ['alice', 'bob'] },
    ],
    [
      { event: 'members_added', users: ['dave'] },
      { event: 'members_added', actor: 'alice', users: ['dave'] },
    ],
    [
      { event: 'members_removed', users: ['carol'] },
      { event: 'members_removed', actor: 'alice', users: ['carol'] },
    ],
    [
      { event: 'members_removed', users: ['alice'], promoted: 'bob' },
      { event: 'members_removed', actor: 'alice', users: ['alice'], promoted: 'bob' },
    ],
    [
      { event: 'member_left', user: 'alice', promoted: 'bob' },
      { event: 'member_left', actor: 'alice', user: 'alice', promoted: 'bob' },
    ],
    [
      { event: 'member_left', user: 'alice' },
      { event: 'member_left', actor: 'alice', user: 'alice' },
    ],
    [
      { event: 'renamed', name: 'Climbing 2027' },
      { event: 'renamed', actor: 'alice', name: 'Climbing 2027' },
    ],
    [
      { event: 'role_changed', user: 'bob', role: 'admin' },
      { event: 'role_changed', actor: 'alice', user: 'bob', role: 'admin' },
    ],
    [{ event: 'group_deleted' }, { event: 'group_deleted', actor: 'alice' }],
  ];
  for (const [body, expected] of cases) assert.deepEqual(parseSystemMessage(msg(body)), expected);
});

test('parseSystemMessage answers null for ordinary, malformed and unknown system messages', () => {
  assert.equal(parseSystemMessage(msg({ event: 'renamed', name: 'x' }, { kind: 'text' })), null);
  for (const body of [
    'not json',
    '[1]',
    'null',
    '"created"',
    { event: 'created', name: 'x' },
    { event: 'created', name: 'x', members: ['a', 1] },
    { event: 'members_added', users: 'dave' },
    { event: 'members_removed' },
    { event: 'member_left', user: 7 },
    { event: 'renamed', name: null },
    { event: 'role_changed', user: 'bob', role: 'owner' },
    { event: 'pinned', seq: 4 },
    {},
  ]) {
    assert.equal(parseSystemMessage(msg(body)), null, JSON.stringify(body));
  }
  // A non-string promoted is ignored rather than passed through.
  assert.deepEqual(parseSystemMessage(msg({ event: 'member_left', user: 'a', promoted: 5 })), {
    event: 'member_left',
    actor: 'alice',
    user: 'a',
  });
});

test('removesMember: a removal or leave ends that user’s membership; a deleted group ends everyone’s', () => {
  const sys = (body: unknown) => parseSystemMessage(msg(body));
  assert.equal(removesMember(sys({ event: 'members_removed', users: ['bob'] }), 'bob'), true);
  assert.equal(removesMember(sys({ event: 'members_removed', users: ['bob'] }), 'carol'), false);
  assert.equal(removesMember(sys({ event: 'member_left', user: 'bob' }), 'bob'), true);
  assert.equal(removesMember(sys({ event: 'group_deleted' }), 'carol'), true);
  assert.equal(removesMember(sys({ event: 'renamed', name: 'x' }), 'bob'), false);
});

test('fromServiceAccount: a message whose from_device is "bot" came from a service account', () => {
  assert.equal(fromServiceAccount(msg('hi', { kind: 'text', from_device: 'bot' })), true);
  assert.equal(fromServiceAccount(msg('hi', { kind: 'text', from_device: 'server-api' })), false);
  assert.equal(fromServiceAccount(msg('hi', { kind: 'text', from_device: 'phone' })), false);
});
