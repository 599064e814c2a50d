// The embedded store's writer thread. It owns the only writing connection, applies each batch
// of operations in one transaction with synchronous=FULL (the WAL is fsync'd at every commit), and
// answers only after the commit returns: that is the durability the `send` reply waits for.
// Running it off the main thread keeps the event loop serving sockets during commits and fsyncs.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { configureConnection } from './schema.js';
import type { WriteBatch, WriteResult } from './write-ops.js';
import { applyOps, prepareWriteStatements } from './writer-apply.js';

const { path } = workerData as { path: string };
const db = new Database(path);
configureConnection(db);
db.pragma('synchronous = FULL');
// Checkpoint less often: pages rewritten between checkpoints are copied back once.
db.pragma('wal_autocheckpoint = 10000');
const statements = prepareWriteStatements(db);
const runBatch = db.transaction((batch: WriteBatch) => applyOps(statements, batch.ops));

parentPort!.on('message', (msg: WriteBatch | { close: true }) => {
  if ('close' in msg) {
    db.close();
    parentPort!.postMessage({ closed: true });
    return;
  }
  const start = performance.now();
  let result: WriteResult;
  try {
    // BEGIN IMMEDIATE: the write lock is taken before the first read, so a batch that reads then
    // writes (a key claim, a qid) never finds its snapshot outdated by another process's writer
    // (the CLI on the same file); it waits for that writer instead (busy_timeout).
    const results = runBatch.immediate(msg);
    result = { id: msg.id, ok: true, results, commitMs: performance.now() - start };
  } catch (err) {
    result = { id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort!.postMessage(result);
});
