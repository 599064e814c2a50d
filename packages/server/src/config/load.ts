import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { type Config, type ConfigInput, configSchema, ENV_KEYS } from './schema.js';

/** A configuration problem, with every failure explained, for the CLI to print. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Environment variables under this prefix belong to the test harness, not to the server. */
const RESERVED_ENV_PREFIXES = ['PARLEY_TEST_'];

/** Reads PARLEY_* variables into config keys; an unknown PARLEY_* variable is an error. */
export function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const byEnv = new Map(Object.entries(ENV_KEYS).map(([key, spec]) => [spec.env, { key, ...spec }]));
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('PARLEY_') || raw === undefined) continue;
    if (RESERVED_ENV_PREFIXES.some((p) => name.startsWith(p))) continue;
    const spec = byEnv.get(name);
    if (!spec) {
      problems.push(`unknown environment variable ${name}`);
      continue;
    }
    switch (spec.parse) {
      case 'string':
        out[spec.key] = raw;
        break;
      case 'int': {
        const n = Number(raw);
        if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n))
          problems.push(`${name}: "${raw}" is not an integer`);
        else out[spec.key] = n;
        break;
      }
      case 'bool':
        if (!['true', 'false', '1', '0'].includes(raw))
          problems.push(`${name}: "${raw}" is not true or false`);
        else out[spec.key] = raw === 'true' || raw === '1';
        break;
      case 'list':
        out[spec.key] = raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0);
        break;
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return out;
}

/** Parses and validates; environment values override the file's. */
export function loadConfig(
  options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: ConfigInput } = {},
): Config {
  let fileValues: Record<string, unknown> = {};
  if (options.file) {
    let text: string;
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${options.file}: ${(err as Error).message}`);
    }
    try {
      fileValues = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`config file ${options.file} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof fileValues !== 'object' || fileValues === null || Array.isArray(fileValues)) {
      throw new ConfigError(`config file ${options.file} must hold a JSON object`);
    }
  }
  const merged = { ...fileValues, ...fromEnv(options.env ?? {}), ...(options.overrides ?? {}) };
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(`invalid configuration:\n${z.prettifyError(result.error)}`);
  }
  if (result.data.cassandra && result.data.workers > 1)
    throw new ConfigError(
      'invalid configuration: workers > 1 is for the embedded store; in cluster mode (cassandra set) run one process per core instead, each a full member of the cluster',
    );
  if ((result.data.tlsCertFile === undefined) !== (result.data.tlsKeyFile === undefined))
    throw new ConfigError(
      'invalid configuration: tlsCertFile and tlsKeyFile go together (set both, or neither)',
    );
  return result.data;
}
