/**
 * The parent side of the load: forks the load processes (`--procs`), aligns their clocks, sends
 * them commands, adds up their per-second snapshots into the timeline and the current phase, and
 * draws the live progress line on stderr.
 * @module
 */
import { type ChildProcess, fork } from 'node:child_process';
import { epochNow, estimateOffset } from './clock.js';
import { LatencyHistogram } from './histogram.js';
import type { Command, InitCommand, StatsMessage, WorkerMessage } from './ipc.js';
import { type PhaseRecorder, Timeline } from './stats.js';

/** Distributive Omit, so that each command keeps its own fields. */
type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A command before its sequence number is assigned. */
export type CommandInput = Without<Command, 'seq'>;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** The path of a sibling module, in the same flavour (.ts under tsx, .js when built) as this one. */
export function siblingModule(name: string): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, import.meta.url).pathname;
}

/** What the progress line shows for the current phase. */
export interface ProgressView {
  label: string;
  /** Latency metric whose p99 is shown. */
  metric: string;
}

/** A set of load processes working for one run. */
export class LoadCluster {
  readonly timeline: Timeline;
  private readonly procs: ChildProcess[] = [];
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private phase: PhaseRecorder | null = null;
  private progressTimer: NodeJS.Timeout | null = null;
  private view: ProgressView | null = null;
  private lastLineLength = 0;
  private exited = false;
  /** Pids of the load processes. */
  readonly pids: number[] = [];

  private constructor(
    readonly size: number,
    private readonly quiet: boolean,
  ) {
    this.timeline = new Timeline(epochNow());
  }

  /** Forks `procs` load processes and initialises them with `init`. */
  static async start(
    procs: number,
    init: Omit<InitCommand, 'op' | 'worker' | 'clockOffsetMs'>,
    quiet: boolean,
  ): Promise<LoadCluster> {
    const cluster = new LoadCluster(procs, quiet);
    const path = siblingModule('worker');
    for (let i = 0; i < procs; i++) {
      const child = fork(path, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.on('message', (m: WorkerMessage) => cluster.onMessage(m));
      child.on('exit', (code, signal) => {
        if (!cluster.exited) {
          const err = new Error(`load process ${i} exited (${code ?? signal}) during the run`);
          for (const p of cluster.pending.values()) p.reject(err);
          cluster.pending.clear();
        }
      });
      cluster.procs.push(child);
      cluster.pids.push(child.pid ?? -1);
    }
    await Promise.all(
      cluster.procs.map(async (_, i) => {
        const clockOffsetMs = await cluster.measureOffset(i);
        await cluster.call(i, { op: 'init', worker: i, clockOffsetMs, ...init });
      }),
    );
    return cluster;
  }

  private clockWaiters = new Map<number, (time: number) => void>();

  private async measureOffset(i: number): Promise<number> {
    const samples: { sentAt: number; childTime: number; receivedAt: number }[] = [];
    for (let k = 0; k < 7; k++) {
      const seq = ++this.seq;
      const sentAt = epochNow();
      const childTime = await new Promise<number>((resolve) => {
        this.clockWaiters.set(seq, resolve);
        this.procs[i]!.send({ op: 'clock', seq });
      });
      samples.push({ sentAt, childTime, receivedAt: epochNow() });
    }
    return estimateOffset(samples);
  }

  private onMessage(m: WorkerMessage): void {
    switch (m.type) {
      case 'stats':
        this.onStats(m);
        return;
      case 'clock': {
        const w = this.clockWaiters.get(m.seq);
        this.clockWaiters.delete(m.seq);
        w?.(m.time);
        return;
      }
      case 'done': {
        const p = this.pending.get(m.seq);
        this.pending.delete(m.seq);
        p?.resolve(m.result);
        return;
      }
      case 'failed': {
        const p = this.pending.get(m.seq);
        this.pending.delete(m.seq);
        p?.reject(new Error(m.error));
      }
    }
  }

  private onStats(s: StatsMessage): void {
    const all = new Map<string, LatencyHistogram>();
    const win = new Map<string, LatencyHistogram>();
    for (const [name, h] of Object.entries(s.hist)) {
      if (h.all) all.set(name, LatencyHistogram.decode(h.all));
      if (h.win) win.set(name, LatencyHistogram.decode(h.win));
    }
    this.timeline.add(s, this.phase?.name ?? '', all);
    this.phase?.add(s, win);
  }

  /**
   * Adds a snapshot measured outside the load processes (a scenario's own helper process or the
   * push endpoint) to the timeline and the current phase, as if a load process had sent it; its
   * `worker` must not be a load process's index.
   */
  ingest(s: StatsMessage): void {
    this.onStats(s);
  }

  /** Sends a command to load process `i`; resolves with its result. */
  call<R = unknown>(i: number, cmd: CommandInput): Promise<R> {
    const seq = ++this.seq;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.procs[i]!.send({ ...cmd, seq } as Command);
    });
  }

  /** Sends each load process its command (null: none) and waits for all. */
  all<R = unknown>(cmdFor: (i: number) => CommandInput | null): Promise<(R | null)[]> {
    return Promise.all(
      this.procs.map((_, i) => {
        const cmd = cmdFor(i);
        return cmd ? this.call<R>(i, cmd) : Promise.resolve(null);
      }),
    );
  }

  /** Collects every load process's snapshot up to now into the current phase. */
  async flush(): Promise<void> {
    await this.all(() => ({ op: 'flush' }));
  }

  /** Routes snapshots to `phase` from now on (null: timeline only). */
  setPhase(phase: PhaseRecorder | null, view: ProgressView | null = null): void {
    this.phase = phase;
    this.view = view;
    if (view && !this.quiet && !this.progressTimer) {
      this.progressTimer = setInterval(() => this.progress(), 1000);
      this.progressTimer.unref();
    }
    if (!view) this.clearProgress();
  }

  private progress(): void {
    if (!this.view) return;
    const now = epochNow();
    const sec = Math.floor(now / 1000) - 1;
    const b = this.timeline.bucket(sec);
    const c = b?.counters ?? {};
    const h = b?.hist.get(this.view.metric);
    const p99 = h && h.count > 0 ? `${h.at(99).toFixed(2)} ms` : '-';
    const errors = this.phase?.counter('errors') ?? 0;
    const parts = [
      `[${this.view.label}]`,
      `conns ${this.timeline.openNow()}`,
      `sent ${c.sent ?? 0}/s`,
      `delivered ${c.delivered ?? 0}/s`,
      `p99 ${this.view.metric} ${p99}`,
      `errors ${errors}`,
    ];
    if (c.connected) parts.splice(2, 0, `+${c.connected} conn/s`);
    if (c.notified !== undefined) parts.splice(4, 0, `notified ${c.notified}/s`);
    if (c.synced) parts.splice(2, 0, `synced +${c.synced}/s`);
    const line = parts.join('  ');
    if (process.stderr.isTTY) {
      process.stderr.write(`\r${line.padEnd(this.lastLineLength)}`);
      this.lastLineLength = line.length;
    } else if (sec % 5 === 0) {
      process.stderr.write(`${line}\n`);
    }
  }

  private clearProgress(): void {
    if (process.stderr.isTTY && this.lastLineLength > 0) {
      process.stderr.write(`\r${' '.repeat(this.lastLineLength)}\r`);
      this.lastLineLength = 0;
    }
  }

  /** Prints a line on stderr without garbling the progress line. */
  log(message: string): void {
    if (this.quiet) return;
    this.clearProgress();
    process.stderr.write(`${message}\n`);
  }

  /** Closes every socket and ends the load processes. */
  async stop(): Promise<void> {
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.clearProgress();
    this.exited = true;
    try {
      await Promise.race([this.all(() => ({ op: 'exit' })), new Promise((r) => setTimeout(r, 10_000))]);
    } catch {
      // A load process that already died is fine here.
    }
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}
