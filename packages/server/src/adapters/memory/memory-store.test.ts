// Runs the store ports' conformance suites against the in-memory adapter.
import { conversationStoreSuite } from '../conformance/conversation-store.suite.js';
import { fanoutRecoverySuite } from '../conformance/fanout-recovery.suite.js';
import { groupStoreSuite } from '../conformance/group-store.suite.js';
import { inboxPruningSuite } from '../conformance/inbox-pruning.suite.js';
import { inboxStoreSuite } from '../conformance/inbox-store.suite.js';
import { inviteStoreSuite } from '../conformance/invite-store.suite.js';
import { messageStoreSuite } from '../conformance/message-store.suite.js';
import { userStoreSuite } from '../conformance/user-store.suite.js';
import { MemoryStore } from './memory-store.js';

const close = async () => {};

messageStoreSuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { store: s.messages, close };
});

inboxStoreSuite('MemoryStore', async () => ({ store: new MemoryStore().inbox, close }));

fanoutRecoverySuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { recovery: s.fanoutRecovery, messages: s.messages, inbox: s.inbox, close };
});

inboxPruningSuite('MemoryStore', async () => {
  const s = new MemoryStore();
  return { pruning: s.inboxPruning, store: s.inbox, close };
});

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
