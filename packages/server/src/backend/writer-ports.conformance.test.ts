// Runs the writer ports' conformance suites against their in-process adapters, on the in-memory
// store, as the embedded backend wires them: the `Sequencer` (its committed batches fanned out to
// the `InboxWriter`) as the `ConversationWriter`, the `InboxWriter` as the `InboxAppender`. Their
// remote counterparts run the same suites in `cluster/remote.conformance.test.ts`.
// (Here rather than in domain/: domain tests may import the memory adapters only, not the suites.)

import { conversationWriterSuite } from '../adapters/conformance/conversation-writer.suite.js';
import { inboxAppenderSuite } from '../adapters/conformance/inbox-appender.suite.js';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import { Fanout } from '../domain/fanout.js';
import { InboxWriter } from '../domain/inbox-writer.js';
import { Sequencer } from '../domain/sequencer.js';
import { systemClock } from '../ports/clock.js';
import { silentLogger } from '../ports/logger.js';
import { frameText } from './sessions.js';

const MAX_GROUP_SIZE = 6;

conversationWriterSuite('Sequencer', async () => {
  const store = new MemoryStore();
  const blocked = new Set<string>();
  const inbox = new InboxWriter(store.inbox, { deliver: () => {} }, silentLogger);
  const fanout = new Fanout(inbox, store.messages, store.conversations, silentLogger);
  const sequencer = new Sequencer(
    store.messages,
    store.conversations,
    { isBlocked: async (blocker, sender) => blocked.has(`${blocker}\u0000${sender}`) },
    systemClock,
    silentLogger,
    [fanout],
    { maxGroupSize: MAX_GROUP_SIZE },
  );
  return {
    writer: sequencer,
    messages: store.messages,
    maxGroupSize: MAX_GROUP_SIZE,
    block: (blocker, sender) => void blocked.add(`${blocker}\u0000${sender}`),
    async close() {
      await fanout.settled();
      await inbox.idle();
      inbox.close();
    },
  };
});

inboxAppenderSuite('InboxWriter', async () => {
  const store = new MemoryStore();
  const frames = new Map<string, string[]>();
  const writer = new InboxWriter(
    store.inbox,
    { deliver: (user, frame) => void frames.set(user, [...(frames.get(user) ?? []), frameText(frame)]) },
    silentLogger,
  );
  return {
    appender: writer,
    inbox: store.inbox,
    messages: store.messages,
    // In process, `idle` already means stored: nothing more to wait for.
    stored: async () => {},
    frames: (user) => frames.get(user) ?? [],
    async close() {
      writer.close();
    },
  };
});
