/**
 * `push`: push throughput and delay against a spawned `parley serve`, through Web Push to a local
 * push service (push-endpoint.ts, in this process) that decrypts every notification.
 *
 * Setup: a VAPID key pair (web-push's generateVAPIDKeys) and the endpoint's throwaway CA are passed
 * to the server in its environment (with private endpoints allowed and `--push-burst-ms`, 0 by
 * default: no coalescing window). `--recipients` users each register one device (`push_register`,
 * platform `webpush`, a subscription of their own on the endpoint) and disconnect;
 * `--push-senders` users stay connected and send (push-sender.ts, a process of its own). Each
 * sender goes round all recipients in turn, so with S senders and R recipients a conversation gets
 * one of every S·R messages and, with no burst window, each message should give one notification.
 *
 * Two phases: light load (`--low-rate` msgs/s for `--low-duration` s), then full load (`--rate`,
 * or as fast as `--window` unanswered sends per sender allow) for `--duration` s, each after
 * `--warmup` s. Per phase: messages sent, notifications received (per second over the measured
 * window: the steady state), messages never notified once the endpoint has been quiet for
 * `--drain` s (split into coalesced — a later message of the same conversation was notified, the
 * queue merged them — and lost), and the delay from each message's `ts` (the server's time, in its
 * send reply) to its notification's arrival at the endpoint: p50, p90, p99, max.
 * @module
 */
import { type ChildProcess, fork } from 'node:child_process';
import webpush from 'web-push';
import { ingestDelays, startArrivalTicker } from '../arrival-ticker.js';
import { epochNow, sleep } from '../clock.js';
import { LatencyHistogram } from '../histogram.js';
import { quantileBetween, type Scrape, scrape, sum } from '../metrics-scraper.js';
import type { PhaseResult } from '../model.js';
import { ProcSampler, type TreeSample } from '../proc-sampler.js';
import { type Arrival, PushEndpoint, wallClock } from '../push-endpoint.js';
import { type Run, round1 } from '../run.js';
import type { Target } from '../target.js';
import type { PushSenderArgs, PushSenderCommand, PushSenderMessage, SendRecord } from './push-sender.js';

/** `worker` ids of the snapshots this scenario adds to the timeline (not load processes). */
const SENDER_WORKER = 1000;
const ENDPOINT_WORKER = 1001;
const DELAY_WORKER = 1002;

/** Without-a-distributed-type omit, for commands before their sequence number. */
type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function sibling(name: string): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, import.meta.url).pathname;
}

/** The sender process, seen from here. */
class SenderProcess {
  private records: SendRecord[] = [];
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private seq = 0;
  private exited = false;

  private constructor(
    private readonly run: Run,
    private readonly proc: ChildProcess,
  ) {
    proc.on('message', (m: PushSenderMessage) => this.onMessage(m));
    proc.on('exit', (code, signal) => {
      this.exited = true;
      const err = new Error(`the push sender process exited (${code ?? signal})`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    });
  }

  static async start(run: Run, args: PushSenderArgs): Promise<SenderProcess> {
    const proc = fork(sibling('push-sender'), [JSON.stringify(args)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      proc.once('message', () => resolve());
      proc.once('exit', (code) => reject(new Error(`the push sender process exited (${code}) at start`)));
    });
    return new SenderProcess(run, proc);
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  private onMessage(m: PushSenderMessage): void {
    switch (m.type) {
      case 'stats':
        this.run.cluster.ingest(m.stats);
        for (const r of m.records) this.records.push(r);
        return;
      case 'done':
      case 'failed': {
        const p = this.pending.get(m.seq);
        this.pending.delete(m.seq);
        if (m.type === 'done') p?.resolve(m.result);
        else p?.reject(new Error(m.error));
      }
    }
  }

  call<R>(cmd: Without<PushSenderCommand, 'seq'>): Promise<R> {
    if (this.exited) return Promise.reject(new Error('the push sender process is gone'));
    const seq = ++this.seq;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ ...cmd, seq });
    });
  }

  /** The ok send replies received since the last call. */
  takeRecords(): SendRecord[] {
    const out = this.records;
    this.records = [];
    return out;
  }

  async stop(): Promise<void> {
    if (!this.exited) await Promise.race([this.call({ op: 'exit' }).catch(() => {}), sleep(10_000)]);
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** What every phase uses. */
interface Context {
  endpoint: PushEndpoint;
  sender: SenderProcess;
  senderSampler: ProcSampler;
  target: Target;
  recipients: string[];
  clock: () => number;
}

/** One measured phase. */
interface PhaseSpec {
  name: string;
  /** msgs/s; 0: as fast as the window allows. */
  rate: number;
  durationS: number;
}

/** CPU between two samples, % of one core. */
function cpuPct(cpuSeconds: number, ms: number): number {
  return ms > 0 ? round1((cpuSeconds / (ms / 1000)) * 100) : 0;
}

/** The push figures of the server's /metrics between two scrapes. */
function pushFigures(a: Scrape, b: Scrape): Record<string, number> {
  const d = (name: string): number => sum(b, name) - sum(a, name);
  const out: Record<string, number> = {
    server_push_sent: d('parley_push_sent_total'),
    server_push_failed: d('parley_push_failed_total'),
    server_push_retried: d('parley_push_retried_total'),
    server_push_dead_lettered: d('parley_push_dead_lettered_total'),
    server_push_skipped: d('parley_push_skipped_total'),
    server_push_lag_p50_ms: Math.round(quantileBetween(a, b, 'parley_push_lag_seconds', 0.5) * 1000),
    server_push_lag_p99_ms: Math.round(quantileBetween(a, b, 'parley_push_lag_seconds', 0.99) * 1000),
  };
  for (const [k, v] of Object.entries(out)) if (Number.isNaN(v)) delete out[k];
  return out;
}

/** Runs one phase: sends, waits for the notifications, matches them with the sends. */
async function measure(run: Run, ctx: Context, spec: PhaseSpec): Promise<PhaseResult> {
  const o = run.opts;
  const { endpoint, sender, target } = ctx;
  await target.beginWindow(o.scrapeInterval);
  const metricsUrl = target.metricsUrl;
  const m0 = metricsUrl ? await scrape(metricsUrl) : null;
  const result = await run.phase(spec.name, target, 'reply', async (rec) => {
    // Anything left from before belongs to no message of this phase.
    const stale = endpoint.take().length;
    endpoint.takeViolations();
    sender.takeRecords();
    const startAt = Math.ceil(epochNow() + 500);
    const windowStart = startAt + o.warmup * 1000;
    const windowEnd = windowStart + spec.durationS * 1000;
    // Arrival times are on the wall clock (that of the messages' ts): the window's edges on it.
    const shift = ctx.clock() - epochNow();
    // CPU over the measured window only (the wait for the notifications would dilute it).
    const cpu: { at: number; server: TreeSample | null; sender: TreeSample; endpoint: NodeJS.CpuUsage }[] =
      [];
    const sampleCpu = (): void => {
      cpu.push({
        at: epochNow(),
        server: target.sampleNow(),
        sender: ctx.senderSampler.sample(),
        endpoint: process.cpuUsage(),
      });
    };
    const timers = [
      setTimeout(sampleCpu, windowStart - epochNow()),
      setTimeout(sampleCpu, windowEnd - epochNow()),
    ];
    let sendResult: { sent: number; unanswered: number };
    try {
      sendResult = await sender.call<{ sent: number; unanswered: number }>({
        op: 'run',
        recipients: ctx.recipients,
        rate: spec.rate,
        window: o.window,
        startAt,
        warmupMs: o.warmup * 1000,
        durationMs: spec.durationS * 1000,
        drainMs: Math.max(o.drain, 30) * 1000,
      });
    } finally {
      for (const t of timers) clearTimeout(t);
    }
    // Every reply is in (its stats came before the answer).
    const records = sender.takeRecords();
    const lastSeq = new Map<string, number>();
    for (const [conv, seq] of records) if ((lastSeq.get(conv) ?? -1) < seq) lastSeq.set(conv, seq);

    // Wait for the notifications: until each conversation's last message is notified, or the
    // endpoint has been quiet for --drain s (what has not come by then is missing).
    const arrivals: Arrival[] = [];
    const notifiedUpTo = new Map<string, number>();
    let unsettled = lastSeq.size;
    const absorb = (list: Arrival[]): void => {
      for (const a of list) {
        arrivals.push(a);
        const before = notifiedUpTo.get(a.conv) ?? -1;
        if (a.seq <= before) continue;
        notifiedUpTo.set(a.conv, a.seq);
        const last = lastSeq.get(a.conv);
        if (last !== undefined && before < last && a.seq >= last) unsettled--;
      }
    };
    let lastArrival = epochNow();
    for (;;) {
      const list = endpoint.take();
      if (list.length > 0) lastArrival = epochNow();
      absorb(list);
      if (unsettled <= 0 || epochNow() - lastArrival >= o.drain * 1000) break;
      await sleep(100);
    }

    // Match notifications with sends.
    const sentAt = new Map<string, { ts: number; measured: boolean }>();
    for (const [conv, seq, ts, measured] of records)
      sentAt.set(`${conv}#${seq}`, { ts, measured: measured === 1 });
    const firstArrival = new Map<string, number>();
    let duplicates = 0;
    let unmatched = 0;
    let notifiedInWindow = 0;
    let lastMatchedAt = 0;
    const win = new LatencyHistogram();
    const perSecond = new Map<number, LatencyHistogram>();
    for (const a of arrivals) {
      const key = `${a.conv}#${a.seq}`;
      const sent = sentAt.get(key);
      if (!sent) {
        unmatched++;
        continue;
      }
      if (firstArrival.has(key)) {
        duplicates++;
        continue;
      }
      firstArrival.set(key, a.at);
      lastMatchedAt = Math.max(lastMatchedAt, a.at);
      if (a.at - shift >= windowStart && a.at - shift < windowEnd) notifiedInWindow++;
      const delay = a.at - sent.ts;
      if (sent.measured) win.recordMs(delay);
      const sec = Math.floor(a.at / 1000);
      let h = perSecond.get(sec);
      if (!h) {
        h = new LatencyHistogram();
        perSecond.set(sec, h);
      }
      h.recordMs(delay);
    }
    let missing = 0;
    let coalesced = 0;
    let measuredSent = 0;
    let measuredNotified = 0;
    for (const [conv, seq, , measured] of records) {
      const got = firstArrival.has(`${conv}#${seq}`);
      if (measured === 1) {
        measuredSent++;
        if (got) measuredNotified++;
      }
      if (got) continue;
      missing++;
      if ((notifiedUpTo.get(conv) ?? -1) > seq) coalesced++;
    }

    // The delays, per second of arrival for the timeline, and the measured window's for the phase.
    ingestDelays(run, DELAY_WORKER, 'push', perSecond, win);

    const f = rec.facts;
    f.recipients = ctx.recipients.length;
    f.messages_sent = records.length;
    f.notified = firstArrival.size;
    f.missing = missing;
    f.missing_coalesced = coalesced;
    f.missing_lost = missing - coalesced;
    f.duplicate_notifications = duplicates;
    if (unmatched > 0) f.notifications_not_of_this_phase = unmatched;
    if (stale > 0) f.notifications_left_from_before = stale;
    f.measured_window_sent = measuredSent;
    f.measured_window_notified = measuredNotified;
    f.unanswered_sends = sendResult.unanswered;
    // How long after sending stopped the last notification came (the backlog's drain).
    if (lastMatchedAt > 0)
      f.last_notification_after_sending_s = round1((lastMatchedAt - shift - windowEnd) / 1000);
    for (const [reason, n] of Object.entries(endpoint.takeViolations())) f[`endpoint_refused: ${reason}`] = n;
    f.endpoint_tls_connections_so_far = endpoint.counters.connections;
    const [c0, c1] = cpu;
    if (c0 && c1) {
      const ms = c1.at - c0.at;
      if (c0.server && c1.server)
        f.server_cpu_window_pct = cpuPct(c1.server.cpuSeconds - c0.server.cpuSeconds, ms);
      f.sender_cpu_window_pct = cpuPct(c1.sender.cpuSeconds - c0.sender.cpuSeconds, ms);
      const e0 = c0.endpoint;
      const e1 = c1.endpoint;
      f.endpoint_cpu_window_pct = cpuPct((e1.user + e1.system - e0.user - e0.system) / 1e6, ms);
    }
    const seconds = spec.durationS;
    return {
      ...(spec.rate > 0 ? { offeredRate: spec.rate } : {}),
      warmupS: o.warmup,
      durationS: seconds,
      rates: {
        ...(spec.rate > 0 ? { offered_per_s: round1(spec.rate) } : {}),
        sent_per_s: round1(rec.counter('sent_in_window') / seconds),
        replied_per_s: round1(rec.counter('replied_in_window') / seconds),
        notified_per_s: round1(notifiedInWindow / seconds),
      },
    };
  });
  if (metricsUrl && m0 && !('error' in m0)) {
    const m1 = await scrape(metricsUrl);
    if (!('error' in m1)) Object.assign(result.facts, pushFigures(m0, m1));
  }
  const figures = await target.endWindow(spec.name);
  if (figures) for (const [k, v] of Object.entries(figures)) result.facts[`metrics_${k}`] = v;
  return result;
}

function delayRow(run: Run, label: string, p: PhaseResult): void {
  const l = p.latency.push;
  run.row(
    `${label}: delay message ts→push arrival p50 / p90 / p99 / max`,
    l ? `${l.p50} / ${l.p90} / ${l.p99} / ${l.max}` : 'no notification',
    'ms',
  );
}

function countRows(run: Run, label: string, p: PhaseResult): void {
  const f = p.facts;
  run.row(
    `${label}: messages sent / notified / missing (coalesced, lost)`,
    `${f.messages_sent} / ${f.notified} / ${f.missing} (${f.missing_coalesced}, ${f.missing_lost})`,
  );
  if (f.server_cpu_window_pct !== undefined)
    run.row(
      `${label}: CPU server / sender / endpoint`,
      `${f.server_cpu_window_pct} / ${f.sender_cpu_window_pct} / ${f.endpoint_cpu_window_pct}`,
      '% of a core',
    );
}

/** Runs `push`. */
export async function push(run: Run): Promise<void> {
  const o = run.opts;
  const clock = wallClock();
  const vapid = webpush.generateVAPIDKeys();
  const endpoint = await PushEndpoint.start(vapid.publicKey, clock);
  const stopTicker = startArrivalTicker(run, ENDPOINT_WORKER, endpoint);
  let sender: SenderProcess | null = null;
  let target: Target | null = null;
  try {
    target = await run.parley({
      PARLEY_VAPID_PUBLIC_KEY: vapid.publicKey,
      PARLEY_VAPID_PRIVATE_KEY: vapid.privateKey,
      PARLEY_PUSH_CA_FILE: endpoint.caFile,
      PARLEY_PUSH_ALLOW_PRIVATE_ENDPOINTS: 'true',
      PARLEY_PUSH_BURST_MS: String(o.pushBurstMs),
      // The bench measures push, not the per-user and per-address budgets (a few senders send it all).
      PARLEY_FANOUT_RATE_PER_SECOND: '1000000',
      PARLEY_FANOUT_BURST: '1000000',
      PARLEY_CONNECT_RATE_PER_ADDRESS: '0',
    });
    run.log(`push endpoint ${endpoint.origin} (its CA passed to the server as PARLEY_PUSH_CA_FILE)`);
    const recipients = Array.from({ length: o.recipients }, (_, i) => `${run.runId}-r${i}`);
    const senderUsers = Array.from({ length: o.pushSenders }, (_, i) => `${run.runId}-s${i}`);
    const s = await SenderProcess.start(run, {
      url: target.url,
      secret: run.secret,
      senders: senderUsers,
      connectTimeoutMs: o.connectTimeout,
      bodyBytes: o.bodyBytes,
      worker: SENDER_WORKER,
    });
    sender = s;
    const ctx: Context = {
      endpoint,
      sender: s,
      senderSampler: new ProcSampler([s.pid], false),
      target,
      recipients,
      clock,
    };

    const setup = await run.phase('push setup', target, 'connect', async (rec) => {
      const started = epochNow();
      const specs = recipients.map((user) => ({ user, subscription: endpoint.subscribe() }));
      const reg = await s.call<{ registered: number; failed: Record<string, number> }>({
        op: 'register',
        recipients: specs,
        concurrency: 50,
      });
      rec.facts.registered = reg.registered;
      for (const [code, n] of Object.entries(reg.failed)) rec.facts[`register_failed: ${code}`] = n;
      rec.facts.register_seconds = round1((epochNow() - started) / 1000);
      if (reg.registered < recipients.length)
        run.notes.push(
          `push setup: ${recipients.length - reg.registered} of ${recipients.length} registrations failed (${JSON.stringify(reg.failed)})`,
        );
      if (reg.registered === 0) throw new Error('no recipient could register for push');
      const { opened } = await s.call<{ opened: number }>({ op: 'connect' });
      rec.facts.senders_connected = opened;
      if (opened < senderUsers.length)
        run.notes.push(
          `push setup: ${senderUsers.length - opened} of ${senderUsers.length} senders did not connect`,
        );
      return {};
    });
    run.row(
      'recipients (offline, one Web Push device each) / senders',
      `${setup.facts.registered} / ${setup.facts.senders_connected}`,
    );
    run.row('push burst window (PARLEY_PUSH_BURST_MS)', o.pushBurstMs, 'ms');

    if (o.lowDuration > 0) {
      const light = await measure(run, ctx, {
        name: `light load @ ${o.lowRate}/s`,
        rate: o.lowRate,
        durationS: o.lowDuration,
      });
      run.row('light load: notifications received', light.rates.notified_per_s ?? 0, '/s');
      delayRow(run, 'light load', light);
      countRows(run, 'light load', light);
    }

    const label = 'full load';
    const full = await measure(run, ctx, {
      name:
        o.rate !== undefined
          ? `full load @ ${o.rate}/s`
          : `full load (window ${o.window} × ${o.pushSenders} senders)`,
      rate: o.rate ?? 0,
      durationS: o.duration,
    });
    run.row(
      `${label}: offered`,
      o.rate !== undefined
        ? `${o.rate} msgs/s`
        : `as fast as ${o.window} unanswered sends per sender allow (${o.pushSenders} senders)`,
    );
    const sent = full.rates.sent_per_s ?? 0;
    const notified = full.rates.notified_per_s ?? 0;
    run.row(`${label}: messages sent`, sent, 'msgs/s');
    run.row(`${label}: notifications received (steady state)`, notified, '/s');
    delayRow(run, label, full);
    countRows(run, label, full);
    const lag = full.facts.server_push_lag_p99_ms;
    if (lag !== undefined)
      run.row(`${label}: server push queue lag p99 (parley_push_lag_seconds)`, lag, 'ms');
    if (full.facts.last_notification_after_sending_s !== undefined)
      run.row(
        `${label}: last notification after sending stopped`,
        full.facts.last_notification_after_sending_s,
        's',
      );
    if (notified < 0.95 * sent)
      run.notes.push(
        `${label}: notifications (${notified}/s) did not keep up with messages (${sent}/s): the push queue grew through the window, so the delays there are mostly queueing, and a message whose conversation's job was still queued was merged into the newer one (counted as coalesced). --rate below ${Math.floor(notified)} measures the delay at a rate it sustains`,
      );
    for (const p of run.phases) {
      const refused = Object.keys(p.facts).filter((k) => k.startsWith('endpoint_refused'));
      if (refused.length > 0)
        run.notes.push(
          `${p.name}: the endpoint refused requests: ${refused.map((k) => `${k} ×${p.facts[k]}`).join(', ')}`,
        );
    }
    run.notes.push(
      "delay = the notification's arrival at the endpoint − the message's ts (the server's clock, whole ms: up to 1 ms of rounding); the server, the senders and the endpoint share this machine's cores",
    );
  } finally {
    stopTicker();
    await sender?.stop();
    // The server first: stopped while the endpoint still answers, it has nothing to retry.
    await target?.stop();
    await endpoint.close();
  }
}
