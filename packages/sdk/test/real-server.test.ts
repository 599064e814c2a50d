// The SDK against the real server, restarted mid-conversation on the same port and data
// directory: no message is lost and none is shown twice, and every send resolves exactly once.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { mintToken } from '../../server/src/gateway/auth.js';
import { type ChildServer, spawnServer } from '../../server/test/child-server.js';
import { TEST_SECRET, tempDir } from '../../server/test/helpers.js';
import { type MessageEvent, ParleyClient } from '../src/index.js';

const secret = new TextEncoder().encode(TEST_SECRET);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function sdkClient(url: string, user: string): ParleyClient {
  return new ParleyClient({
    url,
    device: 'd1',
    tokenProvider: () => mintToken(secret, { user, ttlSeconds: 600 }),
    WebSocket,
    minReconnectDelayMs: 20,
    maxReconnectDelayMs: 200,
    requestTimeoutMs: 2000,
  });
}

test('SDK resumes across a server restart: nothing lost, nothing twice', { timeout: 60_000 }, async () => {
  const data = tempDir();
  const port = await freePort();
  const env = {
    PARLEY_DATA_DIR: data.dir,
    PARLEY_JWT_SECRET: TEST_SECRET,
    PARLEY_PORT: String(port),
    PARLEY_DRAIN_MS: '1500',
  };
  let srv: ChildServer = await spawnServer(env);
  const alice = sdkClient(srv.url, 'alice');
  const bob = sdkClient(srv.url, 'bob');
  const received: MessageEvent[] = [];
  bob.on('message', (m) => {
    if (m.from === 'alice') received.push(m);
  });
  try {
    await Promise.all([alice.connect(), bob.connect()]);
    const conv = alice.directConv('bob');
    const sends: Promise<{ seq: number }>[] = [];
    const total = 300;
    for (let i = 0; i < total; i++) {
      sends.push(alice.send(conv, `m${i}`));
      if (i === 100) {
        // A hard crash mid-conversation: sends in flight are retried by the SDK with their cmids.
        srv.kill('SIGKILL');
        await srv.exited;
        srv = await spawnServer(env);
      }
      if (i === 200) {
        // And a graceful restart.
        srv.kill('SIGTERM');
        await srv.exited;
        srv = await spawnServer(env);
      }
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    const acks = await Promise.all(sends);
    const seqs = acks.map((a) => a.seq);
    assert.deepEqual(
      [...seqs].sort((a, b) => a - b),
      Array.from({ length: total }, (_, i) => i + 1),
      'every send acknowledged once, seqs 1..300',
    );
    const deadline = Date.now() + 20_000;
    while (received.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(received.length, total, 'bob saw every message exactly once');
    assert.deepEqual(
      received.map((m) => m.seq),
      Array.from({ length: total }, (_, i) => i + 1),
      'in seq order',
    );
    assert.deepEqual(
      received.map((m) => m.body),
      Array.from({ length: total }, (_, i) => `m${i}`),
      'in send order',
    );
    const inbox = received.map((m) => m.inbox);
    assert.equal(new Set(inbox).size, total, 'no inbox number twice');
  } finally {
    await alice.close();
    await bob.close();
    srv.kill('SIGKILL');
    await srv.exited;
    data.remove();
  }
});
