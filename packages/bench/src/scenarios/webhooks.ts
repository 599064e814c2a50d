/**
 * `webhooks`: webhook delivery delay — from a message being stored to an app backend's HTTP
 * endpoint receiving its `message.stored` event — at an offered rate, against a spawned
 * `parley serve`.
 *
 * Setup: a receiver in this process (webhook-receiver.ts: plain HTTP on a free loopback port,
 * signature checked on every request, 200 with keep-alive) and the server spawned with
 * `PARLEY_WEBHOOK_URLS` pointing at it, a secret made for the run (`PARLEY_WEBHOOK_SECRET`),
 * `PARLEY_WEBHOOK_EVENTS=message.stored` and the send and fan-out budgets lifted (it measures the
 * path, not the budgets); `--server-env` overrides any of them (e.g.
 * `PARLEY_WEBHOOK_INCLUDE_BODIES=true`). The load is `direct`'s: `--users` online users in pairs
 * (in the load processes), both sides of each pair sending 1:1 at `--rate` in total (default
 * 200 msgs/s) for `--warmup` + `--duration` s, open loop.
 *
 * Reported over the measured window (messages whose server `ts` falls in it): events received per
 * second (arrivals in the window), the delay from the message's `ts` (the server's `Date.now()`,
 * whole ms) to the event's arrival at the receiver (the wall clock of this machine, when the
 * request's headers arrived): p50/p90/p99/max; over the whole load: events still missing once every
 * stored message (ok send reply) has its event or the receiver has been quiet for `--drain` s,
 * signature failures, duplicates and out-of-order events; send→deliver over WebSocket for
 * comparison; CPU of the server, of this process (receiver and coordinator) and of the load
 * processes over the window; the server's own `parley_webhook_*` counters.
 *
 * `--url` is refused: the server's webhook endpoints are configuration read at start, so the
 * scenario spawns its own server to point it at the receiver.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { ingestDelays, startArrivalTicker } from '../arrival-ticker.js';
import { epochNow, sleep } from '../clock.js';
import { LatencyHistogram } from '../histogram.js';
import { quantileBetween, type Scrape, scrape, sum } from '../metrics-scraper.js';
import type { PhaseResult } from '../model.js';
import type { TreeSample } from '../proc-sampler.js';
import { wallClock } from '../push-endpoint.js';
import { type Run, round1 } from '../run.js';
import type { PhaseRecorder } from '../stats.js';
import type { Target } from '../target.js';
import { type ReceiverCounters, type WebhookArrival, WebhookReceiver } from '../webhook-receiver.js';
import { pairs } from './direct.js';

/** Offered rate without `--rate`, msgs/s. */
export const DEFAULT_WEBHOOKS_RATE = 200;

/** `worker` ids of the snapshots this scenario adds to the timeline (not load processes). */
const RECEIVER_WORKER = 1001;
const DELAY_WORKER = 1002;

/** The webhook figures of the server's /metrics between two scrapes. */
function serverFigures(a: Scrape, b: Scrape): Record<string, number> {
  const d = (name: string): number => sum(b, name) - sum(a, name);
  const out: Record<string, number> = {
    server_webhook_queued: d('parley_webhook_queued_total'),
    server_webhook_delivered: d('parley_webhook_delivered_total'),
    server_webhook_retried: d('parley_webhook_retried_total'),
    server_webhook_dead_lettered: d('parley_webhook_dead_lettered_total'),
    server_webhook_dropped: d('parley_webhook_dropped_total'),
    // Buckets of 5, 10, 25, 50, 100, 250 ms …: coarse, interpolated.
    server_webhook_delay_p50_ms: Math.round(
      quantileBetween(a, b, 'parley_webhook_delay_seconds', 0.5) * 1000,
    ),
    server_webhook_delay_p99_ms: Math.round(
      quantileBetween(a, b, 'parley_webhook_delay_seconds', 0.99) * 1000,
    ),
  };
  for (const [k, v] of Object.entries(out)) if (Number.isNaN(v)) delete out[k];
  return out;
}

/** CPU at one edge of the measured window. */
interface CpuMark {
  at: number;
  server: TreeSample | null;
  generator: TreeSample;
  self: NodeJS.CpuUsage;
}

/** CPU between two marks, % of one core. */
function cpuPct(cpuSeconds: number, ms: number): number {
  return ms > 0 ? round1((cpuSeconds / (ms / 1000)) * 100) : 0;
}

/** Everything `settle` needs, filled in as the phase goes. */
interface Window {
  startAt: number;
  cpu: CpuMark[];
  timers: NodeJS.Timeout[];
  /** Takes a CPU mark now. */
  mark: () => void;
  /** The receiver's counters when the load started. */
  before: ReceiverCounters;
}

/**
 * Waits for the events of the phase's messages, then records the delays (per second of arrival
 * for the timeline, the measured window's for the phase) and the counts in `rec`.
 */
async function settle(
  run: Run,
  receiver: WebhookReceiver,
  clock: () => number,
  w: Window,
  rec: PhaseRecorder,
): Promise<void> {
  const o = run.opts;
  for (const t of w.timers) clearTimeout(t);
  // The replies can all be in before the end-of-window timer fired: its mark is taken now.
  if (w.cpu.length === 1) w.mark();
  const windowStart = w.startAt + o.warmup * 1000;
  const windowEnd = windowStart + o.duration * 1000;
  // Arrival times and `ts` are on the wall clock: the window's edges on it.
  const shift = clock() - epochNow();
  const stored = rec.counter('replied');
  const arrivals: WebhookArrival[] = [];
  let others = 0;
  let lastArrival = epochNow();
  for (;;) {
    const list = receiver.take();
    if (list.length > 0) lastArrival = epochNow();
    for (const a of list) {
      if (a.conv.includes(run.runId)) arrivals.push(a);
      else others++;
    }
    if (arrivals.length >= stored || epochNow() - lastArrival >= o.drain * 1000) break;
    await sleep(50);
  }

  const win = new LatencyHistogram();
  const perSecond = new Map<number, LatencyHistogram>();
  const lastSeq = new Map<string, number>();
  let outOfOrder = 0;
  let inWindow = 0;
  let measured = 0;
  let lastAt = 0;
  for (const a of arrivals) {
    const delay = a.at - a.ts;
    if (a.ts >= windowStart + shift && a.ts < windowEnd + shift) {
      win.recordMs(delay);
      measured++;
    }
    if (a.at >= windowStart + shift && a.at < windowEnd + shift) inWindow++;
    lastAt = Math.max(lastAt, a.at);
    if ((lastSeq.get(a.conv) ?? -1) > a.seq) outOfOrder++;
    else lastSeq.set(a.conv, a.seq);
    const sec = Math.floor((a.at - shift) / 1000);
    let h = perSecond.get(sec);
    if (!h) {
      h = new LatencyHistogram();
      perSecond.set(sec, h);
    }
    h.recordMs(delay);
  }
  ingestDelays(run, DELAY_WORKER, 'webhook', perSecond, win);

  const c = receiver.counters;
  const before = w.before;
  const f = rec.facts;
  f.messages_stored = stored;
  f.webhook_events = arrivals.length;
  f.webhook_events_measured = measured;
  f.webhook_events_in_window = inWindow;
  f.webhook_events_missing = Math.max(0, stored - arrivals.length);
  f.webhook_signature_failures = c.signatureFailures - before.signatureFailures;
  f.webhook_duplicates = c.duplicates - before.duplicates;
  f.webhook_out_of_order = outOfOrder;
  if (c.malformed > before.malformed) f.webhook_malformed = c.malformed - before.malformed;
  if (c.otherTypes > before.otherTypes) f.webhook_other_types = c.otherTypes - before.otherTypes;
  if (others > 0) f.webhook_events_not_of_this_run = others;
  if (lastAt > 0) f.last_event_after_sending_s = Math.max(0, round1((lastAt - shift - windowEnd) / 1000));
  const [c0, c1] = w.cpu;
  if (c0 && c1) {
    const ms = c1.at - c0.at;
    if (c0.server && c1.server)
      f.server_cpu_window_pct = cpuPct(c1.server.cpuSeconds - c0.server.cpuSeconds, ms);
    f.receiver_cpu_window_pct = cpuPct(
      (c1.self.user + c1.self.system - c0.self.user - c0.self.system) / 1e6,
      ms,
    );
    f.generator_cpu_window_pct = cpuPct(c1.generator.cpuSeconds - c0.generator.cpuSeconds, ms);
  }
}

function rows(run: Run, rate: number, p: PhaseResult): void {
  const o = run.opts;
  const f = p.facts;
  run.row('offered rate', rate, 'msgs/s');
  run.row('messages sent (measured window)', p.rates.sent_per_s ?? 0, 'msgs/s');
  const events = round1(Number(f.webhook_events_in_window ?? 0) / o.duration);
  run.row('webhook events received (measured window)', events, '/s');
  const l = p.latency.webhook;
  if (l)
    run.row(
      'webhook delay, message ts→endpoint p50 / p90 / p99 / max',
      `${l.p50} / ${l.p90} / ${l.p99} / ${l.max}`,
      'ms',
    );
  else run.row('webhook delay, message ts→endpoint', 'no event received');
  run.row(
    `events missing (${o.drain} s quiet) / of messages stored`,
    `${f.webhook_events_missing} / ${f.messages_stored}`,
  );
  run.row(
    'signature failures / duplicates / out of order',
    `${f.webhook_signature_failures} / ${f.webhook_duplicates} / ${f.webhook_out_of_order}`,
  );
  const d = p.latency.deliver;
  if (d) run.row('send→deliver over WebSocket p50 / p99 (for comparison)', `${d.p50} / ${d.p99}`, 'ms');
  if (f.server_cpu_window_pct !== undefined)
    run.row(
      'CPU server / receiver (this process) / load processes',
      `${f.server_cpu_window_pct} / ${f.receiver_cpu_window_pct} / ${f.generator_cpu_window_pct}`,
      '% of a core',
    );
  if (f.server_webhook_delivered !== undefined)
    run.row(
      'server: webhooks delivered / retried / dead-lettered / dropped',
      `${f.server_webhook_delivered} / ${f.server_webhook_retried} / ${f.server_webhook_dead_lettered} / ${f.server_webhook_dropped}`,
    );
  if (f.server_webhook_delay_p99_ms !== undefined)
    run.row(
      'server: parley_webhook_delay_seconds p50 / p99 (bucketed)',
      `${f.server_webhook_delay_p50_ms} / ${f.server_webhook_delay_p99_ms}`,
      'ms',
    );
  if (f.last_event_after_sending_s !== undefined)
    run.row('last event after sending stopped', f.last_event_after_sending_s, 's');

  const sent = p.rates.sent_per_s ?? 0;
  if (events < 0.95 * sent)
    run.notes.push(
      `webhook events (${events}/s) did not keep up with messages (${sent}/s)${events > 0 ? `: the webhook queue grew through the window, so the delays there are mostly queueing; --rate below ${Math.floor(events)} measures the delay at a rate it sustains` : ''}`,
    );
  if (Number(f.webhook_signature_failures) > 0)
    run.notes.push(
      `${f.webhook_signature_failures} webhook requests failed the signature check (answered 401, so the server retried them)`,
    );
  if (Number(f.webhook_events_missing) > 0)
    run.notes.push(
      `${f.webhook_events_missing} stored messages had no event once the receiver had been quiet for ${o.drain} s (see the server's dead letters: \`parley webhooks dlq list\`)`,
    );
  if (Number(f.webhook_out_of_order) > 0)
    run.notes.push(`${f.webhook_out_of_order} events arrived after a later one of their conversation`);
  run.notes.push(
    "webhook delay = the event's arrival at the receiver (this machine's wall clock, when its headers arrived) − the message's ts (the server's Date.now() when it was sequenced, whole ms: up to 1 ms of rounding); the server, the receiver and the load processes share this machine's cores",
  );
}

/** Runs `webhooks`. */
export async function webhooks(run: Run): Promise<void> {
  const o = run.opts;
  const rate = o.rate ?? DEFAULT_WEBHOOKS_RATE;
  const clock = wallClock();
  const secret = randomBytes(24).toString('base64url');
  const receiver = await WebhookReceiver.start(secret, clock);
  const stopTicker = startArrivalTicker(run, RECEIVER_WORKER, receiver);
  let target: Target | null = null;
  try {
    target = await run.parley({
      PARLEY_WEBHOOK_URLS: receiver.url,
      PARLEY_WEBHOOK_SECRET: secret,
      PARLEY_WEBHOOK_EVENTS: 'message.stored',
      // The bench measures webhooks, not the per-user budgets.
      PARLEY_SEND_RATE_PER_SECOND: '1000000',
      PARLEY_SEND_BURST: '1000000',
      PARLEY_FANOUT_RATE_PER_SECOND: '1000000',
      PARLEY_FANOUT_BURST: '1000000',
    });
    const server = target;
    run.log(`webhook receiver ${receiver.url} (PARLEY_WEBHOOK_URLS of the server)`);
    const { users, streams } = pairs(run);
    run.row('online users (pairs)', `${o.users} (${o.users / 2})`);
    await run.connectPhase('connect', server, users);
    const stale = receiver.take().length;
    if (stale > 0) run.notes.push(`${stale} webhook events arrived before the load (not counted)`);

    const metricsUrl = server.metricsUrl;
    const m0 = metricsUrl ? await scrape(metricsUrl) : null;
    const w: Window = {
      startAt: 0,
      before: { ...receiver.counters },
      cpu: [],
      timers: [],
      mark: () => {
        w.cpu.push({
          at: epochNow(),
          server: server.sampleNow(),
          generator: run.generator.sample(),
          self: process.cpuUsage(),
        });
      },
    };
    const phase = await run.loadPhase({
      name: `webhooks @ ${Math.round(rate)}/s`,
      target: server,
      rate,
      warmupS: o.warmup,
      durationS: o.duration,
      drainS: o.drain,
      streams,
      fanout: 1,
      onStart: (startAt) => {
        w.startAt = startAt;
        w.before = { ...receiver.counters };
        const windowStart = startAt + o.warmup * 1000;
        w.timers.push(
          setTimeout(w.mark, windowStart - epochNow()),
          setTimeout(w.mark, windowStart + o.duration * 1000 - epochNow()),
        );
      },
      settle: (rec) => settle(run, receiver, clock, w, rec),
    });
    if (metricsUrl && m0 && !('error' in m0)) {
      const m1 = await scrape(metricsUrl);
      if (!('error' in m1)) Object.assign(phase.facts, serverFigures(m0, m1));
    }
    rows(run, rate, phase);
  } finally {
    stopTicker();
    // The server first: stopped while the receiver still answers, it has nothing to retry.
    await target?.stop();
    await receiver.close();
  }
}
