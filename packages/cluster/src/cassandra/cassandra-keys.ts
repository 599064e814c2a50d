/**
 * The `KeyDirectory` on Cassandra (tables `device_keys` and `one_time_prekeys`, see `schema.ts`).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { ParleyError } from '@parley/server/domain/errors';
import {
  type ClaimedBundle,
  type KeyDirectory,
  type KeyUpload,
  MAX_ONE_TIME_PREKEYS,
  type PublicPrekey,
} from '@parley/server/ports/key-directory';
import { type Cql, KeyedLanes, long, num, type Row } from './cql.js';

/** One-time prekeys a claim reads, to try them in random order (concurrent claims then rarely collide). */
const CLAIM_CANDIDATES = 8;
/** Reads of candidates per device and claim; past them the bundle goes without a one-time prekey. */
const CLAIM_ROUNDS = 8;
/** Compare-and-set attempts of an upload against concurrent uploads of the same device. */
const CAS_ATTEMPTS = 16;

/**
 * The key directory on Cassandra. Every write to `device_keys` is conditional on the device's
 * `gen` (compare and set), so uploads of one device are ordered among themselves whatever the
 * clocks. One-time prekeys live in the partition of their device and gen: they are inserted
 * `IF NOT EXISTS` (a key id already stored is ignored) and claimed by a conditional delete of the
 * very key read, so a key is handed out by exactly one winning Paxos round, whichever process
 * claims. Claims of one device in this process queue behind each other (Paxos contention stays
 * between processes). The `MAX_ONE_TIME_PREKEYS` bound is checked against a read before the
 * insert: concurrent uploads of one device may pass it by the size of one upload.
 */
export class CassandraKeyDirectory implements KeyDirectory {
  private readonly claims = new KeyedLanes();

  constructor(private readonly cql: Cql) {}

  async upload(user: string, device: string, keys: KeyUpload): Promise<number> {
    const gen = await this.writeBundle(user, device, keys);
    if (keys.oneTimePrekeys !== undefined && keys.oneTimePrekeys.length > 0)
      await this.addPrekeys(user, device, gen, keys.oneTimePrekeys);
    return this.countOf(user, device, gen);
  }

  async claim(user: string): Promise<ClaimedBundle[]> {
    const rows = await this.cql.all(
      `SELECT device, gen, identity_key, signed_key_id, signed_key, signed_signature
       FROM ${this.cql.ks}.device_keys WHERE user = ?`,
      [user],
    );
    const ready = rows.filter((r) => r.identity_key !== null && r.signed_key !== null && r.gen !== null);
    return Promise.all(
      ready.map(async (r) => {
        const device = r.device as string;
        const b: ClaimedBundle = {
          device,
          identityKey: r.identity_key as string,
          signedPrekey: {
            keyId: num(r.signed_key_id),
            key: r.signed_key as string,
            signature: r.signed_signature as string,
          },
        };
        const gen = r.gen as string;
        const k = await this.claims.run(`${user}\u0000${device}`, () => this.takePrekey(user, device, gen));
        if (k) b.oneTimePrekey = k;
        return b;
      }),
    );
  }

  async count(user: string, device: string): Promise<number> {
    const gen = (await this.bundleRow(user, device))?.gen;
    return typeof gen === 'string' ? this.countOf(user, device, gen) : 0;
  }

  async devicesWithKeys(user: string): Promise<Set<string>> {
    const rows = await this.cql.all(
      `SELECT device, identity_key FROM ${this.cql.ks}.device_keys WHERE user = ?`,
      [user],
    );
    return new Set(rows.filter((r) => r.identity_key !== null).map((r) => r.device as string));
  }

  /** Deletes the device's row (conditionally, ordered with uploads), then its prekeys' partition. */
  async remove(user: string, device: string): Promise<void> {
    const gen = (await this.bundleRow(user, device))?.gen;
    await this.cql.lwt(`DELETE FROM ${this.cql.ks}.device_keys WHERE user = ? AND device = ? IF EXISTS`, [
      user,
      device,
    ]);
    if (typeof gen === 'string') await this.dropPrekeys(user, device, gen);
  }

  private bundleRow(user: string, device: string): Promise<Row | undefined> {
    return this.cql.one(
      `SELECT gen, identity_key FROM ${this.cql.ks}.device_keys WHERE user = ? AND device = ?`,
      [user, device],
    );
  }

  /**
   * Writes the identity key and signed prekey of an upload, compare-and-set on the gen read; a new
   * identity (another than the stored one) gets a new gen and loses its signed prekey unless the
   * upload brings one, and the old gen's prekeys are deleted. Returns the gen the device's
   * one-time prekeys now belong to (a first upload makes one).
   */
  private async writeBundle(user: string, device: string, keys: KeyUpload): Promise<string> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const row = await this.bundleRow(user, device);
      const oldGen = typeof row?.gen === 'string' ? row.gen : null;
      const stored = typeof row?.identity_key === 'string' ? row.identity_key : null;
      const replace = keys.identityKey !== undefined && stored !== null && keys.identityKey !== stored;
      const gen = oldGen === null || replace ? randomBytes(8).toString('hex') : oldGen;
      const change = bundleChange(keys, replace);
      if (gen === oldGen && change.sets.length === 0) return gen;
      const rs = await this.cql.lwt(
        `UPDATE ${this.cql.ks}.device_keys SET ${['gen = ?', ...change.sets].join(', ')}
         WHERE user = ? AND device = ? IF gen = ${oldGen === null ? 'null' : '?'}`,
        [gen, ...change.params, user, device, ...(oldGen === null ? [] : [oldGen])],
      );
      if (!rs.wasApplied()) continue;
      if (replace && oldGen !== null) await this.dropPrekeys(user, device, oldGen);
      return gen;
    }
    throw new ParleyError('unavailable', 'keys busy; retry');
  }

  /**
   * Adds the one-time prekeys not stored yet, up to `MAX_ONE_TIME_PREKEYS`, in one conditional
   * batch `IF NOT EXISTS`; when some key id was stored meanwhile, again without those.
   */
  private async addPrekeys(
    user: string,
    device: string,
    gen: string,
    list: readonly PublicPrekey[],
  ): Promise<void> {
    const have = new Set((await this.prekeyRows(user, device, gen, 'key_id')).map((r) => num(r.key_id)));
    let todo: PublicPrekey[] = [];
    for (const k of list) {
      if (have.size >= MAX_ONE_TIME_PREKEYS) break;
      if (have.has(k.keyId)) continue;
      have.add(k.keyId);
      todo.push(k);
    }
    for (let attempt = 0; attempt < 3 && todo.length > 0; attempt++) {
      const rs = await this.cql.lwtBatch(
        todo.map((k) => ({
          query: `INSERT INTO ${this.cql.ks}.one_time_prekeys (user, device, gen, key_id, key) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS`,
          params: [user, device, gen, long(k.keyId), k.key],
        })),
      );
      if (rs.wasApplied()) return;
      const taken = new Set(
        (
          await this.cql.all(
            `SELECT key_id FROM ${this.cql.ks}.one_time_prekeys WHERE user = ? AND device = ? AND gen = ? AND key_id IN ?`,
            [user, device, gen, todo.map((k) => long(k.keyId))],
          )
        ).map((r) => num(r.key_id)),
      );
      todo = todo.filter((k) => !taken.has(k.keyId));
    }
    if (todo.length > 0) throw new ParleyError('unavailable', 'keys busy; retry');
  }

  /**
   * Takes one of the device's one-time prekeys: reads the first few, and tries them in random
   * order with a conditional delete of the key read (`IF key = ?`: a key re-uploaded under the same
   * id meanwhile is not the one read). Undefined when none is left or none could be won.
   */
  private async takePrekey(user: string, device: string, gen: string): Promise<PublicPrekey | undefined> {
    for (let round = 0; round < CLAIM_ROUNDS; round++) {
      const candidates = (await this.prekeyRows(user, device, gen, 'key_id, key', CLAIM_CANDIDATES)).map(
        (r) => ({
          keyId: num(r.key_id),
          key: r.key as string,
        }),
      );
      if (candidates.length === 0) return undefined;
      for (const c of shuffled(candidates)) {
        const rs = await this.cql.lwt(
          `DELETE FROM ${this.cql.ks}.one_time_prekeys WHERE user = ? AND device = ? AND gen = ? AND key_id = ? IF key = ?`,
          [user, device, gen, long(c.keyId), c.key],
        );
        if (rs.wasApplied()) return c;
      }
    }
    return undefined;
  }

  private prekeyRows(
    user: string,
    device: string,
    gen: string,
    columns: string,
    limit?: number,
  ): Promise<Row[]> {
    return this.cql.all(
      `SELECT ${columns} FROM ${this.cql.ks}.one_time_prekeys WHERE user = ? AND device = ? AND gen = ?${
        limit === undefined ? '' : ` LIMIT ${limit}`
      }`,
      [user, device, gen],
    );
  }

  private async countOf(user: string, device: string, gen: string): Promise<number> {
    const r = await this.cql.one(
      `SELECT COUNT(*) AS n FROM ${this.cql.ks}.one_time_prekeys WHERE user = ? AND device = ? AND gen = ?`,
      [user, device, gen],
    );
    return num(r?.n);
  }

  /** Deletes a gen's prekeys (another partition than the current gen's: it cannot shadow those). */
  private async dropPrekeys(user: string, device: string, gen: string): Promise<void> {
    await this.cql.run(
      `DELETE FROM ${this.cql.ks}.one_time_prekeys WHERE user = ? AND device = ? AND gen = ?`,
      [user, device, gen],
    );
  }
}

/** The columns an upload sets besides `gen`: its identity key and signed prekey (cleared by a new identity). */
function bundleChange(keys: KeyUpload, replace: boolean): { sets: string[]; params: unknown[] } {
  const sets: string[] = [];
  const params: unknown[] = [];
  if (keys.identityKey !== undefined) {
    sets.push('identity_key = ?');
    params.push(keys.identityKey);
  }
  const spk = keys.signedPrekey;
  if (spk !== undefined) {
    sets.push('signed_key_id = ?', 'signed_key = ?', 'signed_signature = ?');
    params.push(long(spk.keyId), spk.key, spk.signature);
  } else if (replace) sets.push('signed_key_id = null', 'signed_key = null', 'signed_signature = null');
  return { sets, params };
}

function shuffled<T>(list: readonly T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
