/**
 * The in-memory `MediaIndex`: the reference behaviour `media-index.suite.ts` pins down, for domain
 * tests. Not durable.
 * @module
 */
import { MAX_MEDIA_REFERENCES, type MediaIndex, type MediaRecord } from '../../ports/media-index.js';

interface Entry {
  record: MediaRecord;
  /** conv → when a message of it last listed the media. */
  convs: Map<string, number>;
}

const copy = (r: MediaRecord): MediaRecord => {
  const out: MediaRecord = {
    id: r.id,
    owner: r.owner,
    size: r.size,
    contentType: r.contentType,
    createdAt: r.createdAt,
  };
  if (r.lastReferencedAt !== undefined) out.lastReferencedAt = r.lastReferencedAt;
  return out;
};

/** The media index, in memory. */
export class MemoryMediaIndex implements MediaIndex {
  private readonly entries = new Map<string, Entry>();

  async create(record: Omit<MediaRecord, 'lastReferencedAt'>): Promise<void> {
    this.entries.set(record.id, { record: copy(record), convs: new Map() });
  }

  async get(id: string): Promise<MediaRecord | null> {
    const e = this.entries.get(id);
    return e ? copy(e.record) : null;
  }

  async reference(id: string, conv: string, ts: number): Promise<void> {
    const e = this.entries.get(id);
    if (!e) return;
    e.convs.set(conv, Math.max(e.convs.get(conv) ?? ts, ts));
    if (e.convs.size > MAX_MEDIA_REFERENCES) e.convs.delete(earliest(e.convs));
    const last = e.record.lastReferencedAt;
    if (last === undefined || last < ts) e.record.lastReferencedAt = ts;
  }

  async conversations(id: string): Promise<string[]> {
    return [...(this.entries.get(id)?.convs.keys() ?? [])];
  }

  async collectable(
    unreferencedBefore: number,
    referencedBefore: number,
    limit: number,
  ): Promise<MediaRecord[]> {
    const records = [...this.entries.values()].map((e) => e.record);
    const unreferenced = records
      .filter((r) => r.lastReferencedAt === undefined && r.createdAt < unreferencedBefore)
      .sort((a, b) => a.createdAt - b.createdAt);
    const stale = records
      .filter((r) => r.lastReferencedAt !== undefined && r.lastReferencedAt < referencedBefore)
      .sort((a, b) => a.lastReferencedAt! - b.lastReferencedAt!);
    return [...unreferenced, ...stale].slice(0, limit).map(copy);
  }

  async delete(id: string): Promise<void> {
    this.entries.delete(id);
  }
}

/** The conversation referenced longest ago (ties: the lowest id), which goes past the limit. */
function earliest(convs: Map<string, number>): string {
  let out: [string, number] | undefined;
  for (const c of convs) if (!out || c[1] < out[1] || (c[1] === out[1] && c[0] < out[0])) out = c;
  return out![0];
}
