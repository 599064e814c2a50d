/**
 * `resume`: N clients are offline while M messages each arrive for them (filled fast by fan-out:
 * groups of up to --group-size offline members, each receiving M messages from one online
 * sender; the fill is done when every sender got its own copies back), then all N reconnect at
 * once and sync with paging until `more` is false. Reports the time until all are synced and the
 * server's peak RSS during the reconnect (sampled every 100 ms).
 * @module
 */
import { epochNow, sleep } from '../clock.js';
import type { Stream } from '../ipc.js';
import { type Run, round1 } from '../run.js';

const MIB = 1024 * 1024;

/** Runs `resume`. */
export async function resume(run: Run): Promise<void> {
  const o = run.opts;
  const procs = run.cluster.size;
  const groups = Math.ceil(o.clients / o.groupSize);
  const clients = Array.from({ length: o.clients }, (_, i) => `${run.runId}-r${i}`);
  const senders = Array.from({ length: groups }, (_, g) => `${run.runId}-s${g}`);
  const parley = await run.parley();
  const senderProcs = run.spread(senders);
  await run.connectPhase('senders connect', parley, senderProcs);
  const procOfSender = (g: number): number => g % procs;

  const created = await run.cluster.all<{ convs: string[] }>((i) => {
    const list = senders
      .map((s, g) => ({ s, g }))
      .filter(({ g }) => procOfSender(g) === i)
      .map(({ s, g }) => ({
        creator: s,
        members: clients.slice(g * o.groupSize, (g + 1) * o.groupSize),
        name: `resume ${run.runId} ${g}`,
      }));
    return list.length > 0 ? { op: 'create-groups', groups: list } : null;
  });
  const streams: Stream[][] = Array.from({ length: procs }, () => []);
  const seen = new Map<number, number>();
  for (let g = 0; g < groups; g++) {
    const i = procOfSender(g);
    const k = seen.get(i) ?? 0;
    seen.set(i, k + 1);
    streams[i]!.push({ from: senders[g]!, conv: created[i]!.convs[k]!, group: g });
  }

  const fill = await run.phase('fill', parley, 'reply', async (rec) => {
    const started = epochNow();
    await run.cluster.all((i) =>
      streams[i]!.length > 0
        ? { op: 'fill', streams: streams[i]!, count: o.missed, window: o.fillWindow }
        : null,
    );
    // Replies come when messages are stored; the senders' own copies come once inboxes are written.
    await Promise.all(
      senders.map(async (user, g) => {
        const r = await run.cluster.call<{ copies: number }>(procOfSender(g), {
          op: 'await-copies',
          user,
          count: o.missed,
          timeoutMs: 600_000,
        });
        if (r.copies < o.missed)
          run.notes.push(`fill: sender ${g} saw ${r.copies} of ${o.missed} own copies`);
      }),
    );
    const seconds = (epochNow() - started) / 1000;
    rec.facts.seconds = Math.round(seconds * 1000) / 1000;
    rec.facts.messages = groups * o.missed;
    rec.facts.inbox_entries = o.clients * o.missed;
    return {
      rates: {
        messages_per_s: round1((groups * o.missed) / seconds),
        inbox_entries_per_s: round1((o.clients * o.missed) / seconds),
      },
    };
  });
  await sleep(1000);

  const clientProcs = run.spread(clients);
  parley.startSampling(100);
  await parley.beginWindow(o.scrapeInterval);
  let startAt = 0;
  const results: ({ synced: number; failed: number; lastSyncedAt: number } | null)[] = [];
  const phase = await run.phase('reconnect + sync', parley, 'synced', async (rec) => {
    // Tokens are minted before startAt, in the load processes (≈ 50 µs each).
    startAt = epochNow() + 1000 + (o.clients / procs) * 0.1;
    results.push(
      ...(await run.cluster.all<{ synced: number; failed: number; lastSyncedAt: number }>((i) =>
        clientProcs[i]!.length > 0
          ? {
              op: 'resync',
              url: parley.url,
              users: clientProcs[i]!,
              concurrency: o.reconnectConcurrency,
              page: o.page,
              startAt,
            }
          : null,
      )),
    );
    const last = Math.max(...results.map((r) => r?.lastSyncedAt ?? 0));
    rec.facts.all_synced_s = last > 0 ? Math.round(last - startAt) / 1000 : -1;
    return undefined;
  });
  parley.startSampling(o.sampleMs);
  await parley.endWindow('reconnect + sync');

  const synced = results.reduce((n, r) => n + (r?.synced ?? 0), 0);
  const events = phase.counters.synced_events ?? 0;
  const expectedEvents = o.clients * (o.missed + 1);
  run.row('clients, missed messages each', `${o.clients}, ${o.missed}`);
  run.row(
    'fill',
    `${groups} groups of ≤ ${o.groupSize}: ${fill.facts.inbox_entries} inbox entries in ${fill.facts.seconds} s`,
  );
  run.row('time until all synced', phase.facts.all_synced_s ?? -1, 's');
  const s = phase.latency.synced;
  if (s)
    run.row(
      'per-client time to synced p50 / p90 / p99 / max',
      `${s.p50} / ${s.p90} / ${s.p99} / ${s.max}`,
      'ms',
    );
  const c = phase.latency.connect;
  if (c) run.row('reconnect latency p50 / p99 / max', `${c.p50} / ${c.p99} / ${c.max}`, 'ms');
  run.row('clients synced / failed', `${synced} / ${o.clients - synced}`);
  run.row('events synced / expected', `${events} / ${expectedEvents}`);
  run.row('sync pages', phase.counters.sync_pages ?? 0);
  if (phase.facts.server_rss_peak_bytes !== undefined) {
    run.row(
      'server RSS before reconnect',
      Number((Number(phase.facts.server_rss_start_bytes) / MIB).toFixed(1)),
      'MiB',
    );
    run.row(
      'server peak RSS during reconnect',
      Number((Number(phase.facts.server_rss_peak_bytes) / MIB).toFixed(1)),
      'MiB',
    );
  }
  if (phase.facts.server_cpu_pct !== undefined)
    run.row('server CPU during reconnect', phase.facts.server_cpu_pct, '% of a core');
  run.row('errors', phase.counters.errors ?? 0);
  if (events < expectedEvents)
    run.notes.push(`resume: ${expectedEvents - events} events fewer synced than expected`);
}
