import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.stop());

test('alice sends to bob, bob receives it live, syncs it, history has it', async () => {
  const alice = await s.client('alice');
  const bob = await s.client('bob');
  const r = await alice.request({
    type: 'send',
    conv: 'dm:alice:bob',
    cmid: 'c1',
    kind: 'text',
    body: 'hi bob',
  });
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.seq, 1);
  const ev = await bob.nextEvent((f) => f.type === 'message');
  assert.equal(ev.body, 'hi bob');
  assert.equal(ev.inbox, 1);
  const sync = await bob.request({ type: 'sync', after: 0 });
  assert.equal(sync.events.length, 1);
  const hist = await alice.request({ type: 'history', conv: 'dm:alice:bob' });
  assert.equal(hist.messages[0].body, 'hi bob');
});
