/**
 * Messages between the parent (coordinator) and its load processes over the `child_process.fork`
 * IPC channel. The parent sends commands, each answered by exactly one `done` or `failed` with the
 * same `seq`; every second (and before each answer) a load process sends a `stats` snapshot.
 * @module
 */

/** How receivers acknowledge messages with `delivered` receipts. */
export type ReceiptMode = 'none' | 'per-message' | 'batched';

/** One sending stream: a connected user sending to one conversation. */
export interface Stream {
  from: string;
  conv: string;
  /** Index of the conversation among those whose last delivery is tracked (groups), or -1. */
  group: number;
}

/** Settings every load process gets once. */
export interface InitCommand {
  op: 'init';
  worker: number;
  /** Unique per run; prefixes client message ids so reruns against one server never collide. */
  runId: string;
  /** Added to this process's clock so that it agrees with the parent's (see clock.ts). */
  clockOffsetMs: number;
  /** HS256 secret to mint tokens with (the relay reads their `sub` without checking them). */
  secret: string;
  /** Source addresses to spread sockets over (empty: let the OS choose). */
  sourceAddrs: string[];
  bodyBytes: number;
  receipts: ReceiptMode;
  receiptIntervalMs: number;
  tokenTtlS: number;
  /** Unsent bytes per socket beyond which the generator drops a send (counted) instead of queueing it. */
  maxBufferedBytes: number;
  /** Time a socket gets to complete the WebSocket handshake and `connect`. */
  connectTimeoutMs: number;
}

/** Opens authenticated connections for `users` (device `d`), at most `concurrency` handshakes at once. */
export interface OpenCommand {
  op: 'open';
  users: string[];
  concurrency: number;
  /** The system under test (Parley or the relay). */
  url: string;
}

/** Closes the connections of `users` (all when absent) and waits until they are closed. */
export interface CloseCommand {
  op: 'close';
  users?: string[];
}

/**
 * Open-loop load: this process's `streams` send at `rate` messages/s in total, round-robin, at
 * intended times `startAt + i / rate`, whatever happened to earlier sends. Samples whose intended
 * time falls in [startAt + warmupMs, startAt + warmupMs + durationMs) are measured. Answers when
 * sending ended and every reply arrived (or `drainMs` passed).
 */
export interface LoadCommand {
  op: 'load';
  streams: Stream[];
  rate: number;
  startAt: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  /** Track per-message last delivery for group messages (parent merges across processes). */
  trackLast: boolean;
}

/** Closed-loop fill: each stream sends `count` messages keeping at most `window` unanswered. */
export interface FillCommand {
  op: 'fill';
  streams: Stream[];
  count: number;
  window: number;
}

/** Waits until `user` has received `count` stamped messages in total (its own sends' copies). */
export interface AwaitCopiesCommand {
  op: 'await-copies';
  user: string;
  count: number;
  timeoutMs: number;
}

/** Creates groups; answers their conversation ids in order. */
export interface CreateGroupsCommand {
  op: 'create-groups';
  groups: { creator: string; members: string[]; name: string }[];
}

/**
 * Reconnects `users` (all at once, or `concurrency` at a time when > 0) and syncs each from inbox 0
 * with `page`-sized pages until `more` is false; times each from `startAt`.
 */
export interface ResyncCommand {
  op: 'resync';
  url: string;
  users: string[];
  concurrency: number;
  page: number;
  startAt: number;
}

/** Sends a final stats snapshot (everything recorded so far) and answers. */
export interface FlushCommand {
  op: 'flush';
}

/** Closes every socket and exits. */
export interface ExitCommand {
  op: 'exit';
}

/** Any command, with its sequence number. */
export type Command = (
  | InitCommand
  | OpenCommand
  | CloseCommand
  | LoadCommand
  | FillCommand
  | AwaitCopiesCommand
  | CreateGroupsCommand
  | ResyncCommand
  | FlushCommand
  | ExitCommand
) & { seq: number };

/** The parent's clock probe (answered at once with the child's clock). */
export interface ClockProbe {
  op: 'clock';
  seq: number;
}

/** Per-message last-delivery partials: key → [deliveries seen here, latest delivery latency ms, measured 0|1]. */
export type LastDeliveryPartials = Record<string, [number, number, number]>;

/** A load process's snapshot since its previous one. */
export interface StatsMessage {
  type: 'stats';
  worker: number;
  /** Clock time of the snapshot. */
  t: number;
  /** Clock time of the previous snapshot: the increments happened in (from, t]. */
  from: number;
  /** Open authenticated connections now. */
  open: number;
  /** Counter increments since the previous snapshot. */
  counters: Record<string, number>;
  /** Histogram increments: `all` every sample, `win` only samples of the measured window. */
  hist: Record<string, { all: string; win: string }>;
  last?: LastDeliveryPartials;
  /** This process's CPU time (user + system, ms) and RSS (bytes) now. */
  cpuMs: number;
  rss: number;
}

/** Messages from a load process to the parent. */
export type WorkerMessage =
  | StatsMessage
  | { type: 'done'; seq: number; result?: unknown }
  | { type: 'failed'; seq: number; error: string }
  | { type: 'clock'; seq: number; time: number };
