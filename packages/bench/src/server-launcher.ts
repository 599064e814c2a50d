/**
 * Starts the systems under test when no `--url` is given: `parley serve` (from the built
 * packages/server/dist/cli.js) with a temporary data directory, free client and admin ports, a random HS256
 * secret and the `--server-args` passed through; and the relay baseline. Each keeps reading its
 * child's output (a full pipe would block the server) and counts its warnings and errors.
 * @module
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { siblingModule } from './coordinator.js';

/** A system under test that this run started. */
export interface LaunchedServer {
  kind: 'parley' | 'relay';
  pid: number;
  port: number;
  url: string;
  httpUrl: string;
  /** Its Prometheus endpoint (Parley serves it on the admin listener, not the client port). */
  metricsUrl?: string;
  command: string[];
  secret: string;
  /** Log lines at warn level or above (pino levels ≥ 40), and the last lines printed. */
  logSummary(): { warnings: number; errors: number; tail: string[] };
  /** SIGTERM, then SIGKILL after `graceMs`; removes the data directory. */
  stop(graceMs?: number): Promise<void>;
}

/** How to start `parley serve`. */
export interface ParleyLaunch {
  cli: string;
  args: string[];
  nodeArgs: string[];
  /** Extra PARLEY_* variables (the bench sets port, data dir, secret, log level and drain). */
  env: Record<string, string>;
  timeoutMs: number;
}

function watchOutput(proc: ChildProcess): LaunchedServer['logSummary'] & { feed(chunk: Buffer): void } {
  const tail: string[] = [];
  let partial = '';
  let warnings = 0;
  let errors = 0;
  const feed = (chunk: Buffer): void => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const level = /"level":(\d+)/.exec(line);
      if (level) {
        const n = Number(level[1]);
        if (n >= 50) errors++;
        else if (n >= 40) warnings++;
      }
      tail.push(line);
      if (tail.length > 50) tail.shift();
    }
  };
  proc.stdout?.on('data', feed);
  proc.stderr?.on('data', feed);
  const summary = () => ({ warnings, errors, tail: [...tail] });
  return Object.assign(summary, { feed });
}

function stopper(proc: ChildProcess, cleanup: () => void): LaunchedServer['stop'] {
  return async (graceMs = 5000) => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    cleanup();
  };
}

/** Strips PARLEY_* from an environment (an unknown one would stop the server). */
function cleanEnv(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PARLEY_')) out[k] = v;
  return out;
}

/** Spawns `parley serve`; resolves once it logged `parley listening` with its port. */
export async function launchParley(o: ParleyLaunch): Promise<LaunchedServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-bench-'));
  const secret = randomBytes(32).toString('base64url');
  const command = [process.execPath, ...o.nodeArgs, o.cli, 'serve', ...o.args];
  const proc = spawn(command[0]!, command.slice(1), {
    env: {
      ...cleanEnv(),
      PARLEY_PORT: '0',
      PARLEY_ADMIN_PORT: '0',
      PARLEY_DATA_DIR: dataDir,
      PARLEY_JWT_SECRET: secret,
      PARLEY_LOG_LEVEL: 'info',
      PARLEY_DRAIN_MS: '1000',
      // A load test measures the server, not its per-user send limit (senders here far exceed it).
      PARLEY_SEND_RATE_PER_SECOND: '1000000',
      PARLEY_SEND_BURST: '1000000',
      ...o.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs = watchOutput(proc);
  const cleanup = (): void => rmSync(dataDir, { recursive: true, force: true });
  let adminPort: number | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`parley serve did not log "parley listening" within ${o.timeoutMs} ms:\n${seen}`));
    }, o.timeoutMs);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('utf8');
      for (const line of seen.split('\n')) {
        if (line.includes('"msg":"parley admin listening"'))
          adminPort = Number(/"port":(\d+)/.exec(line)?.[1]);
        if (!line.includes('"msg":"parley listening"')) continue;
        const m = /"port":(\d+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          proc.stdout?.off('data', onData);
          resolve(Number(m[1]));
          return;
        }
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (c: Buffer) => {
      seen += c.toString('utf8');
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      cleanup();
      reject(new Error(`parley serve exited (${code ?? signal}) before listening:\n${seen.slice(-4000)}`));
    });
  });
  return {
    kind: 'parley',
    pid: proc.pid!,
    port,
    url: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    ...(adminPort === undefined ? {} : { metricsUrl: `http://127.0.0.1:${adminPort}/metrics` }),
    command: command.slice(1),
    secret,
    logSummary: logs,
    stop: stopper(proc, cleanup),
  };
}

/** Forks the relay baseline (relay-server.ts) on a free port of 127.0.0.1. */
export async function launchRelay(timeoutMs: number): Promise<LaunchedServer> {
  const path = siblingModule('relay-server');
  const proc = fork(path, ['--port', '0'], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const logs = watchOutput(proc);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('relay did not start')), timeoutMs);
    proc.once('message', (m: { port?: number }) => {
      clearTimeout(timer);
      if (typeof m.port === 'number') resolve(m.port);
      else reject(new Error('relay sent no port'));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (${code}) before listening: ${logs().tail.join('\n')}`));
    });
  });
  return {
    kind: 'relay',
    pid: proc.pid!,
    port,
    url: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    command: [path],
    secret: 'relay-accepts-any-token-relay-accepts-any-token',
    logSummary: logs,
    stop: stopper(proc, () => {}),
  };
}
