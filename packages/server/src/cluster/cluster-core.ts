import { randomBytes } from 'node:crypto';
import { Client, policies } from 'cassandra-driver';
import { CassandraStore } from '../adapters/cassandra/cassandra-store.js';
import { KafkaLog } from '../adapters/kafka/kafka-log.js';
import { RedisBus } from '../adapters/redis/redis-bus.js';
import { RedisPresence } from '../adapters/redis/redis-presence.js';
import { RedisRateLimiter } from '../adapters/redis/redis-rate-limiter.js';
import type { Config } from '../config/schema.js';
import { workLimits } from '../config/work-limits.js';
import type { Core } from '../core/core.js';
import { Chat } from '../domain/chat.js';
import { Fanout } from '../domain/fanout.js';
import { admissionLimits, GroupAdmission } from '../domain/group-admission.js';
import { InboxWriter } from '../domain/inbox-writer.js';
import { PresenceService } from '../domain/presence.js';
import { ReceiptService } from '../domain/receipts.js';
import { RecentSenders } from '../domain/recent-senders.js';
import { Sequencer } from '../domain/sequencer.js';
import { UserDirectory } from '../domain/users.js';
import { WorkBudget } from '../domain/work-budget.js';
import type { Metrics } from '../gateway/metrics.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { LogSubscription } from '../ports/partitioned-log.js';
import { LAST_SEEN_SAVE_MS, settledWithin } from '../util/settled-within.js';
import { FanoutStage } from './fanout-stage.js';
import { meteredStage } from './metered-stage.js';
import { TOPICS } from './migrate.js';
import { RemoteConversationWriter, RemoteInboxAppender, Replies } from './remote.js';
import { SequencerStage } from './sequencer-stage.js';
import { ClusterSessions } from './sessions.js';

/** How long a process trusts its cached copy of a user's settings and blocks. */
const USER_CACHE_TTL_MS = 30_000;

/**
 * The consumer group of a stage: one per stage across the deployment, named after the topic prefix
 * so that deployments sharing a Kafka cluster never share a group.
 */
const groupOf = (config: Config, stage: 'sequencer' | 'fanout') => `${config.topicPrefix}${stage}`;

/**
 * Builds a cluster process: the domain on Cassandra (store), Kafka (the ingress and fan-out
 * stages), Redis (presence, the device table, rate limits, the bus). Every process serves
 * clients through `Chat` (writes travel to their conversation's owner over the ingress topic;
 * reads go to the store); the `sequencer` and `fanout` roles consume their topics, where
 * partition ownership makes one writer per conversation and one per inbox.
 */
export function createClusterCore(
  config: Config,
  deps: { log: Logger; clock: Clock; metrics: Metrics },
): Core {
  const { log, clock } = deps;
  if (!config.kafka || !config.redisUrl)
    throw new Error(
      'cluster mode needs kafka and redisUrl (PARLEY_KAFKA, PARLEY_REDIS_URL) besides cassandra',
    );
  const processId = randomBytes(6).toString('hex');
  const ingress = `${config.topicPrefix}${TOPICS.ingress}`;
  const fanoutTopic = `${config.topicPrefix}${TOPICS.fanout}`;
  const client = new Client({
    contactPoints: config.cassandra!,
    localDataCenter: config.cassandraDc,
    // Reconnect to a node that went away every 0.5-5 s (the driver's default backs off to 10 min),
    // so service resumes within seconds of Cassandra coming back.
    policies: { reconnection: new policies.reconnection.ExponentialReconnectionPolicy(500, 5_000, false) },
  });
  const store = new CassandraStore(client, {
    keyspace: config.keyspace,
    inboxTtlSeconds: Math.ceil(config.inboxRetentionMs / 1000),
  });
  const kafka = new KafkaLog({ brokers: config.kafka, clientId: `parley-${processId}` });
  // Settings and blocks are cached in every process: a change is announced on the bus, and an
  // entry is trusted for USER_CACHE_TTL_MS at most in case an announcement is lost.
  const usersChanged = `${config.topicPrefix}users-changed`;
  const users = new UserDirectory(store.users, {
    ttlMs: USER_CACHE_TTL_MS,
    now: () => clock.now(),
    changed: (user) =>
      void bus?.publish(usersChanged, user).catch((err) => {
        log.warn(
          { err: String(err) },
          'user change not announced (other processes see it within the cache TTL)',
        );
      }),
  });
  const replies = new Replies(`reply:${processId}`);
  const writer = new RemoteConversationWriter(kafka, ingress, replies, store.conversations);
  const outbox = new RemoteInboxAppender(kafka, fanoutTopic, log.child({ stage: 'receipts-publish' }));

  // Adapters that connect asynchronously are opened in start(); until then nothing is served.
  let bus: RedisBus | null = null;
  let presencePort: RedisPresence | null = null;
  let limiter: RedisRateLimiter | null = null;
  let sessions: ClusterSessions | null = null;
  let presence: PresenceService | null = null;
  let chat: Chat | null = null;
  const subscriptions: LogSubscription[] = [];
  const outboxes: RemoteInboxAppender[] = [];
  const offs: (() => Promise<void>)[] = [];
  const links: [string, Parameters<ClusterSessions['attach']>[1]][] = [];
  const need = <T>(x: T | null): T => {
    if (x === null) throw new Error('cluster core used before start()');
    return x;
  };

  return {
    gatewayId: processId,
    api: {
      chat: new Proxy({} as Chat, { get: (_t, k) => Reflect.get(need(chat), k).bind(need(chat)) }),
      sessions: {
        open: (ref) => need(sessions).open(ref),
        close: (ref) => need(sessions).close(ref),
        subscribe: (ref, u) => need(sessions).subscribe(ref, u),
        unsubscribe: (ref, u) => need(sessions).unsubscribe(ref, u),
      },
    },
    sessions: { attach: (gateway, link) => void links.push([gateway, link]) },
    async start() {
      const onError = (err: unknown) => log.warn({ err: String(err) }, 'redis: background work failed');
      [bus, presencePort, limiter] = await Promise.all([
        RedisBus.open(config.redisUrl!),
        RedisPresence.open(config.redisUrl!, { onError }),
        RedisRateLimiter.open(config.redisUrl!),
      ]);
      const budget = new WorkBudget(limiter!, workLimits(config));
      offs.push(await bus.subscribe(replies.channel, (m) => replies.received(m)));
      offs.push(await bus.subscribe(usersChanged, (user) => users.invalidate(user)));
      presence = new PresenceService(
        presencePort,
        users,
        store.users,
        clock,
        log.child({ stage: 'presence' }),
        config.maxPresenceSubscriptions,
        budget,
      );
      sessions = new ClusterSessions(
        presence,
        presencePort,
        store.inbox,
        bus,
        config.maxConnectionsPerUser,
        log.child({ stage: 'sessions' }),
      );
      for (const [g, link] of links) sessions.attach(g, link);
      await sessions.ready();
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
      chat = new Chat({
        admission: new GroupAdmission({
          writer,
          users,
          invites: store.invites,
          limiter,
          clock,
          limits: admissionLimits(config),
        }),
        messages: store.messages,
        inbox: store.inbox,
        conversations: store.conversations,
        sequencer: writer,
        receipts,
        users,
        router: sessions,
        clock,
        budget,
        maxReplyBytes: config.maxReplyBytes,
        maxGroupSize: config.maxGroupSize,
      });
      if (config.roles.includes('fanout')) {
        const inboxWriter = new InboxWriter(store.inbox, sessions, log.child({ stage: 'inbox' }));
        subscriptions.push(
          await kafka.consume(
            fanoutTopic,
            groupOf(config, 'fanout'),
            meteredStage(
              'fanout',
              new FanoutStage(inboxWriter, store.inbox, store.messages, log.child({ stage: 'fanout' })),
              deps.metrics,
            ),
          ),
        );
      }
      if (config.roles.includes('sequencer')) {
        const stageOutbox = new RemoteInboxAppender(
          kafka,
          fanoutTopic,
          log.child({ stage: 'fanout-publish' }),
        );
        outboxes.push(stageOutbox);
        const fanout = new Fanout(
          stageOutbox,
          store.messages,
          store.conversations,
          log.child({ stage: 'fanout-publish' }),
        );
        const sequencer = new Sequencer(
          store.messages,
          store.conversations,
          users,
          clock,
          log.child({ stage: 'sequencer' }),
          (batch, recipients) => {
            deps.metrics.messagesStored.inc(batch.length);
            fanout.committed(batch, recipients);
          },
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
        subscriptions.push(
          await kafka.consume(
            ingress,
            groupOf(config, 'sequencer'),
            meteredStage('sequencer', stage, deps.metrics),
          ),
        );
      }
      log.info(
        { process: processId, roles: config.roles, keyspace: config.keyspace },
        'cluster mode: engines connected',
      );
    },
    async stop() {
      // Sessions still open end here, so their users get `last_seen` before the engines close.
      await settledWithin(
        (async () => {
          await sessions?.closeAll();
          await presence?.settled();
        })(),
        LAST_SEEN_SAVE_MS,
        () => log.warn({}, 'last seen of closing sessions not saved in time'),
      );
      for (const s of subscriptions.splice(0)) await s.close().catch(() => {});
      // Receipts handed in before the stop get a few seconds to reach the log.
      await Promise.race([outbox.idle().catch(() => {}), new Promise((r) => setTimeout(r, 5_000).unref())]);
      for (const o of [outbox, ...outboxes]) o.close();
      replies.close();
      await sessions?.detachAll();
      for (const off of offs.splice(0)) await off();
      await kafka.close().catch(() => {});
      await Promise.allSettled([bus?.close(), presencePort?.close(), limiter?.close()]);
      await store.close();
    },
    healthy: () => chat !== null,
  };
}
