// The webhook dead-letter store and `parley webhooks dlq` against a running embedded server: a
// delivery the endpoint keeps refusing is retried, then dead-lettered; the operator lists and
// shows it, replays it once the endpoint works (same event id), and purges.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { SOURCE_CLI } from './child-server.js';
import { startServer, type TestServer } from './helpers.js';
import { until, WEBHOOK_SECRET, WebhookReceiver } from './webhooks/receiver.js';

const run = promisify(execFile);
const receiver = new WebhookReceiver();
let s: TestServer;

before(async () => {
  s = await startServer({
    webhookUrls: [await receiver.start()],
    webhookSecret: WEBHOOK_SECRET,
    webhookRetries: 2,
    webhookRetryMaxMs: 20,
    webhookEvents: ['message.stored'],
  });
});
after(async () => {
  await s.stop();
  await receiver.stop();
});

const dlq = async (...args: string[]) =>
  (
    await run(process.execPath, [...SOURCE_CLI, 'webhooks', 'dlq', ...args], {
      env: { PATH: process.env.PATH ?? '', PARLEY_DATA_DIR: s.dataDir, PARLEY_LOG_LEVEL: 'error' },
    })
  ).stdout;

test('retries, then the dead-letter store; list, show, replay with the same event id, purge', async () => {
  receiver.answer = (_e, res) => res.writeHead(500).end();
  const alice = await s.client('wd-alice');
  const conv = 'dm:wd-alice:wd-alice';
  const sent = await alice.request({ type: 'send', conv, cmid: 'c1', kind: 'text', body: 'x' });
  const eventId = `message.stored:${conv}:${sent.seq}`;

  // The CLI reads the store from its own process, as an operator's would.
  let listed = await dlq('list');
  for (let i = 0; i < 100 && !listed.includes(eventId); i++) {
    await new Promise((r) => setTimeout(r, 100));
    listed = await dlq('list');
  }
  const line = listed.split('\n').find((l) => l.includes(eventId));
  assert.ok(line, listed);
  assert.match(
    line,
    new RegExp(`${receiver.url} {2}message.stored {2}${eventId} {2}attempts=3 {2}answered 500`),
  );
  assert.equal(receiver.attempts.filter((a) => a.id === eventId).length, 3);
  const id = line.split(/\s+/)[0]!;
  const shown = JSON.parse(await dlq('show', id));
  assert.equal(shown.delivery.event.id, eventId);
  assert.equal(shown.delivery.key, conv);

  receiver.answer = (_e, res) => res.end('ok');
  assert.match(await dlq('replay', id), /replayed 1 letter/);
  await until('the replayed event', () => receiver.accepted.some((e) => e.id === eventId));
  assert.match(await dlq('list'), /no dead letters/);
  assert.match(await dlq('purge', '--all'), /purged 0 letter/);
  await assert.rejects(dlq('show', 'nope'), /no such letter/);
  assert.deepEqual(receiver.violations, []);
});
