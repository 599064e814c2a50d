import { join } from 'node:path';
import { MemoryPresence } from '../adapters/memory/memory-presence.js';
import { MemoryRateLimiter } from '../adapters/memory/memory-rate-limiter.js';
import { SqliteStore } from '../adapters/sqlite/sqlite-store.js';
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
import type { MediaStore } from '../ports/media-store.js';
import type { RateLimiter } from '../ports/rate-limiter.js';
import type { GatewayLink } from '../ports/sessions.js';
import { LAST_SEEN_SAVE_MS, settledWithin } from '../util/settled-within.js';
import type { BackendApi, OperatorApi } from './api.js';
import { embeddedMediaStore, type PublicAddress, sweepMedia } from './media.js';
import { pushScheduler } from './push.js';
import { buildWebhooks } from './webhooks.js';
import { buildAccountAndPush, buildChat, buildKeysAndMedia, buildSessions } from './wiring.js';

/** The file of the embedded store inside the data directory. */
export const DB_FILE = 'parley.db';

/** The message path behind the gateways: store, single writers, fan-out, inboxes, sessions. */
export interface Backend {
  api: BackendApi;
  /** The operator's operations, for the server API. */
  operator: OperatorApi;
  /** The deployment's token buckets (the server API's per-key budget is one). */
  limiter: RateLimiter;
  /** Gateways attach here to receive live frames; the function returned detaches one. */
  sessions: { attach(gateway: string, link: GatewayLink): () => void };
  /** The id the gateway of this process uses (unique in a cluster). */
  gatewayId: string;
  /** Where media bytes go (absent: not configured); the client listener serves Parley's own file store. */
  mediaStore?: MediaStore;
  /** Redoes fan-out interrupted by a crash; run before serving. */
  start(): Promise<void>;
  /** Waits for fan-out and inbox writes, then closes the store. */
  stop(): Promise<void>;
  /** False once the store failed, or while the inbox writer's store keeps failing (`/readyz` 503). */
  healthy(): boolean;
}

/**
 * Builds the embedded backend: the SQLite store, the conversation writers (sequencer), fan-out, the
 * inbox writer, receipts, users, presence and the session registry, wired along the message path
 * (sequencer → store → fan-out → inbox writer → router → gateways).
 */
export function createEmbeddedBackend(
  config: Config,
  deps: { log: Logger; clock: Clock; metrics: Metrics; address: PublicAddress },
): Backend {
  const { log, clock, metrics } = deps;
  const store = new SqliteStore(join(config.dataDir, DB_FILE), {
    onCommit: metrics.commit,
    commitDelayMs: config.commitDelayMs,
    onFailure: (reason) => log.error({ reason }, 'store failed: writes answer unavailable until restart'),
  });
  const users = new UserDirectory(store.users);
  const recent = new RecentSenders();
  const webhooks = buildWebhooks({
    config,
    queue: store.webhookQueue,
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
    limiter: new MemoryRateLimiter(clock),
    presencePort: new MemoryPresence(),
    clock,
    log,
    metrics,
    events: webhooks?.publisher,
  };
  // The router: every gateway of this backend is attached here (in process, or workers over IPC).
  const { budget, presence, sessions, devices } = buildSessions(front);
  const pushJobs = pushScheduler({
    devices,
    presence: front.presencePort,
    queue: store.pushQueue,
    log,
    metrics,
  });
  const inboxWriter = new InboxWriter(store.inbox, sessions, log.child({ stage: 'inbox' }), {
    storedListeners: webhooks ? [pushJobs, webhooks.publisher] : [pushJobs],
    storeWritesInOrder: store.writesInOrder,
  });
  const fanout = new Fanout(inboxWriter, store.messages, store.conversations, log.child({ stage: 'fanout' }));
  const sequencer = new Sequencer(
    store.messages,
    store.conversations,
    users,
    clock,
    log.child({ stage: 'sequencer' }),
    [metrics, recent, fanout],
    { maxGroupSize: config.maxGroupSize, storeWritesInOrder: store.writesInOrder },
  );
  const receipts = new ReceiptService(
    store.conversations,
    store.messages,
    inboxWriter,
    users,
    recent,
    (conv, user) => sequencer.isMember(conv, user),
    clock,
    log.child({ stage: 'receipts' }),
    config.receiptCoalesceMs,
  );
  const mediaStore = embeddedMediaStore(config, deps.address);
  const { keys, media } = buildKeysAndMedia(front, { writer: sequencer, sessions, budget, mediaStore });
  const chat = buildChat(front, { writer: sequencer, receipts, sessions, budget, media });
  const { account, push } = buildAccountAndPush(front, {
    mode: 'embedded',
    writer: sequencer,
    devices,
    budget,
    queue: store.pushQueue,
    chat,
  });
  metrics.watch({
    pendingWrites: () => store.pendingWrites,
    conversationsInMemory: () => sequencer.conversationsInMemory,
  });
  metrics.watchInboxWriter(() => inboxWriter.healthy);

  const prune = setInterval(() => {
    store.inboxPruning.prune(clock.now() - config.inboxRetentionMs).then(
      (n) => n > 0 && log.info({ entries: n }, 'pruned expired inbox entries'),
      (err) => log.warn({ err: String(err) }, 'inbox pruning failed'),
    );
  }, config.inboxPruneIntervalMs);
  prune.unref();
  const sweep = sweepMedia(media, config, log);

  return {
    api: { chat, sessions, account, keys, media },
    operator: sessions,
    limiter: front.limiter,
    mediaStore,
    sessions,
    gatewayId: 'local',
    async start() {
      await fanout.recover(store.fanoutRecovery);
      await push.start();
      await webhooks?.dispatcher.start();
    },
    async stop() {
      clearInterval(prune);
      clearInterval(sweep);
      await sessions.closeAll();
      const saved = Promise.all([presence.settled(), devices.settled()]).then(() => {});
      await settledWithin(saved, LAST_SEEN_SAVE_MS, () =>
        log.warn({ waitedMs: LAST_SEEN_SAVE_MS }, 'last seen not saved in time; closing the store'),
      );
      await receipts.settled();
      await fanout.settled();
      await inboxWriter.idle();
      inboxWriter.close();
      await pushJobs.settled();
      await webhooks?.publisher.settled();
      await push.stop();
      await webhooks?.dispatcher.stop();
      await store.close();
    },
    healthy: () => store.healthy && inboxWriter.healthy,
  };
}
