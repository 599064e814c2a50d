/**
 * An optional capability of an inbox store: deleting entries past the retention by a scan. The
 * embedded store offers it and the embedded backend runs it on a timer (`inboxPruneIntervalMs`); a store that
 * expires entries by itself (Cassandra writes every inbox row with a TTL of the retention) does not
 * offer it, and nothing calls a prune that would have to refuse.
 *
 * @module
 */

/**
 * Deletes inbox entries older than a time. The inbox head never decreases (numbers are never
 * reused) and `InboxStore.floor` moves past what was deleted; an entry appended again after it was
 * pruned stays pruned. Conformance: `adapters/conformance/inbox-pruning.suite.ts`.
 */
export interface InboxPruning {
  /** Deletes the entries stored with ts < `beforeTs`; returns how many. */
  prune(beforeTs: number): Promise<number>;
}
