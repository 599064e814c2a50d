import { randomBytes } from 'node:crypto';
import type { Backend } from '../backend/embedded.js';
import { type PublicAddress, sweepMedia } from '../backend/media.js';
import { pushScheduler } from '../backend/push.js';
import { buildWebhooks } from '../backend/webhooks.js';
import { buildAccountAndPush, buildChat, buildKeysAndMedia, buildSessions } from '../backend/wiring.js';
import type { Config } from '../config/schema.js';
import { Fanout } from '../domain/fanout.js';
import { InboxWriter } from '../domain/inbox-writer.js';
import { ReceiptService } from '../domain/receipts.js';
import { RecentSenders } from '../domain/recent-senders.js';
import { Sequencer } from '../domain/sequencer.js';
import { UserDirectory } from '../domain/users.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { LogSubscription } from '../ports/partitioned-log.js';
import { LAST_SEEN_SAVE_MS, settledWithin } from '../util/settled-within.js';
import type { ClusterAdapters } from './adapters.js';
import { FanoutStage } from './fanout-stage.js';
import { FencedInbox, FencedMessages, fencedStage, PartitionFence } from './fencing.js';
import { logPushQueue, logWebhookQueue } from './log-job-queue.js';
import { BusSessionTransport, RemoteConversationWriter, RemoteInboxAppender, Replies } from './remote.js';
import { SequencerStage } from './sequencer-stage.js';
import { TOPICS } from './topics.js';

/** How long a process trusts its cached copy of a user's settings and blocks. */
const USER_CACHE_TTL_MS = 30_000;

/**
 * The consumer group of a stage: one per stage across the deployment, named after the topic prefix
 * so that deployments sharing a Kafka cluster never share a group.
 */
const groupOf = (config: Config, stage: 'sequencer' | 'fanout') => `${config.topicPrefix}${stage}`;

/**
 * Builds a cluster process on an adapter set (the real engines, or one process's memory in
 * tests): the domain on the shared store, the ingress and fan-out stages on the partitioned log,
 * presence, budgets and the bus between processes. Every process serves clients through `Chat`
 * (writes travel to their conversation's owner over the ingress topic; reads go to the store);
 * the `sequencer` and `fanout` roles consume their topics, where partition ownership makes one
 * writer per conversation and one per inbox. Everything is wired here, at once: `start` only
 * begins consuming.
 */
export function createClusterBackend(
  config: Config,
  adapters: ClusterAdapters,
  deps: { log: Logger; clock: Clock; metrics: Metrics; address: PublicAddress },
): Backend {
  const { log, clock, metrics } = deps;
  const { store, bus, limiter } = adapters;
  const kafka = adapters.log;
  const processId = randomBytes(6).toString('hex');
  const ingress = `${config.topicPrefix}${TOPICS.ingress}`;
  const fanoutTopic = `${config.topicPrefix}${TOPICS.fanout}`;
  // Settings and blocks are cached in every process: a change is announced on the bus, and an
  // entry is trusted for USER_CACHE_TTL_MS at most in case an announcement is lost.
  const usersChanged = `${config.topicPrefix}users-changed`;
  const users = new UserDirectory(store.users, {
    ttlMs: USER_CACHE_TTL_MS,
    clock,
    changed: (user) =>
      void bus.publish(usersChanged, user).catch((err) => {
        log.warn(
          { err: String(err) },
          'user change not announced (other processes see it within the cache TTL)',
        );
      }),
  });
  const replies = new Replies(`reply:${processId}`);
  const writer = new RemoteConversationWriter(kafka, ingress, replies, store.conversations);
  const outbox = new RemoteInboxAppender(kafka, fanoutTopic, log.child({ stage: 'receipts-publish' }));
  const webhooks = buildWebhooks({
    config,
    queue: logWebhookQueue(kafka, config.topicPrefix),
    deadLetters: store.webhookDeadLetters,
    messages: store.messages,
    clock,
    log,
    metrics,
  });
  const front = {
    config,
    store,
    users,
    limiter,
    presencePort: adapters.presence,
    clock,
    log,
    metrics,
    events: webhooks?.publisher,
  };
  const { budget, presence, sessions, devices } = buildSessions(front, new BusSessionTransport(bus));
  const pushQueue = logPushQueue(kafka, config.topicPrefix);
  const receipts = new ReceiptService(
    store.conversations,
    store.messages,
    outbox,
    users,
    new RecentSenders(),
    (conv, user) => writer.isMember(conv, user),
    clock,
    log.child({ stage: 'receipts' }),
    config.receiptCoalesceMs,
  );
  const mediaStore = adapters.media?.(deps.address);
  const { keys, media } = buildKeysAndMedia(front, { writer, sessions, budget, mediaStore });
  const chat = buildChat(front, { writer, receipts, sessions, budget, media });
  // `push` is the push role: it sends the jobs of the push topic's partitions this process owns.
  const { account, push } = buildAccountAndPush(front, {
    mode: 'cluster',
    writer,
    devices,
    budget,
    queue: pushQueue,
    chat,
  });
  const stageOutbox = new RemoteInboxAppender(kafka, fanoutTopic, log.child({ stage: 'fanout-publish' }));

  // The fan-out role's inbox writer; its health is the process's readiness and a gauge.
  const pushJobs = pushScheduler({ devices, presence: adapters.presence, queue: pushQueue, log, metrics });
  // Each stage's members fence one another by partition epochs (`ports/epoch-fencing.ts`).
  const fenceOf = (stage: 'sequencer' | 'fanout') =>
    new PartitionFence(store.stageEpochs, groupOf(config, stage), processId, log.child({ stage }));
  const fanoutFence = fenceOf('fanout');
  const fencedInbox = new FencedInbox(
    store.inbox,
    store.epochInbox,
    fanoutFence,
    log.child({ stage: 'fanout' }),
  );
  const inboxWriter = new InboxWriter(fencedInbox, sessions, log.child({ stage: 'inbox' }), {
    storedListeners: webhooks ? [pushJobs, webhooks.publisher] : [pushJobs],
  });
  metrics.watchInboxWriter(() => inboxWriter.healthy);
  if (adapters.requests) metrics.watchEngines(adapters.requests);
  /** The fan-out role: numbers and stores each user's inbox entries, then routes them live. */
  const fanoutStage = () =>
    metrics.meteredStage(
      'fanout',
      fencedStage(
        new FanoutStage(inboxWriter, fencedInbox, store.messages, log.child({ stage: 'fanout' })),
        fanoutFence,
        fencedInbox,
      ),
    );

  /** The sequencer role: one writer per conversation of the partitions this process owns. */
  const sequencerStage = () => {
    const fence = fenceOf('sequencer');
    const messages = new FencedMessages(store.messages, store.epochMessages, fence);
    const fanout = new Fanout(
      stageOutbox,
      store.messages,
      store.conversations,
      log.child({ stage: 'fanout-publish' }),
    );
    const sequencer = new Sequencer(
      messages,
      store.conversations,
      users,
      clock,
      log.child({ stage: 'sequencer' }),
      [metrics, fanout],
      { maxGroupSize: config.maxGroupSize },
    );
    const stage = new SequencerStage(
      sequencer,
      fanout,
      stageOutbox,
      store.messages,
      store.conversations,
      bus,
      log.child({ stage: 'sequencer' }),
    );
    return metrics.meteredStage('sequencer', fencedStage(stage, fence));
  };

  const subscriptions: LogSubscription[] = [];
  const offs: (() => Promise<void>)[] = [];
  let started = false;
  let sweep: NodeJS.Timeout | undefined;

  return {
    gatewayId: processId,
    api: { chat, sessions, account, keys, media },
    operator: sessions,
    limiter,
    sessions,
    ...(mediaStore ? { mediaStore } : {}),
    async start() {
      offs.push(await replies.listen(bus));
      offs.push(await bus.subscribe(usersChanged, (user) => users.invalidate(user)));
      await sessions.ready();
      if (config.roles.includes('fanout'))
        subscriptions.push(await kafka.consume(fanoutTopic, groupOf(config, 'fanout'), fanoutStage()));
      if (config.roles.includes('sequencer'))
        subscriptions.push(await kafka.consume(ingress, groupOf(config, 'sequencer'), sequencerStage()));
      if (config.roles.includes('push')) await push.start();
      if (config.roles.includes('webhooks')) await webhooks?.dispatcher.start();
      if (config.roles.includes('maintenance')) sweep = sweepMedia(media, config, log);
      started = true;
      log.info(
        { process: processId, roles: config.roles, keyspace: config.keyspace },
        'cluster mode: engines connected',
      );
    },
    async stop() {
      // Sessions still open end here, so their users get `last_seen` before the engines close.
      await settledWithin(
        (async () => {
          await sessions.closeAll();
          await Promise.all([presence.settled(), devices.settled()]);
        })(),
        LAST_SEEN_SAVE_MS,
        () => log.warn({}, 'last seen of closing sessions not saved in time'),
      );
      if (sweep) clearInterval(sweep);
      for (const s of subscriptions.splice(0)) await s.close().catch(() => {});
      await pushJobs.settled();
      await webhooks?.publisher.settled();
      if (config.roles.includes('push')) await push.stop().catch(() => {});
      if (config.roles.includes('webhooks')) await webhooks?.dispatcher.stop().catch(() => {});
      await receipts.settled();
      // Receipts handed in before the stop get a few seconds to reach the log.
      await Promise.race([outbox.idle().catch(() => {}), new Promise((r) => setTimeout(r, 5_000).unref())]);
      for (const o of [outbox, stageOutbox]) o.close();
      inboxWriter.close();
      replies.close();
      await sessions.detachAll();
      for (const off of offs.splice(0)) await off();
      await adapters.close();
    },
    healthy: () => started && inboxWriter.healthy,
  };
}
