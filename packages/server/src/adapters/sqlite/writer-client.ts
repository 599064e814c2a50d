import { Worker } from 'node:worker_threads';
import { ParleyError } from '../../domain/errors.js';
import type { OpAnswer, WriteBatch, WriteOp, WriteResult } from './write-ops.js';

interface Queued {
  op: WriteOp;
  resolve: (answer: OpAnswer) => void;
  reject: (err: Error) => void;
}

/** Called after each commit: how many operations and rows it held, and how long it took. */
export type CommitObserver = (info: {
  ops: number;
  rows: number;
  commitMs: number;
  roundTripMs: number;
}) => void;

/**
 * Starts the writer thread. Built code runs `writer-worker.js` directly; when running from the
 * TypeScript sources (tests, `tsx`), the thread first registers tsx's loader, which Node 20 does
 * not carry into worker threads by itself.
 */
function spawnWriter(path: string): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: { path } });
  }
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./writer-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData: { path } });
}

/** Inbox rows queued beyond which waiting messages get a commit of their own. */
const BULK_ROWS_BEFORE_PRIORITY = 1000;

/** Upper bound of operations per transaction, so one commit never grows without limit. */
const MAX_OPS_PER_BATCH = 4096;

/**
 * Group commit in front of the writer thread. At most one batch is in flight; operations that
 * arrive meanwhile wait and all go into the next transaction, so under load one fsync covers many
 * messages, and with no load a lone write is committed at once (no timer delay).
 *
 * A failed commit leaves the store in an unknown state for the sequencers' in-memory heads, so the
 * writer fails closed: the batch and everything after it are rejected with `unavailable`, and
 * `healthy` turns false (readiness reports it; an operator restarts the process, which recovers
 * the heads from the store).
 */
export class WriterClient {
  private readonly worker: Worker;
  private queue: Queued[] = [];
  private inFlight: { batch: WriteBatch; items: Queued[]; sentAt: number } | null = null;
  private scheduled = false;
  private nextId = 1;
  private failure: string | null = null;
  private closing: (() => void) | null = null;

  constructor(
    path: string,
    private readonly onCommit: CommitObserver = () => {},
    /** How long a write waits for others to join its commit when the writer is idle (0: commit at once). */
    private readonly commitDelayMs = 0,
    /** Told once, with the reason, when the writer fails closed. */
    private readonly onFailure: (reason: string) => void = () => {},
  ) {
    this.worker = spawnWriter(path);
    this.worker.on('message', (msg: WriteResult | { closed: true }) => this.onMessage(msg));
    this.worker.on('error', (err) => this.fail(`writer thread failed: ${err.message}`));
    this.worker.on('exit', (code) => {
      if (!this.closing) this.fail(`writer thread exited with code ${code}`);
    });
  }

  /** True until a commit has failed. */
  get healthy(): boolean {
    return this.failure === null;
  }

  /** Operations waiting for a commit (queued or in flight). */
  get pending(): number {
    return this.queue.length + (this.inFlight?.items.length ?? 0);
  }

  /** Queues an operation for the next commit; resolves once it is durable, with its count. */
  async write(op: WriteOp): Promise<number> {
    return rowsOf(await this.submit(op));
  }

  /**
   * Queues an operation that reads back what it changed (a qid, a key claim) for the next commit;
   * resolves once it is durable, with what the operation read.
   */
  async writeAndRead<T>(op: WriteOp): Promise<T> {
    const answer = await this.submit(op);
    return (typeof answer === 'number' ? undefined : answer.value) as T;
  }

  private submit(op: WriteOp): Promise<OpAnswer> {
    if (this.failure !== null) return Promise.reject(new ParleyError('unavailable', 'store unavailable'));
    if (this.closing) return Promise.reject(new ParleyError('unavailable', 'store closing'));
    return new Promise((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      if (!this.inFlight && !this.scheduled) {
        this.scheduled = true;
        // Let every frame read in this I/O phase (or the commit delay) join the batch, and what
        // the check phase adds to it too (the inbox writer flushes there: a message's inbox
        // entries, written right after its append, then share its commit).
        if (this.commitDelayMs > 0) setTimeout(() => this.flush(), this.commitDelayMs);
        else setImmediate(() => setImmediate(() => this.flush()));
      }
    });
  }

  /** Waits for queued writes to commit, then stops the writer thread. */
  async close(): Promise<void> {
    while (this.pending > 0 && this.failure === null) await new Promise((r) => setTimeout(r, 5));
    await new Promise<void>((resolve) => {
      this.closing = resolve;
      this.worker.postMessage({ close: true });
    });
    await this.worker.terminate();
  }

  private flush(): void {
    this.scheduled = false;
    if (this.inFlight || this.queue.length === 0 || this.failure !== null) return;
    const items = this.takeBatch();
    const batch: WriteBatch = { id: this.nextId++, ops: items.map((q) => q.op) };
    this.inFlight = { batch, items, sentAt: performance.now() };
    this.worker.postMessage(batch);
  }

  /**
   * The next commit's operations. When a large amount of fan-out work (inbox entries) is queued
   * beside writes that someone awaits (messages: their senders wait for the reply), the awaited
   * writes commit first on their own, so a 512-member group's fan-out never delays a reply.
   */
  private takeBatch(): Queued[] {
    let bulkRows = 0;
    for (const q of this.queue) if (q.op.op === 'inbox') bulkRows += q.op.rows.length;
    if (bulkRows > BULK_ROWS_BEFORE_PRIORITY && this.queue.some((q) => q.op.op === 'messages')) {
      const urgent = this.queue.filter((q) => q.op.op === 'messages');
      this.queue = this.queue.filter((q) => q.op.op !== 'messages');
      return urgent;
    }
    if (this.queue.length > MAX_OPS_PER_BATCH) return this.queue.splice(0, MAX_OPS_PER_BATCH);
    const all = this.queue;
    this.queue = [];
    return all;
  }

  private onMessage(msg: WriteResult | { closed: true }): void {
    if ('closed' in msg) {
      this.closing?.();
      return;
    }
    const flight = this.inFlight;
    if (!flight || flight.batch.id !== msg.id) return;
    this.inFlight = null;
    if (!msg.ok) {
      for (const q of flight.items) q.reject(new ParleyError('unavailable', 'store write failed'));
      this.fail(`commit failed: ${msg.error}`);
      return;
    }
    let rows = 0;
    for (let i = 0; i < flight.items.length; i++) {
      const answer = msg.results[i] ?? 0;
      rows += rowsOf(answer);
      flight.items[i]!.resolve(answer);
    }
    this.onCommit({
      ops: flight.items.length,
      rows,
      commitMs: msg.commitMs,
      roundTripMs: performance.now() - flight.sentAt,
    });
    this.flush();
  }

  private fail(reason: string): void {
    if (this.failure === null) {
      this.failure = reason;
      this.onFailure(reason);
    }
    const err = new ParleyError('unavailable', 'store unavailable');
    for (const q of this.queue) q.reject(err);
    this.queue = [];
    if (this.inFlight) {
      for (const q of this.inFlight.items) q.reject(err);
      this.inFlight = null;
    }
  }
}

function rowsOf(answer: OpAnswer): number {
  return typeof answer === 'number' ? answer : answer.rows;
}
