/**
 * `group`: G groups of M online members; the first --senders members of each group send at a
 * fixed total rate. Reports deliveries/s, send→deliver latency per member, and send→last-delivery
 * latency per message (the time until the last of the other M − 1 members got it, merged across
 * load processes by the parent).
 * @module
 */
import { sleep } from '../clock.js';
import type { Stream } from '../ipc.js';
import type { Run } from '../run.js';

/** Runs `group`. */
export async function group(run: Run): Promise<void> {
  const o = run.opts;
  const procs = run.cluster.size;
  const members = Array.from({ length: o.groups }, (_, g) =>
    Array.from({ length: o.members }, (_, j) => `${run.runId}-g${g}m${j}`),
  );
  const procOf = (g: number, j: number): number => (g * o.members + j) % procs;
  const users: string[][] = Array.from({ length: procs }, () => []);
  for (let g = 0; g < o.groups; g++)
    for (let j = 0; j < o.members; j++) users[procOf(g, j)]!.push(members[g]![j]!);
  const parley = await run.parley();
  await run.connectPhase('connect', parley, users);

  const created = await run.cluster.all<{ convs: string[] }>((i) => {
    const groups = members
      .map((list, g) => ({ g, list }))
      .filter(({ g }) => procOf(g, 0) === i)
      .map(({ g, list }) => ({ creator: list[0]!, members: list.slice(1), name: `bench ${run.runId} ${g}` }));
    return groups.length > 0 ? { op: 'create-groups', groups } : null;
  });
  const convs: string[] = [];
  const cursor = new Map<number, number>();
  for (let g = 0; g < o.groups; g++) {
    const i = procOf(g, 0);
    const k = cursor.get(i) ?? 0;
    cursor.set(i, k + 1);
    convs[g] = created[i]!.convs[k]!;
  }
  // The "created" system messages fan out to every member first.
  await sleep(1000);

  const streams: Stream[][] = Array.from({ length: procs }, () => []);
  for (let g = 0; g < o.groups; g++)
    for (let j = 0; j < o.senders; j++)
      streams[procOf(g, j)]!.push({ from: members[g]![j]!, conv: convs[g]!, group: g });
  const rate = o.rate ?? 20;
  const main = await run.loadPhase({
    name: `group @ ${rate}/s`,
    target: parley,
    rate,
    warmupS: o.warmup,
    durationS: o.duration,
    drainS: o.drain,
    streams,
    fanout: o.members - 1,
    expected: () => o.members - 1,
  });
  run.row('groups × online members (senders per group)', `${o.groups} × ${o.members} (${o.senders})`);
  run.row('offered rate', rate, 'msgs/s');
  run.row('deliveries', main.rates.delivered_per_s ?? 0, 'deliveries/s');
  for (const [metric, label] of [
    ['reply', 'send→reply'],
    ['deliver', 'send→deliver (each member)'],
    ['last_delivery', 'send→last delivery (per message)'],
  ] as const) {
    const l = main.latency[metric];
    if (l)
      run.row(
        `${label} p50 / p90 / p99 / p99.9 / max`,
        `${l.p50} / ${l.p90} / ${l.p99} / ${l.p999} / ${l.max}`,
        'ms',
      );
  }
  run.row('messages not delivered to every member', main.counters.messages_not_fully_delivered ?? 0);
  run.row('errors', main.counters.errors ?? 0);
  if (main.facts.server_cpu_pct !== undefined)
    run.row('server CPU', main.facts.server_cpu_pct, '% of a core');
  if (main.facts.metrics_event_loop_stall_max_ms !== undefined)
    run.row('server longest event-loop stall', main.facts.metrics_event_loop_stall_max_ms, 'ms');
}
