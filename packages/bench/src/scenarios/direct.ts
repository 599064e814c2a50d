/**
 * `direct` (and `relay-baseline`): K online users in pairs, both sides of each pair sending 1:1
 * at a fixed total rate; receivers send `delivered` receipts (batched per conversation every
 * --receipt-interval ms, as the SDK does, unless --receipts says otherwise). With the baseline
 * (the default) the relay's and Parley's maximum throughput are found first, then Parley runs at
 * half of its maximum, where its p99 send→deliver latency is the headline figure.
 * @module
 */
import type { Stream } from '../ipc.js';
import type { PhaseResult } from '../model.js';
import { type Run, round1 } from '../run.js';
import type { Target } from '../target.js';

/** The direct conversation id of two users (sorted bytewise, as the protocol says). */
export function dmConv(a: string, b: string): string {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) <= 0 ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

/** Users and streams of the pairs, each pair inside one load process. */
export function pairs(run: Run): { users: string[][]; streams: Stream[][] } {
  const n = run.opts.users / 2;
  const users: string[][] = Array.from({ length: run.cluster.size }, () => []);
  const streams: Stream[][] = Array.from({ length: run.cluster.size }, () => []);
  for (let p = 0; p < n; p++) {
    const w = p % run.cluster.size;
    const a = `${run.runId}-a${p}`;
    const b = `${run.runId}-b${p}`;
    const conv = dmConv(a, b);
    users[w]!.push(a, b);
    streams[w]!.push({ from: a, conv, group: -1 }, { from: b, conv, group: -1 });
  }
  return { users, streams };
}

function latencyRows(run: Run, prefix: string, phase: PhaseResult): void {
  for (const [metric, label] of [
    ['reply', 'send→reply'],
    ['deliver', 'send→deliver'],
  ] as const) {
    const l = phase.latency[metric];
    if (!l) continue;
    run.row(
      `${prefix} ${label} p50 / p90 / p99 / p99.9 / max`,
      `${l.p50} / ${l.p90} / ${l.p99} / ${l.p999} / ${l.max}`,
      'ms',
    );
  }
  run.row(`${prefix} delivered`, phase.rates.delivered_per_s ?? 0, 'msgs/s');
  run.row(`${prefix} errors`, phase.counters.errors ?? 0);
}

async function measured(
  run: Run,
  label: string,
  target: Target,
  streams: Stream[][],
  rate: number,
): Promise<PhaseResult> {
  const o = run.opts;
  return run.loadPhase({
    name: `${label} @ ${Math.round(rate)}/s`,
    target,
    rate,
    warmupS: o.warmup,
    durationS: o.duration,
    drainS: o.drain,
    streams,
    fanout: 1,
  });
}

/** Runs `direct` (relayOnly: `relay-baseline`). */
export async function direct(run: Run, relayOnly: boolean): Promise<void> {
  const o = run.opts;
  const { users, streams } = pairs(run);
  run.row('online users (pairs)', `${o.users} (${o.users / 2})`);
  run.row(
    'delivered receipts',
    o.receipts === 'batched' ? `batched every ${o.receiptInterval} ms per conversation` : o.receipts,
  );
  let relayMax = 0;
  if (relayOnly || o.baseline) {
    const relay = await run.relay();
    await run.connectPhase('relay connect', relay, users);
    const found = await run.findMax('relay', relay, streams, 1);
    relayMax = found.max;
    run.row('relay max throughput (achieved when overloaded)', Math.round(relayMax), 'msgs/s');
    run.row('relay highest offered rate it kept up with', Math.round(found.sustained), 'msgs/s');
    cpuPerMessageRow(run, 'relay at its max', found.atMax);
    if (relayOnly) {
      const rate = o.rate ?? Math.max(1, relayMax / 2);
      latencyRows(run, 'relay', await measured(run, 'relay', relay, streams, rate));
      return;
    }
    await run.closeAll();
    await relay.stop();
  }
  const parley = await run.parley();
  await run.connectPhase('parley connect', parley, users);
  let parleyMax = 0;
  if (o.baseline) {
    const found = await run.findMax('parley', parley, streams, 1);
    parleyMax = found.max;
    run.row('parley max throughput (achieved when overloaded)', Math.round(parleyMax), 'msgs/s');
    run.row('parley highest offered rate it kept up with', Math.round(found.sustained), 'msgs/s');
    cpuPerMessageRow(run, 'parley at its max', found.atMax);
    if (relayMax > 0) run.row('parley / relay throughput', round1((parleyMax / relayMax) * 100), '%');
  }
  const rate = o.rate ?? (parleyMax > 0 ? parleyMax / 2 : 1000);
  const main = await measured(run, 'parley', parley, streams, rate);
  run.row(
    o.rate === undefined && parleyMax > 0 ? 'offered rate (half of parley max)' : 'offered rate',
    Math.round(rate),
    'msgs/s',
  );
  latencyRows(run, 'parley', main);
  const delivered = main.rates.delivered_per_s ?? 0;
  if (delivered < 0.95 * rate)
    run.notes.push(
      `parley did not keep up with ${Math.round(rate)} msgs/s (delivered ${delivered}/s): its latencies there are those of an overloaded server; the short overload probe overstates what it sustains`,
    );
  const m = main.facts;
  if (m.metrics_store_commits_per_s !== undefined)
    run.row(
      'store commits/s, ops per commit (mean)',
      `${m.metrics_store_commits_per_s}, ${m.metrics_store_ops_per_commit_mean}`,
    );
  if (m.server_cpu_pct !== undefined) run.row('server CPU', m.server_cpu_pct, '% of a core');
  cpuPerMessageRow(run, 'parley', main);
  if (m.metrics_event_loop_stall_max_ms !== undefined)
    run.row('server longest event-loop stall', m.metrics_event_loop_stall_max_ms, 'ms');
}

/**
 * Server and load-generator CPU per delivered message in a phase: on shared cores the two add up
 * to at most the machine, so these say what bounds a maximum (and whose cost it is).
 */
function cpuPerMessageRow(run: Run, label: string, phase: PhaseResult | undefined): void {
  const delivered = phase?.rates.delivered_per_s ?? 0;
  const server = phase?.facts.server_cpu_pct;
  const generator = phase?.facts.generator_cpu_pct;
  if (!phase || delivered <= 0 || typeof server !== 'number' || typeof generator !== 'number') return;
  const us = (pct: number): number => Math.round((pct / 100 / delivered) * 1e6 * 10) / 10;
  run.row(
    `${label}: CPU per message, server / load generator`,
    `${us(server)} / ${us(generator)} (${server} % / ${generator} % of a core)`,
    'µs',
  );
}
