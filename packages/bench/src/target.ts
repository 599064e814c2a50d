/**
 * A system under test as the run sees it: where to connect, how to mint tokens for it, and how to
 * watch it (its process tree through /proc, its /metrics through scrapes) — whether the bench
 * spawned it or was pointed at it with `--url`.
 * @module
 */
import { deriveServerFigures, max, type Scrape, scrape } from './metrics-scraper.js';
import type { ServerMetricsSummary, ServerSample, TargetInfo } from './model.js';
import { ProcSampler, type TreeSample } from './proc-sampler.js';
import type { LaunchedServer } from './server-launcher.js';

/** A server being measured. */
export class Target {
  readonly sampler: ProcSampler | null;
  readonly samples: ServerSample[] = [];
  readonly metrics: ServerMetricsSummary[] = [];
  private last: TreeSample | null = null;
  private windowStart: Scrape | null = null;
  private stallMaxS = 0;
  private scrapeTimer: NodeJS.Timeout | null = null;
  /** Why /metrics could not be read, once. */
  metricsError: string | null = null;
  private stopped = false;

  constructor(
    readonly kind: 'parley' | 'relay',
    readonly url: string,
    readonly metricsUrl: string | undefined,
    readonly pids: number[],
    private readonly runStart: number,
    readonly launched: LaunchedServer | null = null,
  ) {
    this.sampler = pids.length > 0 ? new ProcSampler(pids, true) : null;
  }

  /** Samples the process tree every `ms` into `samples`. */
  startSampling(ms: number): void {
    this.sampler?.start(ms, (s) => this.record(s));
    this.sampleNow();
  }

  /** Takes one sample now (and records it). */
  sampleNow(): TreeSample | null {
    if (!this.sampler) return null;
    const s = this.sampler.sample();
    this.record(s);
    return s;
  }

  private record(s: TreeSample): void {
    const prev = this.last;
    this.last = s;
    const cpuPct =
      prev && s.at > prev.at ? ((s.cpuSeconds - prev.cpuSeconds) / ((s.at - prev.at) / 1000)) * 100 : 0;
    this.samples.push({
      t: Math.round((s.at - this.runStart) / 100) / 10,
      target: this.kind,
      pids: s.pids.length,
      rssBytes: s.rssBytes,
      cpuPct: Math.round(Math.max(0, cpuPct) * 10) / 10,
      cpuSeconds: s.cpuSeconds,
    });
  }

  /** Starts a metrics window: scrapes now (which also resets the stall gauge) and then every `everyS`. */
  async beginWindow(everyS: number): Promise<void> {
    if (!this.metricsUrl || this.kind !== 'parley') return;
    const s = await scrape(this.metricsUrl);
    if ('error' in s) {
      this.metricsError ??= s.error;
      this.windowStart = null;
      return;
    }
    this.windowStart = s;
    this.stallMaxS = 0;
    if (everyS > 0) {
      this.scrapeTimer = setInterval(() => {
        void scrape(this.metricsUrl!).then((x) => {
          if (!('error' in x))
            this.stallMaxS = Math.max(this.stallMaxS, max(x, 'parley_event_loop_delay_max_seconds'));
        });
      }, everyS * 1000);
      this.scrapeTimer.unref();
    }
  }

  /** Ends the window: scrapes again and records the derived figures under `name`. */
  async endWindow(name: string): Promise<Record<string, number> | null> {
    if (this.scrapeTimer) clearInterval(this.scrapeTimer);
    this.scrapeTimer = null;
    const a = this.windowStart;
    this.windowStart = null;
    if (!a || !this.metricsUrl) return null;
    const b = await scrape(this.metricsUrl);
    if ('error' in b) {
      this.metricsError ??= b.error;
      return null;
    }
    const values = deriveServerFigures(a, b, this.stallMaxS);
    this.metrics.push({
      target: this.kind,
      from: name,
      to: name,
      intervalS: Math.round((b.at - a.at) / 100) / 10,
      values,
    });
    return values;
  }

  info(): TargetInfo {
    const info: TargetInfo = {
      kind: this.kind,
      url: this.url,
      spawned: this.launched !== null,
      pids: this.pids,
      sampledPids: [...(this.sampler?.seen ?? [])],
    };
    if (this.metricsUrl) info.metricsUrl = this.metricsUrl;
    if (this.launched) info.command = this.launched.command;
    return info;
  }

  /** Stops sampling, and the server when this run started it. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.sampleNow();
    this.sampler?.stop();
    if (this.scrapeTimer) clearInterval(this.scrapeTimer);
    await this.launched?.stop();
  }
}

/** Parley's default admin port, where /metrics is served (never on the client port). */
const DEFAULT_ADMIN_PORT = 9090;

/** The /metrics URL of a deployment by default: its host, the default admin port. */
export function metricsUrlFor(wsUrl: string): string {
  return `http://${new URL(wsUrl).hostname}:${DEFAULT_ADMIN_PORT}/metrics`;
}
