import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileMediaStore } from '../adapters/files/file-media-store.js';
import { MemoryBus } from '../adapters/memory/memory-bus.js';
import { MemoryLog } from '../adapters/memory/memory-log.js';
import { MemoryPresence } from '../adapters/memory/memory-presence.js';
import { MemoryRateLimiter } from '../adapters/memory/memory-rate-limiter.js';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import type { PublicAddress } from '../backend/media.js';
import type { ConversationStore } from '../ports/conversation-store.js';
import type { DeviceQueue } from '../ports/device-queue.js';
import type { DeviceStore } from '../ports/device-store.js';
import type { EpochInbox, EpochMessages, PartitionEpochs } from '../ports/epoch-fencing.js';
import type { InboxStore } from '../ports/inbox-store.js';
import type { InviteStore } from '../ports/invite-store.js';
import type { KeyDirectory } from '../ports/key-directory.js';
import type { MediaIndex } from '../ports/media-index.js';
import type { MediaStore } from '../ports/media-store.js';
import type { MessageBus } from '../ports/message-bus.js';
import type { MessageStore } from '../ports/message-store.js';
import type { PartitionedLog } from '../ports/partitioned-log.js';
import type { PresencePort } from '../ports/presence.js';
import type { PushDeadLetters } from '../ports/push-queue.js';
import type { RateLimiter } from '../ports/rate-limiter.js';
import type { UserStore } from '../ports/user-store.js';
import type { WebhookDeadLetters } from '../ports/webhooks.js';
import { TOPICS } from './topics.js';

/** The stores a cluster process works on (shared by every process of the deployment). */
export interface ClusterStore {
  messages: MessageStore;
  inbox: InboxStore;
  conversations: ConversationStore;
  users: UserStore;
  invites: InviteStore;
  devices: DeviceStore;
  deadLetters: PushDeadLetters;
  webhookDeadLetters: WebhookDeadLetters;
  keys: KeyDirectory;
  deviceQueue: DeviceQueue;
  media: MediaIndex;
}

/** How the sequencer and fan-out stages fence their members: stores shared by processes offer it. */
export interface InboxFencing {
  /** The inbox written under ownership epochs. */
  epochInbox: EpochInbox;
  /** The message log written under ownership epochs. */
  epochMessages: EpochMessages;
  /** Ownership epochs of the stages' partitions. */
  stageEpochs: PartitionEpochs;
}

/**
 * What cluster mode runs on, as ports: the same code path whether these are the real engines
 * (Cassandra, Kafka, Redis: `openEngines`) or one process's memory (`inProcessAdapters`, for
 * tests of several cluster processes in one Node process, as socket.io tests its cluster
 * adapter over an in-memory bus).
 */
export interface ClusterAdapters {
  store: ClusterStore & InboxFencing;
  /** The stage topics (ingress, fan-out). */
  log: PartitionedLog;
  /** Replies, gateway commands and cache invalidations between processes. */
  bus: MessageBus;
  /** Live devices and presence, deployment-wide. */
  presence: PresencePort;
  /** Per-user budgets, deployment-wide. */
  limiter: RateLimiter;
  /**
   * The media object store (S3-compatible on the engines), given where this process's clients
   * reach it; absent when none is configured (media requests then answer `unavailable`).
   */
  media?: (address: PublicAddress) => MediaStore;
  /**
   * Requests this process made to each engine so far, by engine and kind (Cassandra: `read`,
   * `write`, `lwt` statements and `paxos` rounds; Kafka: records produced and requests by API):
   * exported as `parley_engine_requests_total`, what the capacity model counts per message.
   */
  requests?: () => EngineRequests;
  /** Closes the clients this set opened. */
  close(): Promise<void>;
}

/** Counts by engine, then by kind. */
export type EngineRequests = Record<string, Record<string, number>>;

/** Partitions of each topic of an in-process deployment (enough for several processes to share). */
const IN_PROCESS_PARTITIONS = 8;

/**
 * A whole cluster deployment's engines in this process's memory: every process built on the same
 * set shares its store, log, bus, presence and buckets. Nothing is durable; for tests.
 */
export function inProcessAdapters(topicPrefix = 'parley.'): ClusterAdapters {
  const log = new MemoryLog();
  const mediaDir = mkdtempSync(join(tmpdir(), 'parley-media-'));
  const mediaSecret = randomBytes(32);
  for (const t of Object.values(TOPICS)) log.createTopic(`${topicPrefix}${t}`, IN_PROCESS_PARTITIONS);
  return {
    store: new MemoryStore(),
    log,
    bus: new MemoryBus(),
    presence: new MemoryPresence(),
    limiter: new MemoryRateLimiter(),
    // Files in a temporary directory, with one signing key for every process of this set: each
    // process signs URLs to its own listener, and any of them can serve any object.
    media: (address) =>
      new FileMediaStore({ dir: mediaDir, baseUrl: () => address.url(), secret: mediaSecret }),
    async close() {
      rmSync(mediaDir, { recursive: true, force: true });
    },
  };
}
