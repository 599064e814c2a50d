// The client listener's limits, over real sockets: per-address and global socket caps and the
// per-address connect rate (refused on accept, without hurting other addresses), idle and
// slowloris sockets closed soon after headersTimeout, malformed paths answered 400, and HTTP API
// requests in progress capped (429) so never-reading clients cannot pin the server's memory.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { mintToken } from '../src/gateway/auth.js';
import { spawnServer } from './child-server.js';
import { sleep, startServer, TEST_SECRET, TestClient, tempDir } from './helpers.js';

const secret = new TextEncoder().encode(TEST_SECRET);

/** Opens a raw TCP socket to `port` from `localAddress`; resolves once connected. */
function tcp(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with how long after the call `socket` closed (rejects after `timeoutMs`). */
function closedWithin(socket: Socket, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve(0);
    const timer = setTimeout(() => reject(new Error(`socket still open after ${timeoutMs} ms`)), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
    socket.on('error', () => {});
  });
}

/** GET `url` from a given source address; resolves with the status. */
function getFrom(url: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, { localAddress, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).once('error', reject);
  });
}

async function refusedCount(adminUrl: string | null, reason: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const m = new RegExp(`^parley_sockets_refused_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text);
  return Number(m?.[1] ?? 0);
}

describe('socket limits at accept', () => {
  test('past the per-address cap an address is refused at once; another address still connects', async () => {
    const s = await startServer({ maxSocketsPerAddress: 5 });
    const port = Number(new URL(s.httpUrl).port);
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 5; i++) held.push(await tcp(port));
      const extra = await tcp(port);
      assert.ok((await closedWithin(extra, 1000)) < 1000);
      for (const h of held) assert.equal(h.destroyed, false, 'sockets under the cap stay open');
      // 127.0.0.2 is another client: its sockets, its WebSocket and /healthz still work.
      assert.equal(await getFrom(`${s.httpUrl}/healthz`, '127.0.0.2'), 200);
      const ws = await TestClient.open(s.url, { localAddress: '127.0.0.2' });
      const r = await ws.request({ type: 'connect', token: await s.token('bystander'), device: 'd' });
      assert.equal(r.ok, true);
      ws.close();
      assert.equal(await refusedCount(s.adminUrl, 'per_address'), 1);
      // A slot frees when a socket closes.
      held.pop()!.destroy();
      await sleep(100);
      const again = await tcp(port);
      await sleep(200);
      assert.equal(again.destroyed, false);
      held.push(again);
    } finally {
      for (const h of held) h.destroy();
      await s.stop();
    }
  });

  test('the per-address connect rate and the global cap refuse with their own reasons', async () => {
    const s = await startServer({ connectRatePerAddress: 1, connectBurstPerAddress: 3, maxSockets: 6 });
    const port = Number(new URL(s.httpUrl).port);
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) held.push(await tcp(port, '127.0.0.3'));
      await closedWithin(await tcp(port, '127.0.0.3'), 1000);
      assert.equal(await refusedCount(s.adminUrl, 'connect_rate'), 1);
      for (let i = 0; i < 3; i++) held.push(await tcp(port, '127.0.0.4'));
      await closedWithin(await tcp(port, '127.0.0.5'), 1000);
      assert.equal(await refusedCount(s.adminUrl, 'max_sockets'), 1);
    } finally {
      for (const h of held) h.destroy();
      await s.stop();
    }
  });

  test('a socket that sends nothing, or a request head byte by byte, is closed soon after headersTimeout', async () => {
    const s = await startServer({ headersTimeoutMs: 1000 });
    const port = Number(new URL(s.httpUrl).port);
    try {
      const idle = await tcp(port);
      const slow = await tcp(port);
      const head = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ';
      let i = 0;
      const drip = setInterval(() => slow.writable && slow.write(head[i++ % head.length]!), 100);
      try {
        const [idleMs, slowMs] = await Promise.all([closedWithin(idle, 5000), closedWithin(slow, 5000)]);
        assert.ok(idleMs >= 900 && idleMs <= 2500, `idle socket closed after ${idleMs} ms`);
        assert.ok(slowMs >= 900 && slowMs <= 2500, `slowloris socket closed after ${slowMs} ms`);
      } finally {
        clearInterval(drip);
      }
    } finally {
      await s.stop();
    }
  });
});

describe('HTTP API', () => {
  test('malformed percent-encoding in a path is bad_request, not a server error', async () => {
    const s = await startServer();
    try {
      const res = await fetch(`${s.httpUrl}/v1/conversations/%E0%A4%A/messages`, {
        headers: { authorization: `Bearer ${await s.token('alice')}` },
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'bad_request');
    } finally {
      await s.stop();
    }
  });

  test('never-reading history requests hold their slots: past the caps 429 with Retry-After, and memory stays bounded', {
    timeout: 120_000,
  }, async () => {
    const data = tempDir();
    const srv = await spawnServer({
      PARLEY_DATA_DIR: data.dir,
      PARLEY_JWT_SECRET: TEST_SECRET,
      PARLEY_MAX_HTTP_REQUESTS_IN_FLIGHT: '8',
      PARLEY_MAX_HTTP_REQUESTS_IN_FLIGHT_PER_USER: '4',
      // Replies far larger than the kernel's socket buffers, so an unread one stays in the server.
      PARLEY_MAX_REPLY_BYTES: String(16 * 1024 * 1024),
      PARLEY_READ_RATE_PER_SECOND: '1000000',
      PARLEY_READ_BURST: '1000000',
    });
    const holders: Socket[] = [];
    const late: Socket[] = [];
    try {
      const conv = 'dm:hold1:hold2';
      const writer = await TestClient.open(srv.url);
      const token = (user: string) => mintToken(secret, { user, ttlSeconds: 600 });
      assert.equal(
        (await writer.request({ type: 'connect', token: await token('hold1'), device: 'd' })).ok,
        true,
      );
      const body = 'x'.repeat(60 * 1024);
      for (let i = 0; i < 150; i++) {
        const r = await writer.request({ type: 'send', conv, cmid: `m${i}`, kind: 'text', body });
        assert.equal(r.ok, true, JSON.stringify(r).slice(0, 200));
      }
      writer.close();
      const port = srv.port;
      const path = `/v1/conversations/${conv}/messages?limit=200`;
      const tokens = { hold1: await token('hold1'), hold2: await token('hold2') };
      const request = async (user: keyof typeof tokens): Promise<Socket> => {
        const sock = await tcp(port);
        sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[user]}\r\n\r\n`);
        sock.pause();
        return sock;
      };
      const rssBefore = rssOf(srv.proc.pid!);
      for (let i = 0; i < 4; i++) holders.push(await request('hold1'));
      await sleep(500);
      // The user's fifth request is refused although the listener has room.
      const fifth = await fetch(`${srv.httpUrl}${path}`, {
        headers: { authorization: `Bearer ${tokens.hold1}` },
      });
      assert.equal(fifth.status, 429);
      assert.ok(Number(fifth.headers.get('retry-after')) >= 1);
      for (let i = 0; i < 4; i++) holders.push(await request('hold2'));
      await sleep(500);
      for (let i = 0; i < 150; i++) late.push(await request(i % 2 ? 'hold1' : 'hold2'));
      await sleep(1500);
      const rssGrowth = rssOf(srv.proc.pid!) - rssBefore;
      const statuses = await Promise.all(late.map(statusLine));
      assert.deepEqual(new Set(statuses), new Set(['HTTP/1.1 429 Too Many Requests']), statuses.join(','));
      // 8 replies of ~9 MiB are held (about 250 MiB with the garbage of making them); without the
      // caps all 158 would be, each with what the kernel did not take (measured: 580 MiB and growing).
      assert.ok(rssGrowth < 400 * 1024 * 1024, `server RSS grew by ${Math.round(rssGrowth / 2 ** 20)} MiB`);
      for (const h of holders) h.destroy();
      await sleep(300);
      const after = await fetch(`${srv.httpUrl}${path}`, {
        headers: { authorization: `Bearer ${tokens.hold2}` },
      });
      assert.equal(after.status, 200);
      await after.arrayBuffer();
    } finally {
      for (const sock of [...holders, ...late]) sock.destroy();
      srv.kill('SIGKILL');
      await srv.exited;
      data.remove();
    }
  });
});

/** Resident memory of a process, in bytes (Linux). */
function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/** Reads the status line of the response waiting on a paused socket. */
function statusLine(sock: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no status line: ${text.slice(0, 100)}`)), 5000);
    sock.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      resolve(text.slice(0, end));
      sock.destroy();
    });
    sock.resume();
  });
}
