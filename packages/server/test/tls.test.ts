// TLS on Parley's own listeners, in every mode: the client listener (HTTPS with HSTS, WebSocket
// over TLS) and the server API (gRPC over HTTP/2 by ALPN, Connect JSON over HTTP/1.1) speak TLS
// 1.3 only unless 1.2 is allowed; a renewed certificate is picked up without a restart and
// without closing open connections; a renewal that does not load keeps the current pair.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type PeerCertificate } from 'node:tls';
import { createServerClient } from '@parley/server-client';
import { loadConfig } from '../src/config/load.js';
import { startHaproxy } from './haproxy.js';
import { eventually, sleep, startServer, TestClient, type TestServer, tempDir } from './helpers.js';
import { makeTestTls, type TestTls } from './tls-certs.js';

const API_KEY = `tls-${randomBytes(16).toString('base64url')}`;

/** Opens a TLS connection and resolves with its protocol and the server's certificate. */
function handshake(
  port: number,
  options: { ca: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3' },
): Promise<{ protocol: string | null; cert: PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ...options }, () => {
      resolve({ protocol: socket.getProtocol(), cert: socket.getPeerCertificate() });
      socket.end();
    });
    socket.once('error', reject);
  });
}

/** GETs (or POSTs) over HTTPS trusting `ca`; resolves with the status and headers. */
function https(
  url: string,
  ca: string,
  body?: { json: string; key: string },
): Promise<{ status: number; hsts: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ca,
        method: body ? 'POST' : 'GET',
        headers: body ? { 'content-type': 'application/json', authorization: `Bearer ${body.key}` } : {},
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            hsts: res.headers['strict-transport-security'] as string | undefined,
            text,
          }),
        );
      },
    );
    req.once('error', reject);
    req.end(body?.json);
  });
}

const portOf = (url: string) => Number(new URL(url).port);
const wss = (url: string) => url.replace(/^ws:/, 'wss:');

describe('TLS on the client and server API listeners', () => {
  let s: TestServer;
  let tmp: { dir: string; remove: () => void };
  let current: TestTls;
  let certFile: string;
  let keyFile: string;
  const install = (t: TestTls) => {
    writeFileSync(certFile, t.cert);
    writeFileSync(keyFile, t.key);
  };

  before(async () => {
    tmp = tempDir('parley-tls-');
    certFile = join(tmp.dir, 'cert.pem');
    keyFile = join(tmp.dir, 'key.pem');
    current = makeTestTls();
    install(current);
    const keysFile = join(tmp.dir, 'api-keys.json');
    writeFileSync(keysFile, JSON.stringify({ keys: [{ name: 'tls', key: API_KEY, scopes: ['*'] }] }));
    s = await startServer({ tlsCertFile: certFile, tlsKeyFile: keyFile, serverApiKeysFile: keysFile });
  });
  after(async () => {
    await s.stop();
    tmp.remove();
  });

  test('a TLS 1.3 client connects: HTTPS answers with HSTS, WebSocket over TLS signs in', async () => {
    const port = portOf(s.httpUrl);
    assert.equal((await handshake(port, { ca: current.ca })).protocol, 'TLSv1.3');
    const health = await https(`https://127.0.0.1:${port}/healthz`, current.ca);
    assert.equal(health.status, 200);
    assert.equal(health.hsts, 'max-age=31536000');
    const c = await TestClient.open(wss(s.url), { ca: current.ca });
    const r = await c.request({ type: 'connect', token: await s.token('tls-a'), device: 'd' });
    assert.equal(r.ok, true, JSON.stringify(r));
    c.close();
  });

  test('a TLS 1.2 client is refused, on both listeners', async () => {
    for (const url of [s.httpUrl, s.serverApiUrl!])
      await assert.rejects(
        handshake(portOf(url), { ca: current.ca, maxVersion: 'TLSv1.2' }),
        /version|protocol/i,
      );
  });

  test('the server API over TLS: gRPC on HTTP/2 (ALPN), Connect JSON on HTTP/1.1, with HSTS', async () => {
    const baseUrl = s.serverApiUrl!.replace(/^http:/, 'https:');
    for (const protocol of ['grpc', 'connect'] as const) {
      const api = createServerClient({ baseUrl, apiKey: API_KEY, protocol, ca: current.ca });
      const sent = await api.sendMessage({
        asUser: `tls-${protocol}`,
        conv: `dm:tls-${protocol}:tls-z`,
        cmid: 'm',
        body: 'hi',
      });
      assert.equal(sent.seq, 1n);
    }
    const json = await https(`${baseUrl}/parley.server.v1.ServerApiService/ListDevices`, current.ca, {
      json: '{"user":"tls-z"}',
      key: API_KEY,
    });
    assert.equal(json.status, 200, json.text);
    assert.equal(json.hsts, 'max-age=31536000');
  });

  test('a renewed certificate serves new connections, open ones stay; a renewal that does not load keeps the current pair', async () => {
    const port = portOf(s.httpUrl);
    const open = await TestClient.open(wss(s.url), { ca: current.ca });
    assert.equal(
      (await open.request({ type: 'connect', token: await s.token('tls-b'), device: 'd' })).ok,
      true,
    );
    const renewed = makeTestTls();
    install(renewed);
    // Every process that holds the port (two workers take turns in workers mode) reloads on its
    // own within a second: wait until four handshakes in a row get the new certificate.
    const newEverywhere = (p: number) => async () => {
      for (let i = 0; i < 4; i++) await handshake(p, { ca: renewed.ca });
    };
    await eventually(newEverywhere(port));
    await eventually(newEverywhere(portOf(s.serverApiUrl!)));
    for (let i = 0; i < 4; i++) await assert.rejects(handshake(port, { ca: current.ca }), /certificate/i);
    const pong = await open.request({ type: 'ping' });
    assert.equal(pong.ok, true, 'the connection opened before the renewal is still served');
    open.close();
    current = renewed;

    // Half a renewal: a new chain with the old key does not load; the current pair stays.
    writeFileSync(certFile, makeTestTls().cert);
    await sleep(2_500);
    const still = await handshake(port, { ca: current.ca });
    assert.equal(still.protocol, 'TLSv1.3');
    install(current);
  });
});

describe('TLS terminated at HAProxy instead (the edge), Parley behind it in plain HTTP', () => {
  test('a TLS 1.3 WebSocket client signs in through the proxy; TLS 1.2 is refused; HTTPS answers carry HSTS', async () => {
    const t = makeTestTls();
    const s = await startServer();
    const proxy = await startHaproxy([portOf(s.httpUrl)], t);
    try {
      const port = portOf(proxy.tlsUrl!);
      assert.equal((await handshake(port, { ca: t.ca })).protocol, 'TLSv1.3');
      await assert.rejects(handshake(port, { ca: t.ca, maxVersion: 'TLSv1.2' }), /version|protocol|alert/i);
      const health = await https(`https://127.0.0.1:${port}/healthz`, t.ca);
      assert.equal(health.status, 200);
      assert.equal(health.hsts, 'max-age=31536000');
      const c = await TestClient.open(proxy.tlsUrl!, { ca: t.ca });
      const r = await c.request({ type: 'connect', token: await s.token('tls-edge'), device: 'd' });
      assert.equal(r.ok, true, JSON.stringify(r));
      c.close();
    } finally {
      await proxy.stop();
      await s.stop();
    }
  });
});

describe('TLS 1.2 allowed for old clients', () => {
  test('tlsMinVersion TLSv1.2 lets a TLS 1.2 client in', async () => {
    const tmp = tempDir('parley-tls-');
    const t = makeTestTls();
    writeFileSync(join(tmp.dir, 'cert.pem'), t.cert);
    writeFileSync(join(tmp.dir, 'key.pem'), t.key);
    const s = await startServer({
      tlsCertFile: join(tmp.dir, 'cert.pem'),
      tlsKeyFile: join(tmp.dir, 'key.pem'),
      tlsMinVersion: 'TLSv1.2',
    });
    try {
      const r = await handshake(portOf(s.httpUrl), { ca: t.ca, maxVersion: 'TLSv1.2' });
      assert.equal(r.protocol, 'TLSv1.2');
    } finally {
      await s.stop();
      tmp.remove();
    }
  });

  test('a certificate without its key (or the other way round) is a configuration error', () => {
    assert.throws(
      () => loadConfig({ overrides: { tlsCertFile: '/x/cert.pem' } }),
      /tlsCertFile and tlsKeyFile/,
    );
  });
});
