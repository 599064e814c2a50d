import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The `node` arguments that run the CLI from the sources, as the tests run (scripts/test.mjs):
 * through tsx, with the `parley-source` condition so that `@parley/*` packages (`@parley/cluster`
 * in cluster mode) resolve to their sources too, not to their builds.
 */
export const SOURCE_CLI = [
  '--conditions=parley-source',
  '--import',
  'tsx',
  fileURLToPath(new URL('../src/cli.ts', import.meta.url)),
];

/** A `parley serve` running as a child process, as an operator would run it. */
export interface ChildServer {
  proc: ChildProcess;
  port: number;
  url: string;
  httpUrl: string;
  /** The admin listener (/metrics, /healthz, /readyz); null when the server disabled it. */
  adminUrl: string | null;
  /** The server API listener; null without a keys file. */
  serverApiUrl: string | null;
  /** Everything the process printed (JSON log lines on stdout, banners on stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `parley serve` with the given PARLEY_* environment (free client and admin ports unless
 * given); waits until it listens. From the sources, unless `cli` gives other `node` arguments
 * (the built CLI, for example).
 */
export async function spawnServer(
  env: Record<string, string>,
  timeoutMs = 15_000,
  cli: readonly string[] = SOURCE_CLI,
): Promise<ChildServer> {
  const proc = spawn(process.execPath, [...cli, 'serve'], {
    env: {
      ...stripParley(process.env),
      PARLEY_PORT: '0',
      PARLEY_ADMIN_PORT: '0',
      PARLEY_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | string>((resolve) => {
    proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1));
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"port":(\d+)[^\n]*"msg":"parley listening"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening:\n${out}`));
    });
  });
  const admin = /"port":(\d+)[^\n]*"msg":"parley admin listening"/.exec(out);
  const serverApi = /"port":(\d+)[^\n]*"msg":"parley server API listening"/.exec(out);
  return {
    proc,
    port,
    adminUrl: admin ? `http://127.0.0.1:${admin[1]}` : null,
    serverApiUrl: serverApi ? `http://127.0.0.1:${serverApi[1]}` : null,
    url: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    output: () => out,
    exited,
    kill: (signal = 'SIGTERM') => proc.kill(signal),
  };
}

function stripParley(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env))
    if (!k.startsWith('PARLEY_') || k.startsWith('PARLEY_TEST_')) out[k] = v;
  return out;
}
