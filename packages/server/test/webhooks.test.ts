// Webhooks, in every mode: events reach a signed HTTP endpoint with stable ids; one conversation's
// events arrive in order, also when an endpoint fails and deliveries are retried; a delivery that
// keeps failing is dead-lettered and the conversation's next events go on; bodies stay out unless
// asked for; presence and device changes arrive once per change.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Frame, startServer, type TestServer } from './helpers.js';
import { type ReceivedEvent, until, WEBHOOK_SECRET, WebhookReceiver } from './webhooks/receiver.js';

const fast = { webhookSecret: WEBHOOK_SECRET, webhookRetryMaxMs: 40, webhookTimeoutMs: 2_000 };

describe('webhooks', () => {
  const receiver = new WebhookReceiver();
  let s: TestServer;
  before(async () => {
    s = await startServer({ webhookUrls: [await receiver.start()], webhookRetries: 3, ...fast });
  });
  after(async () => {
    await s.stop();
    await receiver.stop();
  });

  test('messages and group changes arrive signed, metadata only, in order, once per id', async () => {
    const alice = await s.client('wh-alice');
    await s.client('wh-bob');
    const dm = 'dm:wh-alice:wh-bob';
    const sent = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        alice.request({ type: 'send', kind: 'text', conv: dm, cmid: `c${i}`, body: `secret ${i}` }),
      ),
    );
    const created = await alice.request({ type: 'create_group', name: 'Hooks', members: ['wh-bob'] });
    assert.equal(created.ok, true, JSON.stringify(created));
    const g = created.conv as string;
    assert.equal((await alice.request({ type: 'update_group', conv: g, name: 'Hooks 2' })).ok, true);
    const inGroup = await alice.request({ type: 'send', kind: 'text', conv: g, cmid: 'g1', body: 'hello' });

    await until('20 message events of the dm', () => receiver.of('message.stored', dm).length === 20);
    await until('the group events', () => receiver.of('group.changed', g).length === 2);
    await until('the group message', () => receiver.of('message.stored', g).length === 1);
    const events = receiver.of('message.stored', dm);
    assert.deepEqual(
      events.map((e) => e.data.seq),
      sent.map((r) => r.seq),
    );
    for (const e of events) {
      assert.equal(e.id, `message.stored:${dm}:${e.data.seq}`);
      assert.deepEqual(Object.keys(e.data).sort(), ['conv', 'from', 'kind', 'seq']);
      assert.equal(e.data.from, 'wh-alice');
      assert.equal(typeof e.ts, 'number');
    }
    const changes = receiver.of('group.changed', g);
    assert.deepEqual(
      changes.map((e) => [e.data.seq, e.data.actor]),
      [
        [1, 'wh-alice'],
        [2, 'wh-alice'],
      ],
    );
    assert.equal((changes[1]!.data.change as Frame).name, 'Hooks 2', JSON.stringify(changes[1]));
    assert.equal(receiver.of('message.stored', g)[0]!.data.seq, inGroup.seq);
    // Each message made one event, however many processes stored its recipients' inbox entries.
    const attemptsPerId = new Map<string, number>();
    for (const a of receiver.attempts) attemptsPerId.set(a.id, (attemptsPerId.get(a.id) ?? 0) + 1);
    for (const e of events) assert.equal(attemptsPerId.get(e.id), 1, `${e.id} posted once`);
    assert.deepEqual(receiver.violations, []);
  });

  test('a failing endpoint is retried, and later events of the conversation wait their turn', async () => {
    const carol = await s.client('wh-carol');
    const dm = 'dm:wh-carol:wh-carol';
    let failures = 0;
    receiver.answer = (e, res) => {
      // The first two attempts of the conversation's first event fail.
      if (e.data.conv === dm && e.data.seq === 1 && failures < 2) {
        failures++;
        res.writeHead(503, { 'retry-after': '0' }).end();
        return;
      }
      res.end('ok');
    };
    try {
      const sent = [];
      for (let i = 0; i < 5; i++)
        sent.push(
          await carol.request({ type: 'send', kind: 'text', conv: dm, cmid: `r${i}`, body: `m${i}` }),
        );
      await until('5 events after retries', () => receiver.of('message.stored', dm).length === 5);
      assert.equal(failures, 2);
      assert.deepEqual(
        receiver.of('message.stored', dm).map((e) => e.data.seq),
        sent.map((r) => r.seq),
        'the first event, retried, still came first',
      );
    } finally {
      receiver.answer = (_e, res) => res.end('ok');
    }
  });

  test('a delivery that keeps failing is dead-lettered after its retries; the next ones go on', async () => {
    const dave = await s.client('wh-dave');
    const dm = 'dm:wh-dave:wh-dave';
    receiver.answer = (e, res) => {
      if (e.data.conv === dm && e.data.seq === 1) res.writeHead(500).end();
      else res.end('ok');
    };
    try {
      await dave.request({ type: 'send', kind: 'text', conv: dm, cmid: 'x1', body: 'doomed' });
      const next = await dave.request({ type: 'send', kind: 'text', conv: dm, cmid: 'x2', body: 'fine' });
      await until('the second event', () => receiver.of('message.stored', dm).length === 1);
      const tries = receiver.attempts.filter((a) => a.id === `message.stored:${dm}:1`);
      assert.equal(tries.length, 4, 'one attempt and three retries');
      assert.equal(receiver.of('message.stored', dm)[0]!.data.seq, next.seq);
    } finally {
      receiver.answer = (_e, res) => res.end('ok');
    }
  });

  test('presence and device changes: one event per change', async () => {
    const erin = await s.client('wh-erin', 'phone');
    await until('erin online', () => receiver.of('user.online').some((e) => e.data.user === 'wh-erin'));
    const tablet = await s.client('wh-erin', 'tablet');
    const reg = await tablet.request({
      type: 'push_register',
      platform: 'fcm',
      token: 'fcm-token-of-the-tablet',
    });
    assert.equal(reg.ok, true, JSON.stringify(reg));
    await until('device registered', () =>
      receiver.of('device.registered').some((e) => e.data.user === 'wh-erin'),
    );
    assert.equal((await erin.request({ type: 'revoke_device', device: 'tablet' })).ok, true);
    await until('device revoked', () => receiver.of('device.revoked').some((e) => e.data.user === 'wh-erin'));
    erin.close();
    await until('erin offline', () => receiver.of('user.offline').some((e) => e.data.user === 'wh-erin'));
    const mine = (type: string) => receiver.of(type).filter((e: ReceivedEvent) => e.data.user === 'wh-erin');
    // The tablet came and went while the phone stayed: erin went online once and offline once.
    assert.equal(mine('user.online').length, 1);
    assert.equal(mine('user.offline').length, 1);
    assert.deepEqual(mine('device.registered')[0]!.data, { user: 'wh-erin', device: 'tablet' });
    assert.deepEqual(mine('device.revoked')[0]!.data, { user: 'wh-erin', device: 'tablet' });
    assert.deepEqual(receiver.violations, []);
  });
});

describe('webhooks with bodies, for one event type', () => {
  const receiver = new WebhookReceiver();
  let s: TestServer;
  before(async () => {
    s = await startServer({
      webhookUrls: [await receiver.start()],
      webhookEvents: ['message.stored'],
      webhookIncludeBodies: true,
      ...fast,
    });
  });
  after(async () => {
    await s.stop();
    await receiver.stop();
  });

  test('message bodies are included when asked for, and other event types are not sent', async () => {
    const frank = await s.client('wb-frank');
    await s.client('wb-gina');
    const dm = 'dm:wb-frank:wb-gina';
    await frank.request({ type: 'send', kind: 'text', conv: dm, cmid: 'b1', body: 'with body' });
    await until('the event', () => receiver.of('message.stored', dm).length === 1);
    assert.equal(receiver.of('message.stored', dm)[0]!.data.body, 'with body');
    assert.deepEqual([...new Set(receiver.accepted.map((e) => e.type))], ['message.stored']);
  });
});
