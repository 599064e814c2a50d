// Per-reply byte budgets and per-user work budgets: a read reply stops at the byte budget with
// `more: true` and paging still returns everything exactly once; reads, fan-out (a send costs its
// recipients) and typing are charged as work, past which requests are refused with
// `rate_limited` while other users are unaffected.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Frame, historyAll, sleep, startServer, syncAll, type TestServer } from './helpers.js';

const REPLY_BYTES = 256 * 1024;
const BIG = 'x'.repeat(60 * 1024);

describe('replies stop at the byte budget', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ maxReplyBytes: REPLY_BYTES, sendBurst: 100 });
  });
  after(() => s.stop());

  test('sync and history of large messages come in pages under the budget, each message once', async () => {
    const a = await s.client('rb-a');
    const conv = 'dm:rb-a:rb-b';
    for (let i = 0; i < 20; i++) {
      const r = await a.request({ type: 'send', conv, cmid: `m${i}`, kind: 'text', body: `${i}:${BIG}` });
      assert.equal(r.ok, true, JSON.stringify(r).slice(0, 200));
    }
    const b = await s.client('rb-b');
    const first = await b.request({ type: 'sync', after: 0, limit: 1000 });
    assert.equal(first.more, true, 'stopped at the budget');
    assert.ok(first.events.length >= 1 && first.events.length < 20, `${first.events.length} events`);
    assert.ok(JSON.stringify(first).length <= REPLY_BYTES + 1024, 'the reply is within the budget');
    const all = await syncAll(b);
    assert.deepEqual(
      all.map((e: Frame) => e.cmid),
      Array.from({ length: 20 }, (_, i) => `m${i}`),
    );

    const newest = await b.request({ type: 'history', conv, limit: 200 });
    assert.equal(newest.more, true);
    assert.ok(JSON.stringify(newest).length <= REPLY_BYTES + 1024);
    assert.equal(newest.messages.at(-1).seq, 20, 'the newest page ends at the newest message');
    const seqs: number[] = newest.messages.map((m: Frame) => m.seq);
    let before = seqs[0]!;
    for (;;) {
      const page = await b.request({ type: 'history', conv, before, limit: 200 });
      seqs.unshift(...page.messages.map((m: Frame) => m.seq));
      if (!page.more) break;
      before = page.messages[0].seq;
    }
    assert.deepEqual(
      seqs,
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.deepEqual(
      (await historyAll(b, conv)).map((m) => m.seq),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
  });

  test('the HTTP history response stops at the budget too', async () => {
    const a = await s.client('rh-a');
    const conv = 'dm:rh-a:rh-a';
    for (let i = 0; i < 8; i++)
      await a.request({ type: 'send', conv, cmid: `h${i}`, kind: 'text', body: BIG });
    const res = await fetch(`${s.httpUrl}/v1/conversations/${conv}/messages?limit=200`, {
      headers: { authorization: `Bearer ${await s.token('rh-a')}` },
    });
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.ok(text.length <= REPLY_BYTES + 1024, `${text.length} bytes`);
    assert.equal(JSON.parse(text).more, true);
  });
});

describe('work budgets', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({
      fanoutBurst: 60,
      fanoutRatePerSecond: 10,
      typingBurst: 8,
      typingRatePerSecond: 1,
      groupAddsPerRecipientBurst: 1000,
    });
  });
  after(() => s.stop());

  test('reads are charged by rows: big reads put the budget in debt, other users go on', async () => {
    const r = await startServer({ readBurst: 300, readRatePerSecond: 10 });
    try {
      const a = await r.client('wb-a');
      const other = await r.client('wb-o');
      const replies = [];
      for (let i = 0; i < 20; i++) replies.push(await a.request({ type: 'sync', after: 0, limit: 1000 }));
      // Each is charged its bound first (more than the burst: the whole burst), and what it did
      // not use is given back: with an empty inbox each costs 2, so none is refused.
      assert.ok(replies.every((x) => x.ok));
      const conv = 'dm:wb-a:wb-a';
      const sent = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          a.request({ type: 'send', conv, cmid: `r${i}`, kind: 't', body: 'x' }),
        ),
      );
      assert.ok(sent.every((x) => x.ok));
      const first = await a.request({ type: 'history', conv, limit: 200 });
      assert.equal(first.messages.length, 200, 'the first read of 200 rows fits the burst of 300');
      // Each costs ~205 (a request, 200 rows, 4 units of bytes), charged once done: the second
      // starts with ~95 left and ends ~110 in debt, so the third is refused until that is repaid.
      const second = await a.request({ type: 'history', conv, limit: 200 });
      assert.equal(second.ok, true);
      const third = await a.request({ type: 'history', conv, limit: 10 });
      assert.equal(third.ok, false, 'the budget is in debt');
      assert.equal(third.error.code, 'rate_limited');
      assert.ok(third.error.retry_after_ms > 5000, `repaid at 10 a second: ${third.error.retry_after_ms} ms`);
      assert.equal((await other.request({ type: 'sync', after: 0, limit: 100 })).ok, true, 'another user');
    } finally {
      await r.stop();
    }
  });

  test('a send costs its recipients: a big group exhausts the fan-out budget, a direct chat less so', async () => {
    const a = await s.client('wf-a');
    const members = Array.from({ length: 19 }, (_, i) => `wf-m${i}`);
    const g = await a.request({ type: 'create_group', name: 'big', members });
    assert.equal(g.ok, true, JSON.stringify(g));
    // The group change cost 20 of 60; each message costs 20 more.
    const sends: Frame[] = [];
    for (let i = 0; i < 4; i++)
      sends.push(await a.request({ type: 'send', conv: g.conv, cmid: `g${i}`, kind: 't', body: 'x' }));
    assert.deepEqual(
      sends.map((r) => r.ok || r.error.code),
      [true, true, 'rate_limited', 'rate_limited'],
    );
    // Operators see the refusals, by budget, on the admin listener.
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
    assert.match(metrics, /parley_budget_refusals_total\{budget="fanout"\} [1-9]/);
    const history = await a.request({ type: 'history', conv: g.conv, limit: 50 });
    assert.equal(
      history.messages.length,
      3,
      'the group change and two messages; the refused were not stored',
    );
  });

  test('typing is charged by frames delivered, and past the budget nothing is delivered', async () => {
    const a = await s.client('wt-a');
    const b = await s.client('wt-b');
    const members = ['wt-b', 'wt-c', 'wt-d'];
    const convs: string[] = [];
    for (let i = 0; i < 4; i++)
      convs.push((await a.request({ type: 'create_group', name: `t${i}`, members })).conv);
    const replies = [];
    for (const conv of convs) replies.push(await a.request({ type: 'typing', conv, state: 'start' }));
    // 3 frames each: the burst of 8 allows two conversations.
    assert.deepEqual(
      replies.map((r) => r.ok || r.error.code),
      [true, true, 'rate_limited', 'rate_limited'],
    );
    await sleep(50);
    assert.equal(b.events.filter((e) => e.type === 'typing').length, 2);
  });
});

describe('account requests have a budget of their own', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ accountBurst: 5, accountRatePerSecond: 1 });
  });
  after(() => s.stop());

  test('push_register, mute and devices past the burst are rate_limited; other users are not', async () => {
    const a = await s.client('ab-a');
    const codes: string[] = [];
    for (let i = 0; i < 12; i++) {
      const frames = [
        { type: 'push_register', platform: 'fcm', token: `t${i}` },
        { type: 'mute', conv: 'dm:ab-a:ab-b' },
        { type: 'devices' },
      ];
      const r = await a.request(frames[i % 3]!);
      codes.push(r.ok ? 'ok' : r.error.code);
    }
    assert.deepEqual(codes.slice(0, 5), ['ok', 'ok', 'ok', 'ok', 'ok']);
    assert.ok(codes.slice(5).filter((c) => c === 'rate_limited').length >= 5, codes.join(','));
    const b = await s.client('ab-b');
    assert.equal((await b.request({ type: 'devices' })).ok, true, 'another user is unaffected');
    assert.equal((await a.request({ type: 'ping' })).ok, true, 'other kinds of work still go');
  });
});
