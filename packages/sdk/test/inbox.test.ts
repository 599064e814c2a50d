import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InboxSequencer } from '../src/inbox.js';
import { range } from './helpers.js';

function make(cursor = 0, maxHeld?: number, open?: () => boolean) {
  const out: number[] = [];
  const seq = new InboxSequencer<{ inbox: number }>(cursor, (e) => out.push(e.inbox), {
    ...(maxHeld !== undefined ? { maxHeld } : {}),
    ...(open ? { open } : {}),
  });
  const offer = (...ns: number[]) => {
    for (const n of ns) seq.offer({ inbox: n });
  };
  return { seq, out, offer };
}

test('repeats are dropped, the next number is delivered, later ones wait for the gap to fill', () => {
  const { seq, out, offer } = make();
  offer(1, 1, 2);
  assert.deepEqual(out, [1, 2]);
  offer(4, 5);
  assert.deepEqual(out, [1, 2], 'held above the gap');
  assert.equal(seq.hasGap, true);
  assert.equal(seq.known, 5);
  assert.equal(seq.heldCount, 2);
  offer(2, 3);
  assert.deepEqual(out, [1, 2, 3, 4, 5]);
  assert.equal(seq.cursor, 5);
  assert.equal(seq.hasGap, false);
  offer(0, -1, 1.5, Number.NaN);
  assert.deepEqual(out, [1, 2, 3, 4, 5], 'invalid numbers ignored');
});

test('noteHead makes a gap without any event; jumpTo skips and drains held events', () => {
  const { seq, out, offer } = make(10);
  seq.noteHead(12);
  assert.equal(seq.hasGap, true);
  offer(14, 15, 13);
  assert.deepEqual(out, []);
  seq.jumpTo(12);
  assert.deepEqual(out, [13, 14, 15]);
  assert.equal(seq.cursor, 15);
  seq.jumpTo(3);
  assert.equal(seq.cursor, 15, 'jumpTo never moves back');
  seq.reset(2);
  assert.equal(seq.cursor, 2);
  assert.equal(seq.hasGap, false);
});

test('held events beyond the limit are dropped and recovered from a later offer (sync)', () => {
  const { out, offer } = make(0, 2);
  offer(3, 4, 5, 6);
  offer(1, 2);
  assert.deepEqual(out, [1, 2, 3, 4], '5 and 6 were not held');
  offer(5, 6);
  assert.deepEqual(out, [1, 2, 3, 4, 5, 6]);
});

test('while the gate is shut nothing is delivered and the cursor stays; reopening resumes in order', () => {
  let open = true;
  const { seq, out, offer } = make(0, undefined, () => open);
  offer(1);
  open = false;
  offer(2, 3);
  assert.deepEqual(out, [1]);
  assert.equal(seq.cursor, 1);
  open = true;
  offer(2);
  assert.deepEqual(out, [1, 2, 3], 'the held 3 follows');
  assert.equal(seq.heldCount, 0);
});

test('property: any interleaving of live events (with repeats and losses) plus a sync yields 1..n exactly once, in order', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 40 }).chain((n) =>
        fc.record({
          n: fc.constant(n),
          live: fc.array(fc.integer({ min: 1, max: Math.max(1, n) }), { maxLength: 120 }),
          start: fc.integer({ min: 0, max: n }),
          syncPage: fc.integer({ min: 1, max: 10 }),
        }),
      ),
      ({ n, live, start, syncPage }) => {
        const { seq, out, offer } = make(start);
        const check = () => {
          assert.deepEqual(out, range(start + 1, seq.cursor), 'delivered is always a gap-free prefix');
        };
        // live events and sync pages interleaved
        let synced = seq.cursor;
        for (const [i, x] of live.filter((v) => v <= n).entries()) {
          offer(x);
          check();
          if (i % 3 === 0 && synced < n) {
            const from = seq.cursor;
            for (const m of range(from + 1, Math.min(n, from + syncPage))) offer(m);
            synced = seq.cursor;
            check();
          }
        }
        // the final sync: pages from the cursor until caught up
        while (seq.cursor < n) {
          const from = seq.cursor;
          for (const m of range(from + 1, Math.min(n, from + syncPage))) offer(m);
          check();
        }
        assert.deepEqual(out, range(start + 1, n));
        assert.equal(seq.hasGap, false);
      },
    ),
  );
});
