// `parley serve` on a port that is taken says so in one line and exits non-zero at once, for the
// client port, the admin port and in --workers mode; `parley token` refuses a TTL the server
// would refuse.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { SOURCE_CLI } from './child-server.js';
import { TEST_SECRET, tempDir } from './helpers.js';

let blocker: Server;
let taken: number;
const data = tempDir();

before(async () => {
  blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  taken = (blocker.address() as { port: number }).port;
});
after(() => {
  blocker.close();
  data.remove();
});

/** Runs the CLI to its end (or kills it after `timeoutMs`); resolves with its exit code and output. */
function parley(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...SOURCE_CLI, ...args],
      {
        env: {
          PATH: process.env.PATH ?? '',
          PARLEY_DATA_DIR: data.dir,
          PARLEY_JWT_SECRET: TEST_SECRET,
          ...env,
        },
        timeout: timeoutMs,
      },
      (err, _stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? null) : 0;
        resolve({ code: typeof code === 'number' ? code : null, stderr, ms: Date.now() - t0 });
      },
    );
  });
}

/** Asserts one clear line on stderr, no stack trace, and a prompt non-zero exit. */
function assertOneLine(r: { code: number | null; stderr: string; ms: number }, expected: RegExp): void {
  assert.ok(r.code !== null && r.code !== 0, `exit code ${r.code}; stderr:\n${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, expected);
  assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
}

test('the client port in use: one line naming the address and PARLEY_PORT, exit 1', async () => {
  const r = await parley(['serve'], { PARLEY_PORT: String(taken), PARLEY_ADMIN_PORT: '0' });
  assertOneLine(
    r,
    new RegExp(
      `^parley: cannot listen on 127\\.0\\.0\\.1:${taken}: address already in use \\(EADDRINUSE\\); set PARLEY_PORT or stop the other process$`,
    ),
  );
});

test('the admin port in use: one line naming PARLEY_ADMIN_PORT, exit 1', async () => {
  const r = await parley(['serve'], { PARLEY_PORT: '0', PARLEY_ADMIN_PORT: String(taken) });
  assertOneLine(
    r,
    /^parley: admin listener: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE.*PARLEY_ADMIN_PORT/,
  );
});

test('--workers mode with the client port in use: the same one line, exit 1', async () => {
  const r = await parley(['serve', '--workers', '2'], { PARLEY_PORT: String(taken), PARLEY_ADMIN_PORT: '0' });
  assertOneLine(r, new RegExp(`^parley: cannot listen on 127\\.0\\.0\\.1:${taken}: address already in use`));
});

test('`parley token --ttl` longer than maxTokenLifetimeMs is refused', async () => {
  const r = await parley(['token', '--user', 'alice', '--ttl', '30d'], {});
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--ttl 30d is longer than the 24h this server accepts/);
});
