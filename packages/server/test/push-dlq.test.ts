// The push dead-letter store and `parley push dlq` against a running embedded server: a job the
// provider keeps refusing is retried, then dead-lettered; the operator lists and shows it, then,
// once the device has a working registration, replays it, and the device gets its notification.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { SOURCE_CLI } from './child-server.js';
import { sleep, startServer, type TestServer, tempDir } from './helpers.js';
import { endpointId, localPushService } from './push/push-service.js';
import type { WebPushTestServer } from './push/web-push-server.js';

const run = promisify(execFile);

let s: TestServer;
let push: WebPushTestServer;
const files = tempDir('parley-dlq-');

before(async () => {
  const service = await localPushService(files.dir, 0);
  push = service.push;
  s = await startServer({ ...service.config, pushRetries: 2 });
});
after(async () => {
  await s.stop();
  await push.close();
  files.remove();
});

const dlq = async (...args: string[]) =>
  (
    await run(process.execPath, [...SOURCE_CLI, 'push', 'dlq', ...args], {
      env: { PATH: process.env.PATH ?? '', PARLEY_DATA_DIR: s.dataDir, PARLEY_LOG_LEVEL: 'error' },
    })
  ).stdout;

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('retries, then the dead-letter store; list, show, replay to a working registration, purge', async () => {
  const failing = push.subscribe('server-error');
  const bob = await s.client('dl-bob', 'phone');
  await bob.request({ type: 'push_register', id: 'p', platform: 'webpush', subscription: failing });
  bob.close();
  await bob.closed();
  const alice = await s.client('dl-alice');
  const sent = await alice.request({
    type: 'send',
    id: 's',
    conv: 'dm:dl-alice:dl-bob',
    cmid: 'c1',
    kind: 'text',
    body: 'x',
  });

  const listed = await until('a dead letter', async () => {
    const out = await dlq('list');
    return out.includes('dl-bob/phone') ? out : undefined;
  });
  const failingId = endpointId(failing.endpoint);
  assert.equal(push.requests.filter((r) => r.id === failingId).length, 0, 'the service accepted nothing');
  const line = listed.split('\n').find((l) => l.includes('dl-bob/phone'))!;
  assert.match(line, new RegExp(`webpush {2}dl-bob/phone {2}dm:dl-alice:dl-bob#${sent.seq} {2}attempts=3`));
  const id = line.split(/\s+/)[0]!;
  const shown = JSON.parse(await dlq('show', id));
  assert.equal(shown.job.user, 'dl-bob');
  assert.equal(shown.job.seq, sent.seq);

  // The device registers again (a working subscription); the replayed job goes to it.
  const working = push.subscribe('ok');
  const phone = await s.client('dl-bob', 'phone');
  await phone.request({ type: 'push_register', id: 'p', platform: 'webpush', subscription: working });
  phone.close();
  await phone.closed();
  assert.match(await dlq('replay', id), /replayed 1 letter/);
  const workingId = endpointId(working.endpoint);
  const n = await until('the replayed notification', async () =>
    push.requests.find((r) => r.id === workingId),
  );
  assert.equal(JSON.parse(n.plaintext!).seq, sent.seq);
  assert.match(await dlq('list'), /no dead letters/);

  assert.match(await dlq('purge', '--all'), /purged 0 letter/);
  await assert.rejects(dlq('show', 'nope'), /no such letter/);
});
