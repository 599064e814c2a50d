// The one request/reply correlator: answers reach their waiter once, deadlines settle with the
// chosen answer, and shutting down settles whatever still waits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Correlator } from './correlator.js';

test('an answer reaches its waiter once; unknown or late answers are ignored', async () => {
  const c = new Correlator<string, number>();
  const a = c.wait('a');
  const b = c.wait('b');
  assert.equal(c.resolve('b', 2), true);
  assert.equal(c.resolve('b', 3), false, 'already answered');
  assert.equal(c.resolve('x', 9), false, 'nobody waits');
  assert.equal(c.reject('a', new Error('no')), true);
  await assert.rejects(a, /no/);
  assert.equal(await b, 2);
  assert.equal(c.size, 0);
});

test('past its deadline a request settles with the chosen answer, and a late one is ignored', async () => {
  const c = new Correlator<number, string>();
  const p = c.wait(1, { ms: 20, answer: () => 'timed out' });
  assert.equal(await p, 'timed out');
  assert.equal(c.resolve(1, 'late'), false);
});

test('settleAll answers or fails everything still waiting, and clears its deadlines', async () => {
  const c = new Correlator<number, string>();
  const answered = [c.wait(1, { ms: 60_000, answer: () => 'never' }), c.wait(2)];
  c.settleAll({ answer: (id) => `stopped ${id}` });
  assert.deepEqual(await Promise.all(answered), ['stopped 1', 'stopped 2']);
  const failed = c.wait(3);
  c.settleAll({ err: new Error('gone') });
  await assert.rejects(failed, /gone/);
  assert.equal(c.size, 0);
});
