import type {
  ConsumedRecord,
  LogMessage,
  LogSubscription,
  PartitionedLog,
  PartitionHandler,
} from '../../ports/partitioned-log.js';
import { partitionFor } from '../../util/partition-for.js';

/** How long a batch whose handler failed waits before it is handed out again. */
const REDELIVER_AFTER_FAILURE_MS = 100;

interface Member {
  handler: PartitionHandler;
  owned: number[];
  /** Per owned partition, the delivery loop in progress (one call at a time per partition). */
  busy: Map<number, Promise<void>>;
  closed: boolean;
}

interface Group {
  members: Member[];
  /** Next offset to deliver, per partition (everything below was handled). */
  committed: bigint[];
  /** Serializes rebalances. */
  rebalancing: Promise<void>;
}

interface Topic {
  partitions: ConsumedRecord[][];
  groups: Map<string, Group>;
}

/**
 * The partitioned log in one process: for tests of the cluster stages without a broker. Same
 * contract as Kafka's (conformance suite); members of a group share partitions round-robin and
 * every join or leave revokes everything, then assigns anew (Kafka's eager rebalance).
 */
export class MemoryLog implements PartitionedLog {
  private readonly topics = new Map<string, Topic>();
  private readonly departed = new WeakMap<Group, Member[]>();

  /** Creates a topic (no-op when it exists). */
  createTopic(name: string, partitions: number): void {
    if (this.topics.has(name)) return;
    this.topics.set(name, { partitions: Array.from({ length: partitions }, () => []), groups: new Map() });
  }

  async publish(topic: string, messages: readonly LogMessage[]): Promise<void> {
    const t = this.topic(topic);
    const touched = new Set<number>();
    for (const m of messages) {
      const p = partitionFor(m.key, t.partitions.length);
      const list = t.partitions[p]!;
      list.push({
        partition: p,
        offset: BigInt(list.length),
        key: m.key,
        value: Buffer.from(m.value),
        timestamp: Date.now(),
      });
      touched.add(p);
    }
    for (const g of t.groups.values()) for (const p of touched) this.kick(t, g, p);
  }

  async partitionOf(topic: string, key: string): Promise<number> {
    return partitionFor(key, this.topic(topic).partitions.length);
  }

  async consume(topic: string, group: string, handler: PartitionHandler): Promise<LogSubscription> {
    const t = this.topic(topic);
    let g = t.groups.get(group);
    if (!g) {
      g = { members: [], committed: t.partitions.map(() => 0n), rebalancing: Promise.resolve() };
      t.groups.set(group, g);
    }
    const member: Member = { handler, owned: [], busy: new Map(), closed: false };
    const grp = g;
    grp.members.push(member);
    await this.rebalance(t, grp);
    return {
      close: async () => {
        member.closed = true;
        grp.members = grp.members.filter((m) => m !== member);
        this.departed.set(grp, [...(this.departed.get(grp) ?? []), member]);
        await this.rebalance(t, grp);
      },
    };
  }

  private rebalance(t: Topic, g: Group): Promise<void> {
    g.rebalancing = g.rebalancing.then(async () => {
      const everyone = [...g.members];
      // Eager: everyone stops (finishing the call in progress) before anyone gets partitions.
      for (const m of [...everyone, ...this.leavers(g)]) {
        await Promise.allSettled(m.busy.values());
        if (m.owned.length > 0) await m.handler.onRevoked(m.owned);
        m.owned = [];
      }
      everyone.forEach((m, i) => {
        m.owned = t.partitions.map((_, p) => p).filter((p) => p % everyone.length === i);
      });
      for (const m of everyone) if (m.owned.length > 0) await m.handler.onAssigned(m.owned);
      for (let p = 0; p < t.partitions.length; p++) this.kick(t, g, p);
    });
    return g.rebalancing;
  }

  /** Members that left but may still own partitions (their revocation is part of the rebalance). */
  private leavers(g: Group): Member[] {
    return this.departed.get(g)?.splice(0) ?? [];
  }

  /** Delivers a partition's pending records to its owner, one call at a time. */
  private kick(t: Topic, g: Group, p: number): void {
    const owner = g.members.find((m) => m.owned.includes(p) && !m.closed);
    if (!owner || owner.busy.has(p)) return;
    let finished = false;
    let failed = false;
    const run = (async () => {
      try {
        while (!owner.closed && owner.owned.includes(p)) {
          const from = Number(g.committed[p]);
          const batch = t.partitions[p]!.slice(from);
          if (batch.length === 0) break;
          await owner.handler.onRecords(p, batch);
          g.committed[p] = BigInt(from + batch.length);
        }
      } catch {
        // Not committed: handed out again (at least once), after a pause so a failing handler
        // does not spin, as Kafka's consumer retries a failed batch.
        failed = true;
      } finally {
        // In the same synchronous step as the last check: a publish after it finds the loop gone.
        finished = true;
        owner.busy.delete(p);
      }
      if (failed && !owner.closed) setTimeout(() => this.kick(t, g, p), REDELIVER_AFTER_FAILURE_MS).unref();
    })();
    if (!finished) owner.busy.set(p, run);
  }

  private topic(name: string): Topic {
    const t = this.topics.get(name);
    if (!t) throw new Error(`no such topic: ${name}`);
    return t;
  }
}
