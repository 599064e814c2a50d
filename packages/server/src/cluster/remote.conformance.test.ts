// Runs the writer ports' conformance suites against cluster mode's remote adapters, over the
// in-process cluster adapters (memory log, bus and store: `inProcessAdapters`), with the real
// stages consuming the log as `cluster-backend.ts` wires them: `RemoteConversationWriter` sends
// each write over the ingress topic to the `SequencerStage` (the in-process `Sequencer` behind it)
// and waits for its answer on the bus; `RemoteInboxAppender` publishes to the fan-out topic, where
// the `FanoutStage` (an `InboxWriter` behind it) numbers and stores the entries. Their in-process
// counterparts run the same suites in `backend/writer-ports.conformance.test.ts`.
import { conversationWriterSuite } from '../adapters/conformance/conversation-writer.suite.js';
import { inboxAppenderSuite } from '../adapters/conformance/inbox-appender.suite.js';
import { frameText } from '../backend/sessions.js';
import { Fanout } from '../domain/fanout.js';
import { InboxWriter } from '../domain/inbox-writer.js';
import { Sequencer } from '../domain/sequencer.js';
import { systemClock } from '../ports/clock.js';
import { silentLogger } from '../ports/logger.js';
import type { LogSubscription, PartitionedLog, PartitionHandler } from '../ports/partitioned-log.js';
import { inProcessAdapters } from './adapters.js';
import { FanoutStage } from './fanout-stage.js';
import { RemoteConversationWriter, RemoteInboxAppender, Replies } from './remote.js';
import { SequencerStage } from './sequencer-stage.js';
import { TOPICS } from './topics.js';

const MAX_GROUP_SIZE = 6;
const PREFIX = 'conformance.';

/** How long `stored` waits for the fan-out stage before failing (it takes milliseconds). */
const STORED_TIMEOUT_MS = 10_000;

/**
 * Counts the fan-out topic's records: those durably published, and those the fan-out stage has
 * handled (its `onRecords` resolved, so they are stored and delivered). `stored` waits until the
 * stage has handled as many records as were published when it was called.
 */
class FanoutProgress {
  private published = 0;
  private handled = 0;
  private waiters: { target: number; resolve: () => void }[] = [];

  /** A view of `log` that counts what is published to `topic`, once durable. */
  counting(log: PartitionedLog, topic: string): PartitionedLog {
    return {
      publish: async (t, messages) => {
        await log.publish(t, messages);
        if (t === topic) this.published += messages.length;
      },
      partitionOf: (t, key) => log.partitionOf(t, key),
      consume: (t, group, handler) => log.consume(t, group, handler),
    };
  }

  /** The fan-out stage, counting the records it has handled. */
  stage(inner: PartitionHandler): PartitionHandler {
    return {
      onAssigned: (partitions) => inner.onAssigned(partitions),
      onRevoked: (partitions) => inner.onRevoked(partitions),
      onRecords: async (partition, records) => {
        await inner.onRecords(partition, records);
        this.handled += records.length;
        this.waiters = this.waiters.filter((w) => {
          if (w.target > this.handled) return true;
          w.resolve();
          return false;
        });
      },
    };
  }

  /** Resolves once every record published so far is handled; rejects past the deadline. */
  stored(): Promise<void> {
    const target = this.published;
    if (this.handled >= target) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(
          new Error(
            `the fan-out stage handled ${this.handled} of the ${target} records published, within ${STORED_TIMEOUT_MS} ms`,
          ),
        );
      }, STORED_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ target, resolve: done });
    });
  }
}

/**
 * A cluster deployment in this process: a gateway's side (the remote adapters under test) and a
 * member running the sequencer and fan-out stages, wired as `createClusterBackend` wires them.
 */
async function inProcessCluster() {
  const adapters = inProcessAdapters(PREFIX);
  const { store } = adapters;
  const ingress = `${PREFIX}${TOPICS.ingress}`;
  const fanoutTopic = `${PREFIX}${TOPICS.fanout}`;
  const progress = new FanoutProgress();
  const log = progress.counting(adapters.log, fanoutTopic);
  const subscriptions: LogSubscription[] = [];

  // The stage member: one writer per conversation, one per inbox.
  const blocked = new Set<string>();
  const stageOutbox = new RemoteInboxAppender(log, fanoutTopic, silentLogger);
  const fanout = new Fanout(stageOutbox, store.messages, store.conversations, silentLogger);
  const sequencer = new Sequencer(
    store.messages,
    store.conversations,
    { isBlocked: async (blocker, sender) => blocked.has(`${blocker}\u0000${sender}`) },
    systemClock,
    silentLogger,
    [fanout],
    { maxGroupSize: MAX_GROUP_SIZE },
  );
  const sequencerStage = new SequencerStage(
    sequencer,
    fanout,
    stageOutbox,
    store.messages,
    store.conversations,
    adapters.bus,
    silentLogger,
  );
  const frames = new Map<string, string[]>();
  const inboxWriter = new InboxWriter(
    store.inbox,
    { deliver: (user, frame) => void frames.set(user, [...(frames.get(user) ?? []), frameText(frame)]) },
    silentLogger,
  );
  const fanoutStage = new FanoutStage(inboxWriter, store.inbox, store.messages, silentLogger);
  subscriptions.push(await log.consume(fanoutTopic, `${PREFIX}fanout`, progress.stage(fanoutStage)));
  subscriptions.push(await log.consume(ingress, `${PREFIX}sequencer`, sequencerStage));

  // The gateway's side.
  const replies = new Replies(`reply:conformance-gateway`);
  const off = await replies.listen(adapters.bus);
  const writer = new RemoteConversationWriter(log, ingress, replies, store.conversations);
  const outbox = new RemoteInboxAppender(log, fanoutTopic, silentLogger);

  return {
    store,
    writer,
    outbox,
    block: (blocker: string, sender: string) => void blocked.add(`${blocker}\u0000${sender}`),
    stored: () => progress.stored(),
    frames: (user: string) => frames.get(user) ?? [],
    async close() {
      await outbox.idle();
      await progress.stored();
      for (const s of subscriptions.splice(0)) await s.close();
      replies.close();
      outbox.close();
      stageOutbox.close();
      inboxWriter.close();
      await off();
      await adapters.close();
    },
  };
}

conversationWriterSuite('RemoteConversationWriter over the in-process cluster', async () => {
  const c = await inProcessCluster();
  return {
    writer: c.writer,
    messages: c.store.messages,
    maxGroupSize: MAX_GROUP_SIZE,
    block: c.block,
    close: c.close,
  };
});

inboxAppenderSuite('RemoteInboxAppender over the in-process cluster', async () => {
  const c = await inProcessCluster();
  return {
    appender: c.outbox,
    inbox: c.store.inbox,
    messages: c.store.messages,
    // `idle` means published: the records are stored once the fan-out stage has handled them.
    stored: c.stored,
    frames: c.frames,
    close: c.close,
  };
});
