#!/usr/bin/env node
// Runs every test file of the workspace with node:test (through tsx, so tests run on the
// TypeScript sources). Node 20's `--test` does not expand globs, so the files are found here.
// Tests run with the `parley-source` export condition: an import of a workspace package such as
// `@parley/server/ports/inbox-store` or `@parley/cluster` then resolves to its sources (see the
// packages' `exports`), as relative imports do, and not to its `dist/`. Otherwise a test would load
// two copies of a module (one from src, one from dist) and `instanceof` between them would fail.
// Without the condition (`npm start`, the built CLI), the same imports resolve to `dist/`.
// `--fast` leaves out the slow tests (files named *.slow.test.ts: crash cycles, large fan-outs,
// multi-process clusters). The fast files run two at a time; the slow ones run after them, one at
// a time, because they load the machine and some stop shared engines (Kafka) on purpose.
// Any other argument filters files by substring, e.g. `npm test -- gateway`. The behaviour suites
// (messaging, groups, receipts, presence and typing, authorization, budgets, server API, TLS, before-send hook) then run again with
// PARLEY_TEST_MODE=workers and cluster-memory.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const fast = args.includes('--fast');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

// Build first: packages without the source condition (`@parley/protocol`, `@parley/sdk`) are
// imported from their `dist/`, and some tests run the built CLI. The TypeScript build is
// incremental and takes a moment when nothing changed.
const build = spawnSync(
  process.execPath,
  [
    join(root, 'node_modules/typescript/bin/tsc'),
    '-b',
    'packages/protocol',
    'packages/sdk',
    'packages/server-client',
    'packages/server',
    'packages/cluster',
  ],
  {
    stdio: 'inherit',
    cwd: root,
  },
);
if (build.status !== 0) process.exit(build.status ?? 1);
// Parley Web, which the server serves and the browser tests load.
const web = spawnSync('npm', ['run', 'build', '-w', '@parley/web', '--silent'], {
  stdio: 'inherit',
  cwd: root,
});
if (web.status !== 0) process.exit(web.status ?? 1);

let files = walk(join(root, 'packages'), []).sort();
if (fast) files = files.filter((f) => !f.endsWith('.slow.test.ts'));
if (filters.length > 0) files = files.filter((f) => filters.some((s) => relative(root, f).includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const NODE_ARGS = ['--conditions=parley-source', '--import', 'tsx', '--test', '--test-reporter=spec'];
const slow = files.filter((f) => f.endsWith('.slow.test.ts'));
const quick = files.filter((f) => !f.endsWith('.slow.test.ts'));
const runFiles = (list, concurrency) =>
  list.length === 0
    ? 0
    : (spawnSync(process.execPath, [...NODE_ARGS, `--test-concurrency=${concurrency}`, ...list], {
        stdio: 'inherit',
        cwd: root,
        env: { ...process.env, NODE_ENV: 'test' },
      }).status ?? 1);
const quickStatus = runFiles(quick, 2);
const slowStatus = runFiles(slow, 1);

// The behaviour suites run again in every other deployment: the same client-visible behaviour
// whatever the adapters (test/deployments.ts): workers, cluster on in-process adapters, and with
// the engines up cluster on Cassandra, Kafka and Redis.
const BEHAVIOUR_SUITES = [
  'messaging',
  'groups',
  'receipts',
  'presence-typing',
  'authorization-matrix',
  'budgets',
  'push',
  'keys',
  'media',
  'e2ee',
  'server-api',
  'tls',
  'before-send',
  'webhooks',
].map((name) => join(root, 'packages/server/test', `${name}.test.ts`));
const behaviour = files.filter((f) => BEHAVIOUR_SUITES.includes(f));
const onEngines = ['PARLEY_TEST_CASSANDRA', 'PARLEY_TEST_KAFKA', 'PARLEY_TEST_REDIS'].every(
  (v) => process.env[v],
);
const modes = ['workers', 'cluster-memory', ...(onEngines ? ['cluster'] : [])];
if (!onEngines && behaviour.length > 0)
  console.log(
    '\n# SKIPPED: behaviour suites in cluster mode on the real engines (PARLEY_TEST_CASSANDRA, _KAFKA, _REDIS unset)',
  );
let modeStatus = 0;
for (const mode of modes) {
  if (behaviour.length === 0) break;
  console.log(`\n# behaviour suites in ${mode} mode`);
  const status =
    spawnSync(process.execPath, [...NODE_ARGS, '--test-concurrency=2', ...behaviour], {
      stdio: 'inherit',
      cwd: root,
      env: { ...process.env, NODE_ENV: 'test', PARLEY_TEST_MODE: mode },
    }).status ?? 1;
  modeStatus ||= status;
}
process.exit(quickStatus || slowStatus || modeStatus);
