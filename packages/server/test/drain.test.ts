// Stopping done right: through the drain window the listeners stay open, readiness answers 503
// and new WebSocket upgrades 503 with Retry-After while open sockets keep working; the listener
// closes at the end of the window; and every user still connected at the stop has a `last_seen`
// after a restart on the same data.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test } from 'node:test';
import { sleep, startServer, tempDir } from './helpers.js';

/** Tries a WebSocket upgrade at `url`; resolves with the status and Retry-After of the answer. */
function upgrade(url: string): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/ws`, {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Protocol': 'parley.v1.json',
      },
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined });
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, retryAfter: undefined });
    });
    req.on('error', reject);
    req.end();
  });
}

test('during the drain window: readyz 503 on both listeners, upgrades 503 with Retry-After, open sockets work; then the listener closes', async () => {
  const s = await startServer({ drainMs: 1500 });
  try {
    const alice = await s.client('alice');
    assert.equal((await upgrade(s.httpUrl)).status, 101);
    const t0 = Date.now();
    const stopped = s.server.stop(1500);
    await sleep(200);
    for (const base of [s.httpUrl, s.adminUrl]) {
      const ready = await fetch(`${base}/readyz`);
      assert.equal(ready.status, 503);
      assert.deepEqual(await ready.json(), { ready: false });
    }
    const refused = await upgrade(s.httpUrl);
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.retryAfter) >= 1);
    const hint = await alice.nextEvent((f) => f.type === 'reconnect');
    assert.equal(hint.reason, 'drain');
    const sent = await alice.request({
      type: 'send',
      conv: 'dm:alice:bob',
      cmid: 'late',
      kind: 'text',
      body: 'x',
    });
    assert.equal(sent.ok, true);
    await stopped;
    assert.ok(Date.now() - t0 >= 1400, 'the listener stays open for the whole window');
    await assert.rejects(fetch(`${s.httpUrl}/healthz`));
  } finally {
    await s.stop();
  }
});

test('a user connected when the server stops has last_seen after a restart on the same data', async () => {
  const data = tempDir();
  try {
    const first = await startServer({}, data.dir);
    await first.client('leaver');
    const before = Date.now();
    await first.server.stop(0);
    const second = await startServer({}, data.dir);
    try {
      const watcher = await second.client('watcher');
      const r = await watcher.request({ type: 'presence_sub', users: ['leaver'] });
      assert.equal(r.ok, true, JSON.stringify(r));
      const [view] = r.presence;
      assert.equal(view.status, 'offline');
      assert.equal(typeof view.last_seen, 'number', JSON.stringify(view));
      assert.ok(view.last_seen >= before - 1000 && view.last_seen <= Date.now());
    } finally {
      await second.stop();
    }
  } finally {
    data.remove();
  }
});
