/**
 * The conformance suite of the `MediaStore` port: the embedded file store and the S3 adapter both
 * pass it. Presigned URLs are exercised with real HTTP requests (`fetch`), as a client would.
 * @module
 */
import assert from 'node:assert/strict';
import type { MediaStore, PresignedRequest } from '../../ports/media-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface MediaStoreHarness extends Closable {
  store: MediaStore;
}

/** Sends a presigned request as a client would. */
function send(
  req: PresignedRequest,
  body?: Uint8Array,
  override: Record<string, string> = {},
): Promise<Response> {
  const init: RequestInit = { method: req.method, headers: { ...req.headers, ...override } };
  if (body !== undefined) init.body = new Uint8Array(body);
  return fetch(req.url, init);
}

const bytes = (text: string) => new TextEncoder().encode(text);

/** Registers the `MediaStore` conformance tests for one adapter. */
export function mediaStoreSuite(
  name: string,
  make: () => Promise<MediaStoreHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'MediaStore', adapter: name, make, options }, ({ h, check, id }) => {
    const key = () => `media/${id('m')}`;

    check('put then head and get return the object; a missing key has none', async () => {
      const k = key();
      await h().store.put(k, bytes('hello'), 'text/plain');
      assert.deepEqual(await h().store.head(k), { key: k, size: 5, contentType: 'text/plain' });
      assert.deepEqual(await h().store.get(k), bytes('hello'));
      assert.equal(await h().store.head(key()), null);
      assert.equal(await h().store.get(key()), null);
    });

    check('a presigned PUT stores exactly the declared bytes, and a presigned GET returns them', async () => {
      const k = key();
      const body = new Uint8Array(70_000).map((_, i) => i % 251);
      const put = await h().store.presignPut(k, 'image/jpeg', body.length, 60);
      assert.equal(put.method, 'PUT');
      assert.ok(put.expiresAt > Date.now());
      const res = await send(put, body);
      assert.ok(res.ok, `upload answered ${res.status}: ${await res.text()}`);
      assert.deepEqual(await h().store.head(k), { key: k, size: body.length, contentType: 'image/jpeg' });
      const get = await h().store.presignGet(k, 60);
      const down = await send(get);
      assert.equal(down.status, 200);
      assert.deepEqual(new Uint8Array(await down.arrayBuffer()), body);
    });

    check('a presigned PUT refuses another length than the one signed', async () => {
      const k = key();
      const put = await h().store.presignPut(k, 'image/png', 10, 60);
      const res = await send(put, bytes('eleven byte'));
      assert.ok(!res.ok, `an 11-byte upload to a 10-byte URL answered ${res.status}`);
      await res.arrayBuffer();
      assert.equal(await h().store.head(k), null);
    });

    check('a presigned URL refuses a tampered key', async () => {
      const k = key();
      await h().store.put(k, bytes('secret'), 'text/plain');
      const get = await h().store.presignGet(k, 60);
      const other = key();
      await h().store.put(other, bytes('other'), 'text/plain');
      const res = await fetch(get.url.replace(encodeURIComponent(k).replaceAll('%2F', '/'), other), {
        headers: get.headers,
      });
      assert.ok(res.status === 403 || res.status === 400, `a tampered URL answered ${res.status}`);
      await res.arrayBuffer();
    });

    check('an expired presigned URL is refused', async () => {
      const k = key();
      await h().store.put(k, bytes('x'), 'text/plain');
      const get = await h().store.presignGet(k, 1);
      await new Promise((r) => setTimeout(r, 2_100));
      const res = await send(get);
      assert.equal(res.status, 403);
      await res.arrayBuffer();
    });

    check('delete removes the object; deleting a missing key is fine', async () => {
      const k = key();
      await h().store.put(k, bytes('bye'), 'text/plain');
      await h().store.delete(k);
      assert.equal(await h().store.head(k), null);
      await h().store.delete(k);
      const get = await h().store.presignGet(k, 60);
      const res = await send(get);
      assert.equal(res.status, 404);
      await res.arrayBuffer();
    });
  });
}
