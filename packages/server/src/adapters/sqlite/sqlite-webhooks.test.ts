// Runs the webhook queue's conformance suite against the embedded SQLite adapter: the
// `webhook_jobs` table of a store, through `SqliteStore.webhookQueue`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { webhookQueueSuite } from '../conformance/webhook-queue.suite.js';
import { SqliteStore } from './sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-webhooks-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

webhookQueueSuite('SqliteStore', async () => {
  const path = join(dir, 'store.db');
  let s = new SqliteStore(path);
  const harness = {
    queue: s.webhookQueue,
    // A crash as far as the queue can tell: the store closes without waiting for handlers, and a
    // new store opens the file.
    restart: async () => {
      await s.close();
      s = new SqliteStore(path);
      harness.queue = s.webhookQueue;
    },
    close: () => s.close(),
  };
  return harness;
});
