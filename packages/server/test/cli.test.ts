// The CLI as an operator uses it: `parley token`, `parley migrate`, `parley serve` with the
// development secret, config errors, and graceful shutdown with draining.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { SOURCE_CLI, spawnServer } from './child-server.js';
import { TEST_SECRET, TestClient, tempDir } from './helpers.js';

const run = promisify(execFile);
const parley = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, [...SOURCE_CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });

test('with no key configured, serve creates a dev secret, says so, and `parley token` mints a working token', async () => {
  const d = tempDir();
  try {
    const srv = await spawnServer({ PARLEY_DATA_DIR: d.dir });
    try {
      assert.match(srv.output(), /DEVELOPMENT MODE/);
      assert.match(srv.output(), /npx parley token --user alice/);
      const secretFile = join(d.dir, 'dev-jwt-secret');
      assert.ok(existsSync(secretFile));
      assert.equal(statSync(secretFile).mode & 0o777, 0o600);
      assert.ok(
        !srv
          .output()
          .includes(await import('node:fs').then((fs) => fs.readFileSync(secretFile, 'utf8').trim())),
      );
      const { stdout } = await parley(['token', '--user', 'alice', '--ttl', '10m'], {
        PARLEY_DATA_DIR: d.dir,
      });
      const c = await TestClient.open(srv.url);
      const r = await c.request({ type: 'connect', token: stdout.trim(), device: 'laptop' });
      assert.equal(r.ok, true);
      assert.equal(r.user, 'alice');
      c.close();
    } finally {
      srv.kill('SIGKILL');
      await srv.exited;
    }
  } finally {
    d.remove();
  }
});

test('migrate creates the schema once; a bad config is refused with a clear message', async () => {
  const d = tempDir();
  try {
    const first = await parley(['migrate'], { PARLEY_DATA_DIR: d.dir });
    assert.match(first.stdout, /applied 1/);
    const second = await parley(['migrate'], { PARLEY_DATA_DIR: d.dir });
    assert.match(second.stdout, /up to date/);
    const file = join(d.dir, 'config.json');
    writeFileSync(file, JSON.stringify({ port: 1, prot: 2 }));
    await assert.rejects(parley(['migrate', '--config', file]), (err: { stderr: string }) => {
      assert.match(err.stderr, /prot/);
      return true;
    });
    await assert.rejects(parley(['serve'], { PARLEY_PORTT: '1' }), (err: { stderr: string }) => {
      assert.match(err.stderr, /unknown environment variable PARLEY_PORTT/);
      return true;
    });
  } finally {
    d.remove();
  }
});

test('SIGTERM drains: reconnect hints within the window, refuse new sockets, close 1012, exit 0', async () => {
  const d = tempDir();
  try {
    const srv = await spawnServer({
      PARLEY_DATA_DIR: d.dir,
      PARLEY_JWT_SECRET: TEST_SECRET,
      PARLEY_DRAIN_MS: '1500',
    });
    const { mintToken } = await import('../src/gateway/auth.js');
    const secret = new TextEncoder().encode(TEST_SECRET);
    const clients = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const c = await TestClient.open(srv.url);
        await c.request({
          type: 'connect',
          token: await mintToken(secret, { user: `u${i}`, ttlSeconds: 60 }),
          device: 'd',
        });
        return c;
      }),
    );
    srv.kill('SIGTERM');
    const hints = await Promise.all(clients.map((c) => c.nextEvent((f) => f.type === 'reconnect')));
    for (const h of hints) {
      assert.equal(h.reason, 'drain');
      assert.ok(h.after_ms >= 0 && h.after_ms < 1500);
    }
    // Sends still work while draining.
    const r = await clients[0]!.request({
      type: 'send',
      conv: 'dm:u0:u1',
      cmid: 'late',
      kind: 'text',
      body: 'x',
    });
    assert.equal(r.ok, true);
    await assert.rejects(TestClient.open(srv.url));
    const codes = await Promise.all(clients.map((c) => c.closed(5000)));
    assert.deepEqual(codes, [1012, 1012, 1012, 1012, 1012]);
    assert.equal(await srv.exited, 0);
  } finally {
    d.remove();
  }
});

test('a second signal during the drain exits at once', async () => {
  const d = tempDir();
  try {
    const srv = await spawnServer({
      PARLEY_DATA_DIR: d.dir,
      PARLEY_JWT_SECRET: TEST_SECRET,
      PARLEY_DRAIN_MS: '60000',
    });
    const c = await TestClient.open(srv.url);
    srv.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    srv.kill('SIGINT');
    assert.equal(await srv.exited, 1);
    assert.ok(Date.now() - t0 < 3000);
    c.close();
  } finally {
    d.remove();
  }
});
