/**
 * One benchmark run: the load processes, the systems under test, the phases measured so far, the
 * headline figures and the notes; and the building blocks every scenario uses (start a target,
 * open connections, run an open-loop load phase with warm-up and drain, find a maximum throughput).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { cpus, hostname, totalmem } from 'node:os';
import { epochNow, sleep } from './clock.js';
import { type CommandInput, LoadCluster } from './coordinator.js';
import type { LoadCommand, ReceiptMode, Stream } from './ipc.js';
import type { BenchResult, PhaseResult, SummaryRow } from './model.js';
import type { BenchOptions } from './options.js';
import { ProcSampler, type TreeSample } from './proc-sampler.js';
import { launchParley, launchRelay } from './server-launcher.js';
import { type ExpectedDeliveries, PhaseRecorder } from './stats.js';
import { metricsUrlFor, Target } from './target.js';

/** Most sockets one load process is given (each may hold at most 20,000 open files). */
export const MAX_SOCKETS_PER_PROC = 15_000;

/** Source addresses for `count` sockets against `url`, per `--source-addrs`. */
export function sourceAddresses(setting: string, url: string, sockets: number): string[] {
  if (setting === 'none') return [];
  if (setting !== 'auto') return setting.split(',').filter(Boolean);
  const host = new URL(url).hostname;
  if (!/^127\.|^localhost$/.test(host)) return [];
  // One address gives ~28,000 ephemeral ports (32768–60999) once sockets bind before connecting.
  const n = Math.max(2, Math.min(250, Math.ceil(sockets / 20_000) + 1));
  return Array.from({ length: n }, (_, i) => `127.0.0.${i + 2}`);
}

/** What a load phase needs. */
export interface LoadPhaseSpec {
  name: string;
  target: Target;
  rate: number;
  warmupS: number;
  durationS: number;
  drainS: number;
  /** Streams per load process (each stream's sender must be connected in that process). */
  streams: Stream[][];
  /** Deliveries each send should cause (1 for direct; members - 1 for a group). */
  fanout: number;
  /** Expected deliveries by message key, for group last-delivery tracking. */
  expected?: ExpectedDeliveries;
  /**
   * Called once the load's start time is fixed (epochNow clock, before the first send): message i
   * is due at `startAt + i / rate`, and the measured window is `startAt + warmupS` for `durationS`.
   */
  onStart?: (startAt: number) => void;
  /**
   * Runs inside the phase after the replies and deliveries are in (or the drain ran out), for a
   * scenario that waits for something else the sends cause (webhook events); what it records in
   * `rec` goes into the phase's result.
   */
  settle?: (rec: PhaseRecorder) => Promise<void>;
}

/** A run in progress. */
export class Run {
  readonly runId = randomBytes(4).toString('hex');
  readonly startedAt = epochNow();
  readonly phases: PhaseResult[] = [];
  readonly summary: SummaryRow[] = [];
  readonly notes: string[] = [];
  readonly targets: Target[] = [];
  readonly secret: string;
  cluster!: LoadCluster;
  /** The load processes' own CPU, so a report can say what the generator cost on shared cores. */
  generator!: ProcSampler;
  sourceAddrs: string[] = [];

  private constructor(
    readonly opts: BenchOptions,
    readonly argv: string[],
  ) {
    this.secret = opts.secret ?? randomBytes(32).toString('base64url');
  }

  /** Starts the load processes, enough for `sockets` sockets. */
  static async create(opts: BenchOptions, argv: string[], sockets: number): Promise<Run> {
    const run = new Run(opts, argv);
    const procs = Math.max(opts.procs, Math.ceil(sockets / MAX_SOCKETS_PER_PROC));
    if (procs > opts.procs)
      run.notes.push(
        `--procs raised from ${opts.procs} to ${procs} (at most ${MAX_SOCKETS_PER_PROC} sockets per load process)`,
      );
    const url = opts.url ?? 'ws://127.0.0.1/';
    const receipts: ReceiptMode = opts.receipts;
    run.sourceAddrs = sourceAddresses(opts.sourceAddrs, url, sockets);
    run.cluster = await LoadCluster.start(
      procs,
      {
        runId: run.runId,
        secret: run.secret,
        sourceAddrs: run.sourceAddrs,
        bodyBytes: opts.bodyBytes,
        receipts,
        receiptIntervalMs: opts.receiptInterval,
        tokenTtlS: 24 * 3600,
        maxBufferedBytes: 64 * 1024 * 1024,
        connectTimeoutMs: opts.connectTimeout,
      },
      opts.quiet,
    );
    run.generator = new ProcSampler(run.cluster.pids, false);
    return run;
  }

  /** Seconds since the run started. */
  elapsedS(): number {
    return (epochNow() - this.startedAt) / 1000;
  }

  log(message: string): void {
    this.cluster.log(message);
  }

  /**
   * Starts (or attaches to, with --url) the Parley server under test; `env` adds PARLEY_*
   * settings of the scenario's own (--server-env overrides them).
   */
  async parley(env: Record<string, string> = {}): Promise<Target> {
    const o = this.opts;
    let target: Target;
    if (o.url) {
      target = new Target(
        'parley',
        o.url,
        o.metricsUrl ?? metricsUrlFor(o.url),
        o.serverPids,
        this.startedAt,
      );
      if (o.serverPids.length === 0)
        this.notes.push('server RSS and CPU from /proc not sampled: pass --server-pids to include them');
    } else {
      const launched = await launchParley({
        cli: o.serverCli,
        args: o.serverArgs,
        nodeArgs: o.serverNodeArgs,
        env: { ...env, ...o.serverEnv, PARLEY_JWT_SECRET: this.secret },
        timeoutMs: 30_000,
      });
      target = new Target(
        'parley',
        launched.url,
        o.metricsUrl ?? launched.metricsUrl,
        [launched.pid, ...o.serverPids],
        this.startedAt,
        launched,
      );
      this.log(`parley serve ${o.serverArgs.join(' ')} listening on ${launched.url} (pid ${launched.pid})`);
    }
    target.startSampling(o.sampleMs);
    this.targets.push(target);
    return target;
  }

  /** Starts the relay baseline. */
  async relay(): Promise<Target> {
    const launched = await launchRelay(15_000);
    const target = new Target('relay', launched.url, undefined, [launched.pid], this.startedAt, launched);
    target.startSampling(this.opts.sampleMs);
    this.targets.push(target);
    this.log(`relay baseline listening on ${launched.url} (pid ${launched.pid})`);
    return target;
  }

  /** Runs `body` as a phase: snapshots go to its recorder; server CPU and RSS are noted around it. */
  async phase(
    name: string,
    target: Target,
    metric: string,
    body: (rec: PhaseRecorder) => Promise<Partial<PhaseResult> | undefined>,
    expected?: ExpectedDeliveries,
  ): Promise<PhaseResult> {
    await this.cluster.flush();
    const rec = new PhaseRecorder(name, target.kind, epochNow(), expected);
    const s0 = target.sampleNow();
    const g0 = this.generator.sample();
    if (target.sampler) target.sampler.peakRssBytes = 0;
    this.cluster.setPhase(rec, { label: name, metric });
    let extra: Partial<PhaseResult> | undefined;
    try {
      extra = await body(rec);
      await this.cluster.flush();
    } finally {
      this.cluster.setPhase(null);
    }
    rec.endedAt = epochNow();
    const s1 = target.sampleNow();
    rec.facts.generator_cpu_pct = cpuPercent(g0, this.generator.sample());
    if (s0 && s1 && s1.at > s0.at) {
      rec.facts.server_cpu_pct = cpuPercent(s0, s1);
      rec.facts.server_rss_start_bytes = s0.rssBytes;
      rec.facts.server_rss_end_bytes = s1.rssBytes;
      rec.facts.server_rss_peak_bytes = Math.max(target.sampler?.peakRssBytes ?? 0, s1.rssBytes);
      rec.facts.server_processes = s1.pids.length;
    }
    const result = rec.result(this.startedAt, extra ?? {});
    this.phases.push(result);
    return result;
  }

  /** Splits items over the load processes round-robin. */
  spread<T>(items: readonly T[]): T[][] {
    const out: T[][] = Array.from({ length: this.cluster.size }, () => []);
    items.forEach((x, i) => {
      out[i % out.length]!.push(x);
    });
    return out;
  }

  /** Opens connections for each load process's users; returns how many opened. */
  async open(
    target: Target,
    usersByProc: string[][],
    concurrency = this.opts.connectConcurrency,
  ): Promise<number> {
    const results = await this.cluster.all<{ opened: number }>((i) =>
      (usersByProc[i]?.length ?? 0) > 0
        ? { op: 'open', users: usersByProc[i]!, concurrency, url: target.url }
        : null,
    );
    return results.reduce((n, r) => n + (r?.opened ?? 0), 0);
  }

  /** Opens connections as a phase: connect latency, connects/s, failures. */
  async connectPhase(
    name: string,
    target: Target,
    usersByProc: string[][],
    concurrency?: number,
  ): Promise<PhaseResult> {
    const wanted = usersByProc.reduce((n, u) => n + u.length, 0);
    return this.phase(name, target, 'connect', async (rec) => {
      const started = epochNow();
      const opened = await this.open(target, usersByProc, concurrency);
      const seconds = (epochNow() - started) / 1000;
      rec.facts.requested = wanted;
      rec.facts.opened = opened;
      rec.facts.seconds = Math.round(seconds * 1000) / 1000;
      if (opened < wanted) this.notes.push(`${name}: ${wanted - opened} of ${wanted} connections failed`);
      return { rates: { connects_per_s: round1(opened / seconds) } };
    });
  }

  /** Closes every connection of every load process. */
  async closeAll(): Promise<void> {
    await this.cluster.all(() => ({ op: 'close' }));
  }

  /**
   * An open-loop load phase: all load processes start together, send for warm-up + duration at
   * their share of `rate`, then the phase waits (up to `drainS`) for every reply and delivery.
   */
  async loadPhase(spec: LoadPhaseSpec): Promise<PhaseResult> {
    const total = spec.streams.reduce((n, s) => n + s.length, 0);
    if (total === 0) throw new Error(`${spec.name}: no sending streams`);
    await spec.target.beginWindow(this.opts.scrapeInterval);
    const result = await this.phase(
      spec.name,
      spec.target,
      'deliver',
      async (rec) => {
        const startAt = Math.ceil(epochNow() + 500);
        spec.onStart?.(startAt);
        const base: Omit<LoadCommand, 'streams' | 'rate'> = {
          op: 'load',
          startAt,
          warmupMs: spec.warmupS * 1000,
          durationMs: spec.durationS * 1000,
          drainMs: spec.drainS * 1000,
          trackLast: spec.expected !== undefined,
        };
        await this.cluster.all(
          (i): CommandInput => ({
            ...base,
            streams: spec.streams[i] ?? [],
            rate: (spec.rate * (spec.streams[i]?.length ?? 0)) / total,
          }),
        );
        // Deliveries follow replies: wait for them too, up to the drain time.
        const deadline = epochNow() + spec.drainS * 1000;
        for (;;) {
          await this.cluster.flush();
          const expected = (rec.counter('sent') - rec.counter('send_rejected')) * spec.fanout;
          if (rec.counter('delivered') >= expected || epochNow() >= deadline) break;
          await sleep(250);
        }
        await spec.settle?.(rec);
        const sent = rec.counter('sent_in_window');
        return {
          offeredRate: spec.rate,
          warmupS: spec.warmupS,
          durationS: spec.durationS,
          rates: {
            offered_per_s: round1(spec.rate),
            sent_per_s: round1(sent / spec.durationS),
            replied_per_s: round1(rec.counter('replied_in_window') / spec.durationS),
            delivered_per_s: round1(rec.counter('delivered_in_window') / spec.durationS),
          },
        };
      },
      spec.expected,
    );
    const undelivered = result.counters.sent! * spec.fanout - (result.counters.delivered ?? 0);
    if (undelivered > 0) result.facts.undelivered_at_end = undelivered;
    const figures = await spec.target.endWindow(spec.name);
    if (figures) for (const [k, v] of Object.entries(figures)) result.facts[`metrics_${k}`] = v;
    const lag = result.latency.lag;
    if (lag && lag.p99 > 50)
      this.notes.push(
        `${spec.name}: the load generator itself fell behind (send lag p99 ${lag.p99} ms): latencies include its own queueing; use more --procs or a lower rate`,
      );
    return result;
  }

  /**
   * Finds the highest delivered/s of `target`: load steps from --probe-rate, doubling while the
   * achieved rate keeps up with the offered one (≥ 90 %); the step that falls short was offered
   * more than the system can carry, and its achieved delivered/s is the maximum.
   */
  async findMax(
    label: string,
    target: Target,
    streams: Stream[][],
    fanout: number,
  ): Promise<{
    max: number;
    sustained: number;
    saturated: boolean;
    generatorBound: boolean;
    /** The probe step that found the maximum (the first that fell short, or the last). */
    atMax: PhaseResult | undefined;
  }> {
    let rate = this.opts.probeRate;
    let best = 0;
    let sustained = 0;
    let saturated = false;
    let generatorBound = false;
    let atMax: PhaseResult | undefined;
    for (let step = 0; step < this.opts.probeSteps; step++) {
      const r = await this.loadPhase({
        name: `${label} probe ${Math.round(rate)}/s`,
        target,
        rate,
        warmupS: 1,
        durationS: this.opts.probeSeconds,
        drainS: Math.max(this.opts.drain, 30),
        streams,
        fanout,
      });
      const achieved = (r.rates.delivered_per_s ?? 0) / fanout;
      r.facts.probe = true;
      if (achieved >= best) atMax = r;
      best = Math.max(best, achieved);
      const lag = r.latency.lag?.p99 ?? 0;
      this.log(`${label}: offered ${Math.round(rate)}/s, achieved ${Math.round(achieved)} msgs/s`);
      if (achieved < 0.9 * rate) {
        saturated = true;
        generatorBound = lag > 100;
        r.facts.saturated = true;
        break;
      }
      sustained = achieved;
      rate *= 2;
    }
    if (!saturated)
      this.notes.push(
        `${label}: not saturated after ${this.opts.probeSteps} probe steps; its maximum is at least ${Math.round(best)} msgs/s`,
      );
    if (generatorBound)
      this.notes.push(
        `${label}: at saturation the load generator lagged its schedule by > 100 ms (p99): the maximum found may be the generator's, not the server's`,
      );
    return { max: best, sustained, saturated, generatorBound, atMax };
  }

  /** Adds a headline row. */
  row(label: string, value: number | string | boolean, unit?: string): void {
    const v = typeof value === 'boolean' ? String(value) : value;
    this.summary.push(unit === undefined ? { label, value: v } : { label, value: v, unit });
  }

  /** Everything measured, for the reports. */
  result(): BenchResult {
    const o = this.opts;
    const cpu = cpus();
    return {
      tool: 'parley-bench',
      formatVersion: 1,
      scenario: o.scenario,
      runId: this.runId,
      startedAt: new Date(this.startedAt).toISOString(),
      finishedAt: new Date().toISOString(),
      argv: this.argv,
      options: { ...o, secret: o.secret ? '(given)' : undefined },
      environment: {
        node: process.version,
        platform: `${process.platform} ${process.arch}`,
        cpus: cpu.length,
        cpuModel: cpu[0]?.model ?? 'unknown',
        memoryBytes: totalmem(),
        hostname: hostname(),
        loadProcesses: this.cluster.size,
        sourceAddresses: this.sourceAddrs.join(' ') || '(chosen by the OS)',
      },
      targets: this.targets.map((t) => t.info()),
      summary: this.summary,
      phases: this.phases,
      timeline: this.cluster.timeline.points(),
      server: this.targets.flatMap((t) => t.samples),
      serverMetrics: this.targets.flatMap((t) => t.metrics),
      notes: this.notes,
    };
  }

  /** Ends the load processes and stops what this run started; notes server warnings. */
  async close(): Promise<void> {
    await this.cluster.stop();
    for (const t of this.targets) {
      if (t.metricsError) this.notes.push(`${t.kind} /metrics unavailable: ${t.metricsError}`);
      const logs = t.launched?.logSummary();
      await t.stop();
      if (logs && (logs.errors > 0 || logs.warnings > 1))
        this.notes.push(
          `${t.kind} logged ${logs.errors} error and ${logs.warnings} warning lines; last lines: ${logs.tail.slice(-3).join(' | ')}`,
        );
    }
  }
}

/** Rounds to one decimal. */
export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** CPU used between two samples of a process tree, in % of one core (one decimal). */
function cpuPercent(a: TreeSample, b: TreeSample): number {
  const seconds = (b.at - a.at) / 1000;
  return seconds > 0 ? Math.round(((b.cpuSeconds - a.cpuSeconds) / seconds) * 1000) / 10 : 0;
}
