import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { Connection, type ConnectionOwner } from './connection.js';

/** A payload of `bytes` UTF-8 bytes that is a valid JSON text, with multi-byte characters in it. */
function json(bytes: number): string {
  const prefix = '{"s":"é';
  const suffix = '"}';
  return prefix + 'x'.repeat(bytes - Buffer.byteLength(prefix) - suffix.length) + suffix;
}

// Shared-tail frames are framed by Parley (header and head, then the tail written as is), the
// others by `ws`: a real `ws` client must read both, at every size class of the header (7-bit,
// 16-bit and 64-bit lengths, and their edges), whole and in the order they were written.
test('frames written by the connection reach a ws client whole and in order, at every header size', async () => {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise<void>((r) => server.once('listening', () => r()));
  const owner: ConnectionOwner = {
    onFrame: () => {},
    write: () => {},
    onClosed: () => {},
    onDrained: () => {},
    now: () => Date.now(),
  };
  const sizes = [12, 125, 126, 127, 4096, 4097, 65_535, 65_536, 70_000, 300_000];
  const expected: string[] = [];
  server.on('connection', (ws, req) => {
    const conn = new Connection(ws, req.socket, Date.now(), '127.0.0.1', owner);
    for (const size of sizes) {
      const text = json(size);
      expected.push(text);
      assert.equal(conn.sendRaw(text), true);
      // A shared-tail frame of the same length: a short head, then the tail.
      const head = '{"h":1,';
      const tail = Buffer.from(text.slice(1));
      expected.push(head + tail.toString());
      assert.equal(conn.sendShared({ head, tail }), true);
    }
    ws.send('{"by":"ws"}');
    expected.push('{"by":"ws"}');
  });
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const got: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${got.length} frames arrived whole`)), 10_000);
      client.on('message', (data, isBinary) => {
        assert.equal(isBinary, false);
        got.push(data.toString());
        if (got.length === sizes.length * 2 + 1) {
          clearTimeout(timer);
          resolve();
        }
      });
      client.on('error', reject);
    });
    assert.deepEqual(
      got.map((g) => Buffer.byteLength(g)),
      expected.map((e) => Buffer.byteLength(e)),
    );
    assert.deepEqual(got, expected);
  } finally {
    client.terminate();
    for (const ws of server.clients) ws.terminate();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
