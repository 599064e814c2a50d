/**
 * RSS and CPU of the server's processes, read from /proc/<pid>/stat and /proc/<pid>/status (Linux).
 * The pids given (or spawned) are roots: their descendants are found on every sample, so a
 * multi-process server (`parley serve --workers N`) is measured whole, even when a worker restarts.
 * RSS is summed over processes, so pages they share (the Node binary's text) count once per
 * process: per-connection figures use differences, where that cancels out.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** One process's counters. */
export interface ProcStat {
  pid: number;
  ppid: number;
  /** user + system CPU, seconds. */
  cpuSeconds: number;
  rssBytes: number;
  /** Peak RSS since the process started (VmHWM). */
  hwmBytes: number;
  threads: number;
}

let clockTicks = 0;

function ticksPerSecond(): number {
  if (clockTicks > 0) return clockTicks;
  try {
    clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    clockTicks = 100;
  }
  return clockTicks;
}

/** Reads one process's /proc entries; undefined when it is gone (or this is not Linux). */
export function readProc(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => {
      const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : 0;
    };
    const threads = /^Threads:\s+(\d+)/m.exec(status);
    return {
      pid,
      ppid,
      cpuSeconds: (utime + stime) / ticksPerSecond(),
      rssBytes: kb('VmRSS'),
      hwmBytes: kb('VmHWM'),
      threads: threads ? Number(threads[1]) : 0,
    };
  } catch {
    return undefined;
  }
}

/** `roots` and all their living descendants. */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [...roots];
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      let list = children.get(ppid);
      if (!list) {
        list = [];
        children.set(ppid, list);
      }
      list.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const todo = [...roots];
  const seen = new Set<number>();
  while (todo.length > 0) {
    const pid = todo.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    out.push(pid);
    for (const c of children.get(pid) ?? []) todo.push(c);
  }
  return out;
}

/** A sample summed over the tree. */
export interface TreeSample {
  at: number;
  pids: number[];
  rssBytes: number;
  hwmBytes: number;
  cpuSeconds: number;
}

/** Samples a process tree; remembers every pid seen and the peak RSS. */
export class ProcSampler {
  readonly seen = new Set<number>();
  peakRssBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private treeEvery = 0;
  private tree: number[] = [];

  constructor(
    readonly roots: readonly number[],
    private readonly includeChildren = true,
  ) {}

  /** Reads every process of the tree now. */
  sample(): TreeSample {
    // The tree walk reads all of /proc; at fast sampling it is refreshed every 10th sample.
    if (this.tree.length === 0 || this.treeEvery++ % 10 === 0)
      this.tree = this.includeChildren ? processTree(this.roots) : [...this.roots];
    const s: TreeSample = { at: Date.now(), pids: [], rssBytes: 0, hwmBytes: 0, cpuSeconds: 0 };
    for (const pid of this.tree) {
      const p = readProc(pid);
      if (!p) continue;
      this.seen.add(pid);
      s.pids.push(pid);
      s.rssBytes += p.rssBytes;
      s.hwmBytes += p.hwmBytes;
      s.cpuSeconds += p.cpuSeconds;
    }
    if (s.rssBytes > this.peakRssBytes) this.peakRssBytes = s.rssBytes;
    return s;
  }

  /** Samples every `intervalMs` until `stop()`, handing each sample to `onSample`. */
  start(intervalMs: number, onSample: (s: TreeSample) => void): void {
    this.stop();
    this.timer = setInterval(() => onSample(this.sample()), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
