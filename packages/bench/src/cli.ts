#!/usr/bin/env node
/**
 * `npm run bench -- <scenario> [options]`: runs one scenario against a spawned `parley serve` (or
 * `--url`), shows a live progress line on stderr, prints the results table on stdout and writes
 * the JSON and HTML reports. Exit code 1 when the run failed (the reports are written anyway,
 * with the failure in their notes), 2 for a usage error.
 * @module
 */
import { fileURLToPath } from 'node:url';
import { type BenchOptions, parseOptions, UsageError, usage } from './options.js';
import { renderTable } from './report/table.js';
import { defaultOut, writeReports } from './report/write.js';
import { Run } from './run.js';
import { connections } from './scenarios/connections.js';
import { direct } from './scenarios/direct.js';
import { group } from './scenarios/group.js';
import { hostile } from './scenarios/hostile.js';
import { media } from './scenarios/media.js';
import { push } from './scenarios/push.js';
import { resume } from './scenarios/resume.js';
import { serverApi } from './scenarios/server-api.js';
import { webhooks } from './scenarios/webhooks.js';

const DEFAULT_SERVER_CLI = fileURLToPath(new URL('../../server/dist/cli.js', import.meta.url));

/** Sockets a scenario opens at most at once (it sizes the load processes and source addresses). */
function socketsOf(o: BenchOptions): number {
  switch (o.scenario) {
    case 'connections':
      return o.connections;
    case 'direct':
    case 'relay-baseline':
    case 'webhooks':
      return o.users;
    case 'group':
      return o.groups * o.members;
    case 'resume':
      return o.clients + Math.ceil(o.clients / o.groupSize);
    case 'hostile':
    case 'push':
    case 'media':
    case 'server-api':
      // Their load runs in processes of their own; the load processes stay idle.
      return 0;
  }
}

async function scenario(run: Run): Promise<void> {
  switch (run.opts.scenario) {
    case 'connections':
      return connections(run);
    case 'direct':
      return direct(run, false);
    case 'relay-baseline':
      return direct(run, true);
    case 'group':
      return group(run);
    case 'resume':
      return resume(run);
    case 'hostile':
      return hostile(run);
    case 'push':
      return push(run);
    case 'media':
      return media(run);
    case 'server-api':
      return serverApi(run);
    case 'webhooks':
      return webhooks(run);
  }
}

async function main(argv: string[]): Promise<number> {
  let opts: BenchOptions | null;
  try {
    opts = parseOptions(argv, DEFAULT_SERVER_CLI);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`parley-bench: ${err.message}\n\n${usage()}`);
    return 2;
  }
  if (!opts) {
    console.log(usage());
    return 0;
  }
  const run = await Run.create(opts, argv, socketsOf(opts));
  let failed = false;
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    run.log('interrupted: stopping load and servers (again to exit at once)');
    void run.close().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await scenario(run);
  } catch (err) {
    failed = true;
    run.notes.push(`run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    await run.close();
  }
  const result = run.result();
  const paths = writeReports(result, opts.out ?? defaultOut(opts.scenario, new Date(run.startedAt)));
  console.log(renderTable(result));
  console.error(`\nwrote ${paths.json}\n      ${paths.html}`);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
