/**
 * `connections`: N idle authenticated connections keeping heartbeats (a `ping` frame every
 * `heartbeat_ms` from the connect reply). Reports the connect rate, the server's RSS per
 * connection ((RSS after − RSS before) / N, summed over the server's processes), and the server's
 * CPU at idle over a window of --duration seconds.
 * @module
 */
import { sleep } from '../clock.js';
import type { Run } from '../run.js';

const MIB = 1024 * 1024;

/** Runs `connections`. */
export async function connections(run: Run): Promise<void> {
  const o = run.opts;
  const users = Array.from({ length: o.connections }, (_, i) => `${run.runId}-c${i}`);
  const parley = await run.parley();
  await sleep(1000);
  await parley.beginWindow(o.scrapeInterval);
  const before = parley.sampleNow();
  const connect = await run.connectPhase('connect', parley, run.spread(users));
  // Let the server finish what the connects started (presence, buffers) before measuring memory.
  await sleep(2000);
  const after = parley.sampleNow();
  const idle = await run.phase('idle', parley, 'ping', async () => {
    await sleep(o.duration * 1000);
    return { durationS: o.duration };
  });
  const figures = await parley.endWindow('connections');
  const opened = Number(connect.facts.opened ?? 0);
  const c = connect.latency.connect;
  run.row('connections requested / open', `${o.connections} / ${opened}`);
  run.row('connect rate', connect.rates.connects_per_s ?? 0, 'connections/s');
  if (c) run.row('connect latency p50 / p99 / max', `${c.p50} / ${c.p99} / ${c.max}`, 'ms');
  if (before && after && opened > 0) {
    run.row(
      'server RSS before / after',
      `${(before.rssBytes / MIB).toFixed(1)} / ${(after.rssBytes / MIB).toFixed(1)}`,
      'MiB',
    );
    run.row('server RSS per connection', Math.round((after.rssBytes - before.rssBytes) / opened), 'bytes');
    connect.facts.rss_per_connection_bytes = Math.round((after.rssBytes - before.rssBytes) / opened);
  } else if (figures) {
    run.row(
      'server RSS before / after (from /metrics)',
      `${(figures.rss_start_bytes! / MIB).toFixed(1)} / ${(figures.rss_end_bytes! / MIB).toFixed(1)}`,
      'MiB',
    );
    if (opened > 0)
      run.row(
        'server RSS per connection (from /metrics)',
        Math.round((figures.rss_end_bytes! - figures.rss_start_bytes!) / opened),
        'bytes',
      );
  }
  if (idle.facts.server_cpu_pct !== undefined)
    run.row(`server CPU at idle (${o.duration} s)`, idle.facts.server_cpu_pct, '% of a core');
  const ping = idle.latency.ping;
  if (ping) run.row('heartbeat ping→reply p50 / p99 / max', `${ping.p50} / ${ping.p99} / ${ping.max}`, 'ms');
  run.row('heartbeats in the idle window', idle.counters.pings ?? 0);
  run.row('connections lost while idle', idle.counters.errors ?? 0);
  run.row(
    'reached with',
    `${run.cluster.size} load processes, ${run.sourceAddrs.length || 'OS-chosen'} source addresses, ${after?.pids.length ?? '?'} server processes`,
  );
  if (figures?.event_loop_stall_max_ms !== undefined)
    run.row('server longest event-loop stall', figures.event_loop_stall_max_ms, 'ms');
}
