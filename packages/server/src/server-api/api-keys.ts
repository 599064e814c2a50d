import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../ports/logger.js';

/** What a key may call (each call of the server API needs one scope; `*` grants all). */
export const API_SCOPES = ['messages', 'groups', 'read', 'users', 'tokens'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

/** The caller a key stands for. */
export interface ApiCaller {
  name: string;
  scopes: ReadonlySet<ApiScope>;
}

/** The shortest key accepted in the file: 128 bits of base64url. */
const MIN_KEY_LENGTH = 22;

const keyEntry = z
  .object({
    /** Logged with every call the key makes. */
    name: z.string().min(1).max(64),
    /** The key itself, or (better: the file then holds no secret) its SHA-256 in hex. */
    key: z.string().min(MIN_KEY_LENGTH).max(512).optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/i)
      .optional(),
    scopes: z.array(z.enum([...API_SCOPES, '*'])).min(1),
  })
  .strict()
  .refine((e) => (e.key === undefined) !== (e.sha256 === undefined), 'give exactly one of key and sha256');

const keysFile = z.object({ keys: z.array(keyEntry).max(1000) }).strict();

interface KeyRecord extends ApiCaller {
  digest: Buffer;
}

const digestOf = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

/** How often the file's size and time are looked at: rotation takes effect within this. */
const RECHECK_MS = 1_000;

/**
 * The API keys of the server API, read from a JSON file and read again whenever it changes, so
 * keys are added, rotated and revoked without a restart. A file that fails to parse keeps the
 * previous keys (and is logged); a missing file means no key is accepted.
 */
export class ApiKeys {
  private records: KeyRecord[] = [];
  private version = '';
  private checkedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly path: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.refresh();
  }

  /**
   * The caller whose key `presented` is, or null. Every stored digest is compared, in constant
   * time, so neither the answer's time nor its path tells how much of a key matched.
   */
  authenticate(presented: string): ApiCaller | null {
    this.refresh();
    const digest = digestOf(presented);
    let found: KeyRecord | null = null;
    for (const r of this.records) if (timingSafeEqual(r.digest, digest)) found = r;
    return found && { name: found.name, scopes: found.scopes };
  }

  private refresh(): void {
    const now = this.now();
    if (now - this.checkedAt < RECHECK_MS) return;
    this.checkedAt = now;
    let version: string;
    try {
      const s = statSync(this.path);
      version = `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      if (this.version !== 'missing')
        this.log.warn({ path: this.path }, 'server API keys file missing: no key is accepted');
      this.version = 'missing';
      this.records = [];
      return;
    }
    if (version === this.version) return;
    try {
      this.records = parseKeys(readFileSync(this.path, 'utf8'));
      this.version = version;
      this.log.info({ path: this.path, keys: this.records.map((r) => r.name) }, 'server API keys loaded');
    } catch (err) {
      this.version = version;
      this.log.error(
        { path: this.path, err: String(err) },
        'server API keys file invalid: keeping the previous keys',
      );
    }
  }
}

function parseKeys(text: string): KeyRecord[] {
  const file = keysFile.parse(JSON.parse(text));
  return file.keys.map((e) => ({
    name: e.name,
    digest: e.key !== undefined ? digestOf(e.key) : Buffer.from(e.sha256!, 'hex'),
    scopes: new Set(e.scopes.includes('*') ? API_SCOPES : (e.scopes as ApiScope[])),
  }));
}
