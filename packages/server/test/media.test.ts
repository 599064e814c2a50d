// Media in every mode: upload and download through short-lived URLs (the embedded file store,
// served by Parley; S3 on the engines), exact size, expiry, who may download (the uploader and
// members of a conversation whose message listed the media, checked at download time), sends
// that list media they may not, budgets, and collection of uploads no message listed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type Frame, sleep, startServer, type TestClient, type TestServer } from './helpers.js';

/** Asks for an upload URL and PUTs `body` there; resolves with the reply and the HTTP status. */
async function upload(
  c: TestClient,
  body: Uint8Array,
  size = body.length,
): Promise<{ reply: Frame; status: number }> {
  const reply = await c.request({ type: 'media_upload', size, content_type: 'application/octet-stream' });
  assert.equal(reply.ok, true, JSON.stringify(reply));
  const res = await fetch(reply.url, {
    method: reply.method,
    headers: reply.headers,
    body: new Uint8Array(body),
  });
  await res.arrayBuffer();
  return { reply, status: res.status };
}

async function download(
  c: TestClient,
  media: string,
): Promise<{ reply: Frame; bytes?: Uint8Array; status?: number }> {
  const reply = await c.request({ type: 'media_download', media });
  if (!reply.ok) return { reply };
  const res = await fetch(reply.url);
  return { reply, status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
}

describe('media', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ maxMediaBytes: 4 * 1024 * 1024, mediaUploadBytesPerDay: 6 * 1024 * 1024 });
  });
  after(() => s.stop());

  test('upload, send, and download by the uploader and by the other participant; media ids are unguessable', async () => {
    const a = await s.client('md-a');
    const b = await s.client('md-b');
    const body = randomBytes(300_000);
    const { reply, status } = await upload(a, body);
    assert.equal(status, 200);
    assert.match(reply.media, /^m_[A-Za-z0-9_-]{24}$/);
    assert.ok(reply.expires_ts > Date.now());
    const sent = await a.request({
      type: 'send',
      conv: 'dm:md-a:md-b',
      cmid: 'p1',
      kind: 'image',
      body: '',
      media: [reply.media],
    });
    assert.equal(sent.ok, true, JSON.stringify(sent));
    const msg = await b.nextEvent((f) => f.type === 'message' && f.cmid === 'p1');
    assert.deepEqual(msg.media, [reply.media]);
    for (const who of [a, b]) {
      const d = await download(who, reply.media);
      assert.equal(d.status, 200);
      assert.deepEqual(Buffer.from(d.bytes!), body);
    }
  });

  test('an upload of another size than declared is refused, and the media cannot be sent', async () => {
    const a = await s.client('md-size');
    const { reply, status } = await upload(a, randomBytes(1000), 999);
    assert.ok(status >= 400, `a 1000-byte body to a 999-byte URL answered ${status}`);
    const sent = await a.request({
      type: 'send',
      conv: 'dm:md-size:md-x',
      cmid: 'x',
      kind: 'file',
      body: '',
      media: [reply.media],
    });
    assert.equal(sent.error?.code, 'bad_request', 'not uploaded');
  });

  test('non-members, removed members and other users are refused; a sender cannot list media it may not read', async () => {
    const owner = await s.client('md-owner');
    const member = await s.client('md-member');
    const outsider = await s.client('md-outsider');
    const g = await owner.request({ type: 'create_group', name: 'pics', members: ['md-member'] });
    const { reply } = await upload(owner, randomBytes(2048));
    const sent = await owner.request({
      type: 'send',
      conv: g.conv,
      cmid: 'g1',
      kind: 'image',
      body: '',
      media: [reply.media],
    });
    assert.equal(sent.ok, true);
    assert.equal((await download(member, reply.media)).status, 200);
    assert.equal((await download(outsider, reply.media)).reply.error?.code, 'forbidden');
    // Another user's media id in one's own message: refused, nothing stored.
    const stolen = await outsider.request({
      type: 'send',
      conv: 'dm:md-outsider:md-x',
      cmid: 's',
      kind: 'image',
      body: '',
      media: [reply.media],
    });
    assert.equal(stolen.error?.code, 'bad_request');
    // A removed member loses access (checked at download time).
    await owner.request({ type: 'remove_members', conv: g.conv, users: ['md-member'] });
    assert.equal((await download(member, reply.media)).reply.error?.code, 'forbidden');
    assert.equal((await download(owner, 'm_doesnotexist00000000000000')).reply.error?.code, 'not_found');
  });

  test('the size limit and the daily upload budget', async () => {
    const a = await s.client('md-budget');
    const big = await a.request({
      type: 'media_upload',
      size: 4 * 1024 * 1024 + 1,
      content_type: 'image/png',
    });
    assert.equal(big.error?.code, 'too_large');
    const first = await a.request({ type: 'media_upload', size: 4 * 1024 * 1024, content_type: 'image/png' });
    assert.equal(first.ok, true);
    const second = await a.request({
      type: 'media_upload',
      size: 4 * 1024 * 1024,
      content_type: 'image/png',
    });
    assert.equal(second.error?.code, 'rate_limited', 'past 6 MiB a day');
  });

  test('sends keep their order when one lists media (checked before it is sequenced)', async () => {
    const a = await s.client('md-order');
    const { reply } = await upload(a, randomBytes(100));
    const conv = 'dm:md-order:md-y';
    const replies = await Promise.all([
      a.request({ type: 'send', conv, cmid: 'o1', kind: 'text', body: '1' }),
      a.request({ type: 'send', conv, cmid: 'o2', kind: 'image', body: '', media: [reply.media] }),
      a.request({ type: 'send', conv, cmid: 'o3', kind: 'text', body: '3' }),
    ]);
    assert.deepEqual(
      replies.map((r) => r.seq),
      [1, 2, 3],
    );
  });
});

describe('media URLs expire, and unreferenced uploads are collected', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({
      mediaDownloadUrlSeconds: 1,
      mediaUnreferencedMs: 1500,
      mediaSweepIntervalMs: 500,
    });
  });
  after(() => s.stop());

  test('an expired download URL is refused', async () => {
    const a = await s.client('mx-a');
    const { reply } = await upload(a, randomBytes(64));
    await a.request({
      type: 'send',
      conv: 'dm:mx-a:mx-b',
      cmid: 'k',
      kind: 'file',
      body: '',
      media: [reply.media],
    });
    const d = await a.request({ type: 'media_download', media: reply.media });
    await sleep(2200);
    const res = await fetch(d.url);
    await res.arrayBuffer();
    assert.equal(res.status, 403);
  });

  test('an upload no message listed is deleted after mediaUnreferencedMs', async () => {
    const a = await s.client('mx-gc');
    const { reply } = await upload(a, randomBytes(64));
    assert.equal((await download(a, reply.media)).status, 200);
    const deadline = Date.now() + 10_000;
    let code: string | undefined;
    while (Date.now() < deadline && code !== 'not_found') {
      await sleep(300);
      code = (await a.request({ type: 'media_download', media: reply.media })).error?.code;
    }
    assert.equal(code, 'not_found', 'collected');
  });
});
