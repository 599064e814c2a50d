import type { PartitionEpochs } from '../../ports/epoch-fencing.js';

/** Partition epochs in one process's memory (cluster mode on in-process adapters). */
export class MemoryPartitionEpochs implements PartitionEpochs {
  private readonly stages = new Map<string, { last: number; held: Map<number, number> }>();

  async take(stage: string, partitions: readonly number[], _owner: string): Promise<number> {
    const s = this.stages.get(stage) ?? { last: 0, held: new Map<number, number>() };
    this.stages.set(stage, s);
    const epoch = ++s.last;
    for (const p of partitions) if ((s.held.get(p) ?? 0) < epoch) s.held.set(p, epoch);
    return epoch;
  }

  async held(stage: string): Promise<ReadonlyMap<number, number>> {
    return new Map(this.stages.get(stage)?.held);
  }
}
