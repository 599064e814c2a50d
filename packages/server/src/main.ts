import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { MemoryPresence } from './adapters/memory/memory-presence.js';
import { SqliteStore } from './adapters/sqlite/sqlite-store.js';
import type { Config } from './config/schema.js';
import { Chat } from './domain/chat.js';
import { Fanout } from './domain/fanout.js';
import { InboxWriter } from './domain/inbox-writer.js';
import { PresenceService } from './domain/presence.js';
import { ReceiptService } from './domain/receipts.js';
import { Sequencer } from './domain/sequencer.js';
import { UserDirectory } from './domain/users.js';
import { resolveKeys, TokenVerifier } from './gateway/auth.js';
import { createHttpHandler } from './gateway/http.js';
import { Metrics } from './gateway/metrics.js';
import { Gateway } from './gateway/ws-gateway.js';
import { type Clock, systemClock } from './ports/clock.js';
import type { Logger } from './ports/logger.js';
import type { Router } from './ports/router.js';

/** A running (or ready to run) Parley server. */
export interface ParleyServer {
  /** Recovers unfinished fan-out, then listens. Resolves with the bound address. */
  start(): Promise<AddressInfo>;
  /** Graceful stop: drain sockets over `drainMs`, flush and close the store. */
  stop(drainMs?: number): Promise<void>;
  /** True when the development secret is in use (no key configured). */
  readonly devSecret: boolean;
  readonly config: Config;
}

/** The file of the embedded store inside the data directory. */
export const DB_FILE = 'parley.db';

/**
 * The composition root: builds the embedded adapters, the domain stages and the gateway, and
 * wires them along the message path (gateway → sequencer → store → fan-out → inbox writer →
 * router → sockets).
 */
export function createParleyServer(config: Config, deps: { log: Logger; clock?: Clock }): ParleyServer {
  const { log } = deps;
  const clock = deps.clock ?? systemClock;
  const metrics = new Metrics();
  const keys = resolveKeys(config);
  const verifier = new TokenVerifier(keys, config);
  const store = new SqliteStore(join(config.dataDir, DB_FILE), (info) => metrics.commit(info));

  // The router is the gateway, which is built last; live delivery goes through this late binding.
  let gateway: Gateway | null = null;
  const router: Router = { deliver: (user, frame) => gateway?.deliver(user, frame) };
  const users = new UserDirectory(store.users);
  const inboxWriter = new InboxWriter(store.inbox, router, log.child({ stage: 'inbox' }));
  const fanout = new Fanout(inboxWriter, store.messages, store.conversations, log.child({ stage: 'fanout' }));
  const sequencer = new Sequencer(
    store.messages,
    store.conversations,
    users,
    clock,
    log.child({ stage: 'sequencer' }),
    (batch, recipients) => {
      metrics.messagesStored.inc(batch.length);
      fanout.committed(batch, recipients);
    },
    { maxGroupSize: config.maxGroupSize },
  );
  // Receipts tell only current members, which the chat layer knows (bound once it exists).
  let chatRef: Chat | null = null;
  const receipts = new ReceiptService(
    store.conversations,
    store.messages,
    inboxWriter,
    users,
    (conv, user) => chatRef!.isMember(conv, user),
    clock,
    log.child({ stage: 'receipts' }),
    config.receiptCoalesceMs,
  );
  const chat = new Chat({
    messages: store.messages,
    inbox: store.inbox,
    conversations: store.conversations,
    sequencer,
    receipts,
    users,
    router,
    clock,
  });
  chatRef = chat;
  const presence = new PresenceService(
    new MemoryPresence(),
    users,
    store.users,
    clock,
    log.child({ stage: 'presence' }),
    config.maxPresenceSubscriptions,
  );
  gateway = new Gateway({ config, chat, verifier, clock, log, metrics, presence });

  let ready = false;
  let stopping = false;
  const http: Server = createServer(
    createHttpHandler({
      config,
      chat,
      verifier,
      metrics,
      log,
      ready: () => ready && !stopping && store.healthy,
    }),
  );
  http.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/v1/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    gateway!.handleUpgrade(req, socket, head);
  });
  http.headersTimeout = 10_000;
  http.requestTimeout = 30_000;

  const prune = setInterval(() => {
    store.inbox.prune(clock.now() - config.inboxRetentionMs).then(
      (n) => n > 0 && log.info({ entries: n }, 'pruned expired inbox entries'),
      (err) => log.warn({ err: String(err) }, 'inbox pruning failed'),
    );
  }, config.inboxPruneIntervalMs);
  prune.unref();

  return {
    config,
    devSecret: keys.devSecret,
    async start() {
      await fanout.recover();
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(config.port, config.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
      ready = true;
      return http.address() as AddressInfo;
    },
    async stop(drainMs = config.drainMs) {
      if (stopping) return;
      stopping = true;
      http.close();
      await gateway!.drain(drainMs);
      await fanout.settled();
      await inboxWriter.idle();
      http.closeAllConnections();
      clearInterval(prune);
      await store.close();
      metrics.stop();
    },
  };
}
