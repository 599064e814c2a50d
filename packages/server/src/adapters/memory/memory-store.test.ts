// Runs the store ports' conformance suites against the in-memory adapter.
import { conversationStoreSuite } from '../conformance/conversation-store.suite.js';
import { groupStoreSuite } from '../conformance/group-store.suite.js';
import { inboxStoreSuite } from '../conformance/inbox-store.suite.js';
import { inviteStoreSuite } from '../conformance/invite-store.suite.js';
import { messageStoreSuite } from '../conformance/message-store.suite.js';
import { userStoreSuite } from '../conformance/user-store.suite.js';
import { MemoryStore } from './memory-store.js';

const close = async () => {};

messageStoreSuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { store: s.messages, inbox: s.inbox, close };
});

inboxStoreSuite('MemoryStore', async () => ({ store: new MemoryStore().inbox, close }));

conversationStoreSuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { store: s.conversations, messages: s.messages, close };
});

groupStoreSuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { messages: s.messages, conversations: s.conversations, close };
});

userStoreSuite('MemoryStore', async () => ({ store: new MemoryStore().users, close }));

inviteStoreSuite('MemoryStore', async () => ({ store: new MemoryStore().invites, close }));
