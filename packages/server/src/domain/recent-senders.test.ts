import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { StoredMessage } from '../ports/message-store.js';
import { RecentSenders } from './recent-senders.js';

const msg = (seq: number, from: string, kind = 'text'): StoredMessage => ({
  conv: 'g:x',
  seq,
  ts: seq,
  from,
  from_device: 'd',
  cmid: `c${seq}`,
  kind,
  body: '',
});

test('answers exactly or not at all: whenever it answers, it matches a scan of the log', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ from: fc.constantFrom('a', 'b', 'c'), system: fc.boolean() }), { maxLength: 80 }),
      fc.integer({ min: 0, max: 30 }),
      fc.array(fc.tuple(fc.nat(90), fc.nat(90)), { maxLength: 20 }),
      fc.integer({ min: 1, max: 8 }),
      (sends, start, queries, batchSize) => {
        const log = sends.map((s, i) => msg(start + i + 1, s.from, s.system ? 'system' : 'text'));
        const r = new RecentSenders();
        for (let i = 0; i < log.length; i += batchSize) r.committed(log.slice(i, i + batchSize));
        for (const [x, y] of queries) {
          const [after, upto] = x <= y ? [x, y] : [y, x];
          const got = r.sendersIn('g:x', after, upto);
          if (got === undefined) continue;
          const want = [
            ...new Set(
              log.filter((m) => m.seq > after && m.seq <= upto && m.kind !== 'system').map((m) => m.from),
            ),
          ];
          assert.deepEqual([...got].sort(), want.sort());
        }
      },
    ),
  );
});

test('answers from memory in the common cases: the latest sends, and ranges the other side never sent in', () => {
  const r = new RecentSenders();
  r.committed([msg(1, 'a'), msg(2, 'a'), msg(3, 'b')]);
  assert.deepEqual(r.sendersIn('g:x', 1, 3)?.sort(), ['a', 'b']);
  assert.deepEqual(r.sendersIn('g:x', 3, 3), []);
  assert.equal(r.sendersIn('g:x', -1, 3), undefined, 'before tracking began: read the log');
  assert.equal(r.sendersIn('dm:a:b', 0, 1), undefined, 'never seen: read the log');
});
