/**
 * The real engines the cluster adapters are tested against, as `npm run engines:up` announces
 * them in `engines/.run/env` (`PARLEY_TEST_*`). `.ci/run` starts the engines and loads that file
 * before `npm test`; a developer without them gets these tests reported as skipped, with the reason.
 * @module
 */
import { test } from 'node:test';

/** The engines, by the variable that addresses each. */
export const ENGINE_VARIABLES = {
  redis: 'PARLEY_TEST_REDIS',
  cassandra: 'PARLEY_TEST_CASSANDRA',
  kafka: 'PARLEY_TEST_KAFKA',
  s3: 'PARLEY_TEST_S3',
} as const;

export type Engine = keyof typeof ENGINE_VARIABLES;

/** The engine's address, or undefined when it is not running here. */
export function engineAddress(engine: Engine): string | undefined {
  const value = process.env[ENGINE_VARIABLES[engine]];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The engine's address; when it is not running, registers one skipped test titled `title` that
 * says how to start it, and returns undefined (the caller then registers nothing else).
 */
export function requireEngine(engine: Engine, title: string): string | undefined {
  const address = engineAddress(engine);
  if (address === undefined)
    test(title, {
      skip: `${ENGINE_VARIABLES[engine]} is not set: start the engines with \`npm run engines:up\` and load engines/.run/env (set -a; . engines/.run/env; set +a)`,
    }, () => {});
  return address;
}
