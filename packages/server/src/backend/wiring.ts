import type { ClusterStore } from '../cluster/adapters.js';
import type { Config } from '../config/schema.js';
import { workLimits } from '../config/work-limits.js';
import { Account } from '../domain/account.js';
import { Chat } from '../domain/chat.js';
import { DeviceRegistry } from '../domain/devices.js';
import { admissionLimits, GroupAdmission } from '../domain/group-admission.js';
import { PresenceService } from '../domain/presence.js';
import type { ReceiptService } from '../domain/receipts.js';
import type { UserDirectory } from '../domain/users.js';
import { WorkBudget } from '../domain/work-budget.js';
import type { Metrics } from '../gateway/metrics.js';
import type { Clock } from '../ports/clock.js';
import type { ConversationWriter } from '../ports/conversation-writer.js';
import type { Logger } from '../ports/logger.js';
import type { PresencePort } from '../ports/presence.js';
import type { RateLimiter } from '../ports/rate-limiter.js';
import type { SessionTransport } from '../ports/sessions.js';
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
  );
  // Revoking a device closes its connection through the registry built just below.
  const devices: DeviceRegistry = new DeviceRegistry(
    d.store.devices,
    d.clock,
    (user, device) => sessions.closeDevice(user, device),
    (err) => d.log.warn({ err: String(err) }, 'device last seen not saved'),
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
  x: { writer: ConversationWriter; receipts: ReceiptService; sessions: SessionRegistry; budget: WorkBudget },
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
  });
}

/** The account operations (devices, push registration, mutes) over the same budgets and writer. */
export function buildAccount(
  d: FrontDeps,
  x: { writer: ConversationWriter; devices: DeviceRegistry; budget: WorkBudget; vapidPublicKey?: string },
): Account {
  return new Account({
    devices: x.devices,
    users: d.store.users,
    presence: d.presencePort,
    isGroupMember: (conv, user) => x.writer.isMember(conv, user),
    budget: x.budget,
    ...(x.vapidPublicKey ? { vapidPublicKey: x.vapidPublicKey } : {}),
  });
}
