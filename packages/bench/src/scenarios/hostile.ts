/**
 * `hostile`: the attacks of issue 10, each for `--duration` seconds (60 by default) against a
 * freshly spawned `parley serve` with its defaults (nothing lifted: the server's own limits are
 * what is attacked), next to a bystander doing 1:1 messaging (20 sends/s, a ping every 100 ms, a
 * fresh connect every 2 s, /healthz every second), each in a process of its own
 * (hostile-attacker.ts, hostile-bystander.ts). Per attack it reports the server's peak RSS, the
 * longest event-loop stall (the bystander's longest ping round trip, and the server's own stall
 * gauge scraped every second from /metrics — on the admin listener when the server has one, on
 * the client port otherwise), the bystander's send→deliver p99, and whether the server crashed;
 * and checks the bar: no crash, peak RSS < 1 GiB, bystander p99 < 250 ms.
 *
 * `--server-cli <checkout>/packages/server/dist/cli.js` runs the same attacks against another
 * checkout's server (the "before" figures of docs/benchmarks.md came from the commit before the
 * fixes).
 * @module
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../clock.js';
import { LatencyHistogram } from '../histogram.js';
import { max as maxOf, scrape } from '../metrics-scraper.js';
import type { Run } from '../run.js';
import type { LaunchedServer } from '../server-launcher.js';
import { Target } from '../target.js';
import { ATTACKS, type Attack } from './hostile-attacks.js';
import type { BystanderArgs, BystanderResult } from './hostile-bystander.js';

const MIB = 1024 * 1024;
/** The bar of issue 10 on this machine. */
export const HOSTILE_BAR = { rssBytes: 1024 * MIB, deliverP99Ms: 250 };
/** Stall gauges a Parley server may export (its own, and prom-client's default). */
const STALL_METRICS = [
  'parley_event_loop_delay_max_seconds',
  'parley_nodejs_eventloop_lag_max_seconds',
  'nodejs_eventloop_lag_max_seconds',
];

function sibling(name: string): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, import.meta.url).pathname;
}

/** A spawned server whose end (a crash, when nobody stopped it) is watched. */
interface HostileServer extends LaunchedServer {
  /** The admin listener's /metrics when the server logged one, else the client port's. */
  metricsUrls: string[];
  /** Set when the process ended without being stopped: how it ended. */
  crashed: string | null;
}

function cleanEnv(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PARLEY_')) out[k] = v;
  return out;
}

/**
 * Spawns `parley serve` with its defaults. It asks for an admin listener on a free port
 * (`PARLEY_ADMIN_PORT=0`) and, when the server does not know that setting (an older checkout
 * refuses unknown variables), starts again without it.
 */
async function launch(run: Run, withAdmin = true): Promise<HostileServer> {
  const o = run.opts;
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-hostile-'));
  const command = [process.execPath, ...o.serverNodeArgs, o.serverCli, 'serve', ...o.serverArgs];
  const env: NodeJS.ProcessEnv = {
    ...cleanEnv(),
    PARLEY_PORT: '0',
    PARLEY_DATA_DIR: dataDir,
    PARLEY_JWT_SECRET: run.secret,
    PARLEY_LOG_LEVEL: 'info',
    PARLEY_DRAIN_MS: '1000',
    ...(withAdmin ? { PARLEY_ADMIN_PORT: '0' } : {}),
    ...o.serverEnv,
  };
  const proc = spawn(command[0]!, command.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  let warnings = 0;
  let errors = 0;
  let seen = '';
  let port = 0;
  let adminPort = 0;
  let stopping = false;
  const feed = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    if (seen.length < 200_000) seen += text;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const level = Number(/"level":(\d+)/.exec(line)?.[1] ?? 0);
      if (level >= 50) errors++;
      else if (level >= 40) warnings++;
      tail.push(line.slice(0, 2000));
      if (tail.length > 50) tail.shift();
      const p = Number(/"port":(\d+)/.exec(line)?.[1] ?? 0);
      if (line.includes('"msg":"parley admin listening"') && p) adminPort = p;
      else if (line.includes('"msg":"parley listening"') && p) port = p;
    }
  };
  proc.stdout.on('data', feed);
  proc.stderr.on('data', feed);
  const server: HostileServer = {
    kind: 'parley',
    pid: proc.pid!,
    port: 0,
    url: '',
    httpUrl: '',
    command: command.slice(1),
    secret: run.secret,
    metricsUrls: [],
    crashed: null,
    logSummary: () => ({ warnings, errors, tail: [...tail] }),
    stop: async (graceMs = 5000) => {
      stopping = true;
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  const exited = new Promise<string>((resolve) =>
    proc.once('exit', (code, signal) => resolve(signal ?? `exit ${code}`)),
  );
  void exited.then((how) => {
    if (!stopping && port) {
      server.crashed = how;
      run.log(`parley serve ended by itself (${how}): ${tail.slice(-3).join(' | ')}`);
    }
  });
  const deadline = Date.now() + 30_000;
  while (!port && proc.exitCode === null && proc.signalCode === null && Date.now() < deadline)
    await sleep(20);
  if (!port) {
    await server.stop(0);
    if (withAdmin && seen.includes('PARLEY_ADMIN_PORT')) return launch(run, false);
    throw new Error(`parley serve did not start:\n${seen.slice(-4000)}`);
  }
  // The admin line may follow the client one.
  const adminDeadline = Date.now() + (withAdmin ? 1000 : 0);
  while (withAdmin && !adminPort && Date.now() < adminDeadline) await sleep(20);
  server.port = port;
  server.url = `ws://127.0.0.1:${port}/v1/ws`;
  server.httpUrl = `http://127.0.0.1:${port}`;
  server.metricsUrls = [
    ...(adminPort ? [`http://127.0.0.1:${adminPort}/metrics`] : []),
    `${server.httpUrl}/metrics`,
  ];
  return server;
}

/** Scrapes the stall gauges every second; the first URL that answers is kept. */
class StallWatch {
  maxS = 0;
  scrapes = 0;
  failures = 0;
  url: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly urls: string[]) {}

  private async once(): Promise<void> {
    for (const url of this.url ? [this.url] : this.urls) {
      const s = await scrape(url, 30_000); // a late answer still holds the stall since the last one
      if ('error' in s) continue;
      this.url = url;
      this.scrapes++;
      for (const m of STALL_METRICS) this.maxS = Math.max(this.maxS, maxOf(s, m));
      return;
    }
    this.failures++;
  }

  async start(): Promise<void> {
    await this.once(); // resets the server's since-last-scrape gauge
    this.maxS = 0;
    this.scrapes = 0;
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      void this.once().finally(() => {
        this.busy = false;
      });
    }, 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    while (this.busy) await sleep(20);
    await this.once();
  }
}

/** A forked helper that answers commands with `{type:'done'|'failed'}`. */
function forkHelper(name: string, args: object): { proc: ChildProcess; ready: Promise<void> } {
  const proc = fork(sibling(name), [JSON.stringify(args)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    proc.once('message', () => resolve());
    proc.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
  });
  return { proc, ready };
}

function command(
  proc: ChildProcess,
  msg: object,
  timeoutMs: number,
): Promise<{ type: string; counters: Record<string, number>; error?: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(msg)}`)), timeoutMs);
    const onMessage = (m: { type: string; counters: Record<string, number>; error?: string }) => {
      if (m.type !== 'done' && m.type !== 'failed' && m.type !== 'report') return;
      clearTimeout(timer);
      proc.off('message', onMessage);
      resolve(m);
    };
    proc.on('message', onMessage);
    proc.send(msg);
  });
}

/** Which attacks `--attacks` selects (all by default). */
export function selectedAttacks(setting: string | undefined): Attack[] {
  if (!setting || setting === 'all') return [...ATTACKS];
  const out: Attack[] = [];
  for (const a of setting.split(',').filter(Boolean)) {
    if (!(ATTACKS as readonly string[]).includes(a))
      throw new Error(`unknown attack "${a}" (one of ${ATTACKS.join(', ')})`);
    out.push(a as Attack);
  }
  return out;
}

/** Runs `hostile`. */
export async function hostile(run: Run): Promise<void> {
  const o = run.opts;
  const rows: string[][] = [
    [
      'attack',
      'peak RSS MiB',
      'stall ms (ping max / server)',
      'p99 send→deliver ms',
      'crashed',
      'bar',
      'the attacker saw',
    ],
  ];
  for (const attack of selectedAttacks(o.attacks)) {
    const server = await launch(run);
    const target = new Target(
      'parley',
      server.url,
      server.metricsUrls[0],
      [server.pid],
      run.startedAt,
      server,
    );
    target.startSampling(Math.min(o.sampleMs, 200));
    run.targets.push(target);
    run.log(
      `${attack}: parley serve on ${server.url} (pid ${server.pid}), metrics ${server.metricsUrls.join(' or ')}`,
    );
    const prefix = `${run.runId}-${attack}`;
    const attacker = forkHelper('hostile-attacker', {
      attack,
      url: server.url,
      port: server.port,
      secret: run.secret,
      prefix,
    });
    let bystander: ReturnType<typeof forkHelper> | null = null;
    try {
      await attacker.ready;
      const setup = await command(attacker.proc, { op: 'setup' }, 300_000);
      if (setup.type === 'failed') throw new Error(`${attack} setup: ${setup.error}`);
      const bargs: BystanderArgs = {
        url: server.url,
        httpUrl: server.httpUrl,
        secret: run.secret,
        users: [`${prefix}-bys-a`, `${prefix}-bys-b`],
        localAddress: '127.0.0.2',
        ratePerS: 20,
        pingEveryMs: 100,
      };
      bystander = forkHelper('hostile-bystander', bargs);
      await bystander.ready;
      const stalls = new StallWatch(server.metricsUrls);
      let attackerCounters: Record<string, number> = {};
      const phase = await run.phase(attack, target, 'deliver', async (rec) => {
        await stalls.start();
        const res = await command(
          attacker.proc,
          { op: 'run', durationMs: o.duration * 1000 },
          (o.duration + 120) * 1000,
        );
        attackerCounters = res.counters;
        if (res.type === 'failed') run.notes.push(`${attack}: the attacker failed: ${res.error}`);
        const by = (await command(bystander!.proc, { op: 'stop' }, 30_000)) as unknown as BystanderResult;
        await stalls.stop();
        if (by.connectError) run.notes.push(`${attack}: the bystander could not connect: ${by.connectError}`);
        for (const [k, v] of Object.entries(res.counters)) rec.facts[`attacker_${k}`] = v;
        for (const [k, v] of Object.entries(by.counters)) rec.facts[`bystander_${k}`] = v;
        rec.facts.bystander_undelivered = by.undelivered;
        rec.facts.server_stall_max_ms = Math.round(stalls.maxS * 1000);
        rec.facts.server_stall_scrapes = stalls.scrapes;
        rec.facts.server_stall_scrape_failures = stalls.failures;
        if (stalls.url) rec.facts.metrics_url = stalls.url;
        const latency: Record<string, ReturnType<LatencyHistogram['summary']>> = {};
        const spectrum: Record<string, ReturnType<LatencyHistogram['spectrum']>> = {};
        for (const [k, b64] of Object.entries(by.histograms)) {
          const h = LatencyHistogram.decode(b64);
          if (h.count === 0) continue;
          latency[k] = h.summary();
          spectrum[k] = h.spectrum();
        }
        return {
          durationS: o.duration,
          latency,
          spectrum,
          histograms: by.histograms,
          counters: { sent: by.sent, undelivered: by.undelivered, errors: countErrors(by.counters) },
        };
      });
      const crashed = server.crashed;
      phase.facts.crashed = crashed ?? false;
      if (crashed)
        run.notes.push(
          `${attack}: parley serve died (${crashed}); its last lines: ${server.logSummary().tail.slice(-4).join(' | ').slice(0, 1500)}`,
        );
      const peak = Number(phase.facts.server_rss_peak_bytes ?? 0);
      const p99 = phase.latency.deliver?.p99 ?? Number.POSITIVE_INFINITY;
      const pass = !crashed && peak < HOSTILE_BAR.rssBytes && p99 < HOSTILE_BAR.deliverP99Ms;
      phase.facts.bar_met = pass;
      rows.push([
        attack,
        (peak / MIB).toFixed(0),
        `${fmt(phase.latency.ping?.max)} / ${stalls.scrapes > 0 ? fmt(stalls.maxS * 1000) : '-'}`,
        fmt(phase.latency.deliver?.p99),
        crashed ? `yes (${crashed})` : 'no',
        pass ? 'met' : 'NOT met',
        outcome(attackerCounters),
      ]);
    } catch (err) {
      run.notes.push(`${attack}: ${err instanceof Error ? err.message : String(err)}`);
      rows.push([attack, '-', '-', '-', server.crashed ? `yes (${server.crashed})` : '?', 'not measured']);
    } finally {
      attacker.proc.kill('SIGKILL');
      bystander?.proc.kill('SIGKILL');
      await target.stop();
    }
  }
  // The per-attack table, as headline rows (the first column is the label).
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    run.row(
      r[0]!,
      r
        .slice(1)
        .map((c, i) => c.padEnd(widths[i + 1]!))
        .join('  ')
        .trimEnd(),
    );
  run.notes.push(
    `bar: no crash, server peak RSS < ${HOSTILE_BAR.rssBytes / MIB} MiB, bystander send→deliver p99 < ${HOSTILE_BAR.deliverP99Ms} ms; stall = the bystander's longest ping round trip (pings every 100 ms) / the server's event-loop stall gauge (max of scrapes every second, '-' when /metrics could not be read)`,
  );
}

function fmt(ms: number | undefined): string {
  return ms === undefined ? '-' : String(Math.round(ms));
}

/** The attacker's side in a few words: how it was refused or closed, and what it received. */
function outcome(c: Record<string, number>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(c))
    if (/^(closed:|reply:(?!ok)|http:)/.test(k)) parts.push(`${k.replace(/^reply:/, '')} ${v}`);
  if (c['reply:ok']) parts.push(`ok ${c['reply:ok']}`);
  if (c.largest_frame_bytes) parts.push(`largest frame ${(c.largest_frame_bytes / MIB).toFixed(1)} MiB`);
  if (c.typing_received_max_per_member !== undefined)
    parts.push(`typing frames per member ≤ ${c.typing_received_max_per_member}`);
  if (c.idle_open_max !== undefined)
    parts.push(
      `idle open ≤ ${c.idle_open_max}, shed ${c.idle_shed ?? 0} (longest idle ${((c.idle_lifetime_max_ms ?? 0) / 1000).toFixed(1)} s), refused ${c.idle_refused ?? 0}, open at end ${c.idle_open_at_end ?? 0}`,
    );
  return parts.join(', ') || '-';
}

function countErrors(c: Record<string, number>): number {
  let n = 0;
  for (const [k, v] of Object.entries(c))
    if (k.startsWith('error:') || k.startsWith('closed:') || k.endsWith('_failed') || /^healthz_\d/.test(k))
      n += v;
  return n;
}
