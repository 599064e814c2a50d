// Runs the MediaStore conformance suite against the embedded file store, its presigned URLs served
// by a real HTTP server with the store's handler (as Parley's HTTP server mounts it).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mediaStoreSuite } from '../conformance/media-store.suite.js';
import { FileMediaStore } from './file-media-store.js';

mediaStoreSuite('FileMediaStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-media-'));
  let port = 0;
  const store = new FileMediaStore({ dir, baseUrl: () => `http://127.0.0.1:${port}`, secret: 'test-secret' });
  const server = createServer((req, res) => void store.handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  return {
    store,
    close: async () => {
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
