import { BeforeSendHook } from '../adapters/http/before-send-hook.js';
import type { ClusterStore } from '../cluster/adapters.js';
import type { Config } from '../config/schema.js';
import { workLimits } from '../config/work-limits.js';
import { Account } from '../domain/account.js';
import { Chat } from '../domain/chat.js';
import { DeviceRegistry } from '../domain/devices.js';
import { admissionLimits, GroupAdmission } from '../domain/group-admission.js';
import { KeyService } from '../domain/keys.js';
import { MediaService } from '../domain/media.js';
import { PresenceService } from '../domain/presence.js';
import type { PushDispatcher } from '../domain/push-dispatcher.js';
import type { ReceiptService } from '../domain/receipts.js';
import type { UserDirectory } from '../domain/users.js';
import type { UserEvents } from '../domain/webhook-publisher.js';
import { WorkBudget } from '../domain/work-budget.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../ports/clock.js';
import type { ConversationWriter } from '../ports/conversation-writer.js';
import type { Logger } from '../ports/logger.js';
import type { MediaStore } from '../ports/media-store.js';
import type { PresencePort } from '../ports/presence.js';
import type { PushQueue } from '../ports/push-queue.js';
import type { RateLimiter } from '../ports/rate-limiter.js';
import type { SessionTransport } from '../ports/sessions.js';
import { pushDispatcher, pushProviders } from './push.js';
import { SessionRegistry } from './sessions.js';

/** What both backends wire their front half from: the same objects over their own adapters. */
export interface FrontDeps {
  config: Config;
  store: ClusterStore;
  users: UserDirectory;
  limiter: RateLimiter;
  presencePort: PresencePort;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** Hears presence and device changes (the webhook publisher, when webhooks are on). */
  events?: UserEvents | undefined;
}

/**
 * The work budgets, presence and the session registry, as every backend has them; `transport`
 * reaches other processes' gateways (cluster mode).
 */
export function buildSessions(d: FrontDeps, transport?: SessionTransport) {
  const budget = new WorkBudget(d.limiter, workLimits(d.config), (kind) =>
    d.metrics.budgetRefusals.inc({ budget: kind }),
  );
  const presence = new PresenceService(
    d.presencePort,
    d.users,
    d.store.users,
    d.clock,
    d.log.child({ stage: 'presence' }),
    d.config.maxPresenceSubscriptions,
    budget,
    d.events,
  );
  // Revoking a device closes its connection through the registry built just below, and deletes
  // its keys and queued `to_device` messages.
  const devices: DeviceRegistry = new DeviceRegistry(
    d.store.devices,
    d.clock,
    async (user, device) => {
      await Promise.all([
        sessions.closeDevice(user, device),
        d.store.keys.remove(user, device),
        d.store.deviceQueue.remove(user, device),
      ]);
    },
    {
      onWriteError: (err) => d.log.warn({ err: String(err) }, 'device last seen not saved'),
      events: d.events,
      serviceAccounts: new Set(d.config.serviceAccounts),
    },
  );
  const sessions: SessionRegistry = new SessionRegistry(
    presence,
    d.presencePort,
    d.store.inbox,
    d.config.maxConnectionsPerUser,
    d.log.child({ stage: 'sessions' }),
    devices,
    transport,
  );
  return { budget, presence, sessions, devices };
}

/** The chat operations over a conversation writer (the local sequencer, or the cluster's proxy). */
export function buildChat(
  d: FrontDeps,
  x: {
    writer: ConversationWriter;
    receipts: ReceiptService;
    sessions: SessionRegistry;
    budget: WorkBudget;
    media: MediaService;
  },
): Chat {
  return new Chat({
    admission: new GroupAdmission({
      writer: x.writer,
      users: d.users,
      invites: d.store.invites,
      limiter: d.limiter,
      clock: d.clock,
      limits: admissionLimits(d.config),
    }),
    messages: d.store.messages,
    inbox: d.store.inbox,
    conversations: d.store.conversations,
    sequencer: x.writer,
    receipts: x.receipts,
    users: d.users,
    router: x.sessions,
    clock: d.clock,
    budget: x.budget,
    maxReplyBytes: d.config.maxReplyBytes,
    maxGroupSize: d.config.maxGroupSize,
    media: x.media,
    ...(d.config.beforeSendUrl === undefined ? {} : { filter: beforeSendHook(d) }),
  });
}

/** The operator's before-send hook, as configured. */
function beforeSendHook(d: FrontDeps): BeforeSendHook {
  const c = d.config;
  return new BeforeSendHook({
    url: c.beforeSendUrl!,
    secret: c.beforeSendSecret,
    timeoutMs: c.beforeSendTimeoutMs,
    failOpen: c.beforeSendPolicy === 'open',
    maxInFlight: c.beforeSendMaxInFlight,
    log: d.log.child({ stage: 'before-send' }),
  });
}

/**
 * The account operations (devices, push registration, mutes) and the push dispatcher (the `push`
 * role), over the same budgets, writer and chat operations in every mode; `queue` is the mode's
 * push queue (the store's table embedded, the push topic in cluster mode).
 */
export function buildAccountAndPush(
  d: FrontDeps,
  x: {
    mode: 'embedded' | 'cluster';
    writer: ConversationWriter;
    devices: DeviceRegistry;
    budget: WorkBudget;
    queue: PushQueue;
    chat: Chat;
  },
): { account: Account; push: PushDispatcher } {
  const { providers, vapidPublicKey } = pushProviders(d.config, d.log, x.mode);
  const account = new Account({
    devices: x.devices,
    keys: d.store.keys,
    users: d.store.users,
    presence: d.presencePort,
    isGroupMember: (conv, user) => x.writer.isMember(conv, user),
    budget: x.budget,
    ...(vapidPublicKey ? { vapidPublicKey } : {}),
  });
  const push = pushDispatcher({
    config: d.config,
    devices: x.devices,
    presence: d.presencePort,
    queue: x.queue,
    deadLetters: d.store.deadLetters,
    users: d.store.users,
    unread: (user) => x.chat.unreadCount(user),
    providers,
    clock: d.clock,
    log: d.log,
    metrics: d.metrics,
  });
  return { account, push };
}

/**
 * The key directory, `to_device` queues and media, over the same budgets and writer in every
 * mode; `mediaStore` is the mode's object store (files embedded, S3 in cluster mode; absent when
 * cluster mode has no bucket configured: media requests then answer `unavailable`).
 */
export function buildKeysAndMedia(
  d: FrontDeps,
  x: {
    writer: ConversationWriter;
    sessions: SessionRegistry;
    budget: WorkBudget;
    mediaStore?: MediaStore | undefined;
  },
): { keys: KeyService; media: MediaService } {
  const keys = new KeyService({
    keys: d.store.keys,
    queue: d.store.deviceQueue,
    devices: d.store.devices,
    presence: d.presencePort,
    users: d.users,
    budget: x.budget,
    clock: d.clock,
    maxQueue: d.config.maxToDeviceQueue,
    maxBatchBytes: d.config.maxReplyBytes,
    notify: (user, device) => {
      x.sessions
        .toDeviceWaiting(user, device)
        .catch((err) => d.log.warn({ err: String(err) }, 'to_device notice not sent'));
    },
  });
  const media = new MediaService({
    index: d.store.media,
    ...(x.mediaStore ? { store: x.mediaStore } : {}),
    budget: x.budget,
    clock: d.clock,
    log: d.log.child({ stage: 'media' }),
    isGroupMember: (conv, user) => x.writer.isMember(conv, user),
    limits: {
      maxBytes: d.config.maxMediaBytes,
      uploadUrlSeconds: d.config.mediaUploadUrlSeconds,
      downloadUrlSeconds: d.config.mediaDownloadUrlSeconds,
      unreferencedMs: d.config.mediaUnreferencedMs,
      retentionMs: d.config.mediaRetentionMs,
    },
  });
  return { keys, media };
}
