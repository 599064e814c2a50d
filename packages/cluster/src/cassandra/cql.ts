/**
 * What the parts of `CassandraStore` kept in files of their own (the key directory, the
 * `to_device` queues, the media index) use of the store: its keyspace and query helpers (which
 * apply its consistency levels and report engine failures as `unavailable`), and small helpers
 * shared with the store.
 * @module
 */
import { types as driverTypes, type types } from 'cassandra-driver';

export type Row = types.Row;
export type Query = { query: string; params: unknown[] };

/** The store's keyspace and query helpers, as `CassandraStore` hands them to its parts. */
export interface Cql {
  /** The keyspace, to prefix table names with. */
  readonly ks: string;
  /** The first row of a read (one partition), if any. */
  one(query: string, params: unknown[]): Promise<Row | undefined>;
  /** Every row of a bounded read (one partition, or a LIMIT), paged by the driver. */
  all(query: string, params: unknown[]): Promise<Row[]>;
  /** A plain write. */
  run(query: string, params: unknown[]): Promise<void>;
  /** A conditional write (one Paxos round, at the store's serial consistency). */
  lwt(query: string, params: unknown[]): Promise<types.ResultSet>;
  /** A conditional batch: every statement of one partition, applied all or none. */
  lwtBatch(queries: readonly Query[]): Promise<types.ResultSet>;
  /** An unlogged batch of one partition: one mutation, applied at once. */
  batch(queries: readonly Query[]): Promise<void>;
}

/** A numeric column's value (bigint columns arrive as `Long`), 0 for null. */
export const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

/** A number as a bigint parameter. */
export const long = (n: number) => driverTypes.Long.fromNumber(n);

/**
 * Waits for every write to settle, then rejects with the first failure, if any: a caller that
 * retries or redoes after a failure must never race writes of its previous attempt still in flight.
 */
export async function settled(writes: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(writes);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
}

/** Maps `items` with at most `limit` calls in flight; the results in the order of `items`. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  f: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await settled(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

/** `list` in slices of at most `size`. */
export function chunk<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/**
 * Runs tasks one at a time per key, in call order (different keys at once). Conditional writes
 * of one partition contend in Paxos; queueing this process's own ones leaves contention only
 * between processes.
 */
export class KeyedLanes {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(task);
    const tail: Promise<void> = result.then(
      () => this.release(key, tail),
      () => this.release(key, tail),
    );
    this.tails.set(key, tail);
    return result;
  }

  private release(key: string, tail: Promise<void>): void {
    if (this.tails.get(key) === tail) this.tails.delete(key);
  }
}

/** Waits a random few milliseconds, longer after each failed attempt (conditional write contention). */
export function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * 5 * 2 ** Math.min(attempt, 5);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
