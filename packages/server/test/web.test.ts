// Parley Web as the client listener serves it: the files with their caching headers, ETags, gzip
// and Content-Security-Policy, the page for client-side routes, nothing outside the web root; and
// the development token endpoint, which exists only in development mode (the generated secret) or
// when `devTokens` is set, and is absent in any other configuration.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import { CONTENT_SECURITY_POLICY } from '../src/gateway/web.js';
import { createParleyServer, type ParleyServer } from '../src/main.js';
import { silentLogger } from '../src/ports/logger.js';
import { TestClient, tempDir } from './helpers.js';

const files = tempDir('parley-web-');
const webDir = join(files.dir, 'web');
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4000))});`;

before(() => {
  mkdirSync(join(webDir, 'assets'), { recursive: true });
  writeFileSync(
    join(webDir, 'index.html'),
    '<!doctype html><title>Parley</title><script src="/assets/app-1a2b.js"></script>',
  );
  writeFileSync(join(webDir, 'assets', 'app-1a2b.js'), SCRIPT);
  writeFileSync(join(webDir, 'sw.js'), 'self.addEventListener("push", () => {});');
  writeFileSync(join(files.dir, 'secret.txt'), 'not for the web');
});
after(() => files.remove());

/** A server on a free port with its own data directory; `jwtSecret: undefined` is development mode. */
async function serve(overrides: ConfigInput): Promise<{ server: ParleyServer; url: string }> {
  const dataDir = join(files.dir, `data-${Math.random().toString(36).slice(2)}`);
  const config = loadConfig({
    overrides: { port: 0, adminPort: -1, dataDir, drainMs: 0, webDir, ...overrides },
  });
  const server = await createParleyServer(config, { log: silentLogger });
  const address = await server.start();
  return { server, url: `http://127.0.0.1:${address.port}` };
}

describe('the web client’s files', () => {
  let s: { server: ParleyServer; url: string };
  before(async () => {
    s = await serve({ jwtSecret: 'a'.repeat(40) });
  });
  after(() => s.server.stop(0));

  test('the page, with a strict CSP and no-cache; hashed assets immutable, gzipped, with ETags', async () => {
    const page = await fetch(`${s.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    assert.equal(page.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
    assert.match(CONTENT_SECURITY_POLICY, /script-src 'self'/);
    assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval/);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    assert.match(await page.text(), /<title>Parley<\/title>/);

    const js = await fetch(`${s.url}/assets/app-1a2b.js`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(js.headers.get('content-encoding'), 'gzip');
    assert.equal(await js.text(), SCRIPT, 'fetch decodes the gzip body to the file');
    const etag = js.headers.get('etag')!;
    const again = await fetch(`${s.url}/assets/app-1a2b.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
  });

  test('only the web root’s files are served: other paths, and paths outside the root, are 404', async () => {
    for (const path of ['/chats/dm:alice:bob', '/metrics']) {
      const res = await fetch(`${s.url}${path}`);
      assert.equal(res.status, 404, path);
      await res.arrayBuffer();
    }
    for (const path of [
      '/assets/missing.js',
      '/..%2Fsecret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2F..%2Fsecret.txt',
    ]) {
      const res = await fetch(`${s.url}${path}`);
      const text = await res.text();
      assert.ok(!text.includes('not for the web'), `${path} leaked a file outside the root`);
      if (path === '/assets/missing.js') assert.equal(res.status, 404);
    }
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200, 'health is not shadowed');
  });

  test('with a configured secret the development token endpoint does not exist', async () => {
    const res = await fetch(`${s.url}/v1/dev/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'mallory', device: 'd' }),
    });
    assert.equal(res.status, 404);
    await res.arrayBuffer();
  });
});

describe('the development token endpoint', () => {
  test('in development mode (generated secret) a name signs in; the token connects', async () => {
    const s = await serve({});
    try {
      const res = await fetch(`${s.url}/v1/dev/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'alice', device: 'tab-1' }),
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const { token } = (await res.json()) as { token: string };
      const c = await TestClient.open(`${s.url.replace('http', 'ws')}/v1/ws`);
      const r = await c.request({ type: 'connect', token, device: 'tab-1' });
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(r.user, 'alice');
      c.close();
      const bad = await fetch(`${s.url}/v1/dev/token`, {
        method: 'POST',
        body: JSON.stringify({ user: 'not a user id!', device: 'd' }),
      });
      assert.equal(bad.status, 400);
      await bad.arrayBuffer();
    } finally {
      await s.server.stop(0);
    }
  });

  test('devTokens: true turns it on with a configured secret; web: false serves nothing', async () => {
    const on = await serve({ jwtSecret: 'b'.repeat(40), devTokens: true });
    try {
      const res = await fetch(`${on.url}/v1/dev/token`, {
        method: 'POST',
        body: JSON.stringify({ user: 'bob', device: 'd' }),
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    } finally {
      await on.server.stop(0);
    }
    const off = await serve({ jwtSecret: 'b'.repeat(40), web: false });
    try {
      assert.equal((await fetch(`${off.url}/`)).status, 404);
    } finally {
      await off.server.stop(0);
    }
  });
});
