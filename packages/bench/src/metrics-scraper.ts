/**
 * Reads a Parley server's Prometheus /metrics and derives the figures the report shows: memory and
 * CPU of the process, the longest event-loop stall, store commits (count, mean and p99 duration,
 * operations per commit) and messages stored, as differences between two scrapes.
 * @module
 */

/** One scrape: every sample by metric name (label sets kept as raw text). */
export interface Scrape {
  at: number;
  samples: Map<string, { labels: string; value: number }[]>;
}

/** Parses the Prometheus text exposition format (comments and types are skipped). */
export function parsePrometheus(text: string, at = Date.now()): Scrape {
  const samples = new Map<string, { labels: string; value: number }[]>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (Number.isNaN(value)) continue;
    let list = samples.get(m[1]!);
    if (!list) {
      list = [];
      samples.set(m[1]!, list);
    }
    list.push({ labels: m[2] ?? '', value });
  }
  return { at, samples };
}

/** Fetches and parses /metrics; undefined (with the reason) when it cannot be read. */
export async function scrape(url: string, timeoutMs = 5000): Promise<Scrape | { error: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return { error: `GET ${url}: HTTP ${res.status}` };
    return parsePrometheus(await res.text());
  } catch (err) {
    return { error: `GET ${url}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function samplesOf(s: Scrape, name: string): { labels: string; value: number }[] {
  return s.samples.get(name) ?? [];
}

/** Sum of a metric over its label sets (several server processes may each report one). */
export function sum(s: Scrape, name: string): number {
  return samplesOf(s, name).reduce((a, x) => a + x.value, 0);
}

/** Max of a metric over its label sets. */
export function max(s: Scrape, name: string): number {
  return samplesOf(s, name).reduce((a, x) => Math.max(a, x.value), 0);
}

/** Cumulative bucket counts of a histogram, by upper bound, summed over other labels. */
function buckets(s: Scrape, name: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const x of s.samples.get(`${name}_bucket`) ?? []) {
    const le = /le="([^"]+)"/.exec(x.labels)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    out.set(bound, (out.get(bound) ?? 0) + x.value);
  }
  return out;
}

/**
 * A quantile of the observations between two scrapes of a histogram, interpolated linearly
 * inside the bucket, as Prometheus's histogram_quantile does (NaN without observations).
 */
export function quantileBetween(a: Scrape, b: Scrape, name: string, q: number): number {
  const before = buckets(a, name);
  const after = buckets(b, name);
  const bounds = [...after.keys()].sort((x, y) => x - y);
  const counts = bounds.map((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return Number.NaN;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i]! >= rank) {
      const hi = bounds[i]!;
      const lo = i === 0 ? 0 : bounds[i - 1]!;
      const below = i === 0 ? 0 : counts[i - 1]!;
      if (hi === Number.POSITIVE_INFINITY) return lo;
      const inBucket = counts[i]! - below;
      return inBucket > 0 ? lo + ((hi - lo) * (rank - below)) / inBucket : hi;
    }
  }
  return bounds.at(-2) ?? Number.NaN;
}

/**
 * The report's server figures between two scrapes; `stallMaxS` is the longest event-loop stall
 * seen by any scrape in between (the gauge resets at every scrape).
 */
export function deriveServerFigures(a: Scrape, b: Scrape, stallMaxS: number): Record<string, number> {
  const dt = (b.at - a.at) / 1000;
  const d = (name: string): number => sum(b, name) - sum(a, name);
  const commits = d('parley_store_commit_seconds_count');
  const ops = d('parley_store_batch_operations_count');
  const out: Record<string, number> = {
    rss_start_bytes: sum(a, 'parley_process_resident_memory_bytes'),
    rss_end_bytes: sum(b, 'parley_process_resident_memory_bytes'),
    cpu_seconds: round(d('parley_process_cpu_seconds_total'), 3),
    cpu_pct: dt > 0 ? round((d('parley_process_cpu_seconds_total') / dt) * 100, 1) : 0,
    event_loop_stall_max_ms: round(
      Math.max(stallMaxS, max(b, 'parley_event_loop_delay_max_seconds')) * 1000,
      1,
    ),
    messages_stored: d('parley_messages_stored_total'),
    store_commits: commits,
    store_commits_per_s: dt > 0 ? round(commits / dt, 1) : 0,
    store_commit_mean_ms: commits > 0 ? round((d('parley_store_commit_seconds_sum') / commits) * 1000, 3) : 0,
    store_commit_p99_ms: round(quantileBetween(a, b, 'parley_store_commit_seconds', 0.99) * 1000, 3),
    store_ops_per_commit_mean: ops > 0 ? round(d('parley_store_batch_operations_sum') / ops, 2) : 0,
    store_ops_per_commit_p99: round(quantileBetween(a, b, 'parley_store_batch_operations', 0.99), 1),
    send_reply_server_p99_ms: round(quantileBetween(a, b, 'parley_send_reply_seconds', 0.99) * 1000, 3),
    connections_end: sum(b, 'parley_connections'),
  };
  for (const [k, v] of Object.entries(out)) if (Number.isNaN(v)) delete out[k];
  return out;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
