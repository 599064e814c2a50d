/**
 * An optional capability of a store: the crash-recovery scan of embedded mode. A store that keeps
 * fan-out marks (`InboxStore.append`'s `fanned`, recorded in the same durable step as the inbox
 * entries) can list the messages stored but not yet fanned out, and `Fanout.recover` redoes them
 * before the server listens. A store that does not offer it (Cassandra: cluster mode's fan-out
 * progress is the fan-out topic's committed offsets) ignores the marks and is not handed to
 * `recover`.
 *
 * @module
 */

/** A conversation's messages whose fan-out to inboxes is not recorded yet (crash recovery). */
export interface UnfannedRange {
  conv: string;
  /** Fan-out is recorded up to and including this seq. */
  fannedSeq: number;
  lastSeq: number;
}

/**
 * Lists the fan-out that a crash interrupted. Marks only move forward: a mark at or below the
 * recorded one changes nothing. Conformance: `adapters/conformance/fanout-recovery.suite.ts`.
 */
export interface FanoutRecovery {
  /** Conversations whose fan-out marks lag their log, to be redone after a crash. */
  unfanned(): Promise<UnfannedRange[]>;
}
