// Request/reply correlation and the offline request queue on their own: a recording channel,
// replies handed in by the test, node:test's fake clock for timeouts.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { type Channel, Correlator, RequestQueue } from '../src/correlator.js';
import { ParleyError } from '../src/errors.js';
import type { Frame } from '../src/util.js';

function recorder(correlator: Correlator): Channel & { frames: Frame[] } {
  const frames: Frame[] = [];
  return {
    frames,
    write(frame) {
      frames.push(frame);
      correlator.wrote(frame);
      return true;
    },
  };
}

const settle = <T>(p: Promise<T>) =>
  p.then(
    (v) => ({ ok: true as const, v }),
    (e: ParleyError) => ({ ok: false as const, e }),
  );

beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout'] });
});
afterEach(() => {
  mock.timers.reset();
});

test('ids are fresh, writes are numbered, a reply is taken once and carries its write number', async () => {
  const c = new Correlator();
  const ch = recorder(c);
  const a = settle(c.call(ch, { type: 'ping' }, 1000));
  ch.write({ type: 'receipt', conv: 'x', kind: 'read', seq: 1 });
  const b = settle(c.call(ch, { type: 'sync', after: 0 }, 1000));
  assert.deepEqual(
    ch.frames.map((f) => f.id),
    ['1', undefined, '2'],
  );
  assert.equal(c.writeNo, 3);
  const entry = c.take('2');
  assert.equal(entry?.writeNo, 3, 'confirms every write up to the third');
  assert.equal(c.take('2'), undefined, 'a repeated reply finds nothing');
  entry?.onReply({ type: 'reply', id: '2', ok: false, error: { code: 'gone', message: 'old' } });
  c.take('1')?.onReply({ type: 'reply', id: '1', ok: true, server_time: 5 });
  assert.deepEqual(await a, { ok: true, v: { type: 'reply', id: '1', ok: true, server_time: 5 } });
  const rb = await b;
  assert.equal(rb.ok ? '' : rb.e.code, 'gone');
});

test('call: times out and forgets the id; failAll rejects everything in flight with the given error', async () => {
  const c = new Correlator();
  const ch = recorder(c);
  const slow = settle(c.call(ch, { type: 'ping' }, 100));
  mock.timers.tick(100);
  const r = await slow;
  assert.equal(r.ok ? '' : r.e.code, 'timeout');
  assert.equal(c.take('1'), undefined);
  const lost = [settle(c.call(ch, { type: 'a' }, 100)), settle(c.call(ch, { type: 'b' }, 100))];
  c.failAll(new ParleyError('disconnected', 'gone away'));
  for (const p of lost) {
    const x = await p;
    assert.equal(x.ok ? '' : x.e.code, 'disconnected');
  }
  mock.timers.tick(1000); // their timers were cleared: nothing else happens
});

test('RequestQueue: requests made offline wait and go out in order; the timeout counts from the call', async () => {
  const c = new Correlator();
  const q = new RequestQueue(c, 1000);
  const a = settle(q.request('history', { conv: 'x' }, null));
  mock.timers.tick(600);
  const b = settle(q.request('conversations', {}, null));
  const ch = recorder(c);
  q.flush(ch);
  assert.deepEqual(
    ch.frames.map((f) => f.type),
    ['history', 'conversations'],
  );
  mock.timers.tick(400);
  const ra = await a;
  assert.equal(ra.ok ? '' : ra.e.code, 'timeout', 'a waited 600 ms offline, then 400 ms for its reply');
  assert.equal(c.take(ch.frames[0]?.id as string), undefined, 'its id is forgotten');
  c.take(ch.frames[1]?.id as string)?.onReply({ type: 'reply', ok: true, conversations: [] });
  assert.deepEqual(await b, { ok: true, v: { type: 'reply', ok: true, conversations: [] } });
});

test('RequestQueue: a request lost with its connection rejects (not retried); rejectAll empties the queue', async () => {
  const c = new Correlator();
  const q = new RequestQueue(c, 1000);
  const ch = recorder(c);
  const sent = settle(q.request('block', { user: 'm' }, ch));
  const queued = settle(q.request('unblock', { user: 'm' }, null));
  c.failAll(new ParleyError('disconnected', 'lost'));
  q.rejectAll(new ParleyError('closed', 'client closed'));
  const [rs, rq] = [await sent, await queued];
  assert.equal(rs.ok ? '' : rs.e.code, 'disconnected');
  assert.equal(rq.ok ? '' : rq.e.code, 'closed');
  q.flush(ch);
  assert.equal(ch.frames.length, 1, 'nothing left to write');
});
