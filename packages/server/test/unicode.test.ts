// Unicode at the edge: a string with a lone surrogate would be acknowledged and delivered live as
// sent but read back as U+FFFD from UTF-8 storage, so it is refused; well-formed text, astral
// characters included, round-trips exactly through send, live delivery, sync and history.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { historyAll, startServer, syncAll, type TestServer } from './helpers.js';

let s: TestServer;
before(async () => {
  s = await startServer();
});
after(() => s.stop());

const LONE_SURROGATE = /"(body|cmid)" must be well-formed Unicode/;

test('a body or cmid with a lone surrogate is refused with bad_request and nothing is stored', async () => {
  const a = await s.client('lone-a');
  const b = await s.client('lone-b');
  const conv = 'dm:lone-a:lone-b';
  const frames = [
    { cmid: 'c1', body: 'half an emoji \ud83d' },
    { cmid: 'c2', body: '\ude00 low first' },
    { cmid: 'c3\udc00', body: 'fine body' },
    { cmid: '\ud800', body: '\udfff\ud800' },
  ];
  for (const f of frames) {
    // JSON.stringify writes the lone surrogate as a `\udXXX` escape: the only way it reaches the wire.
    const r = await a.request({ type: 'send', conv, kind: 'text', ...f });
    assert.equal(r.ok, false, JSON.stringify(f));
    assert.equal(r.error.code, 'bad_request');
    assert.match(r.error.message, LONE_SURROGATE);
  }
  // A well-formed send afterwards gets seq 1: nothing before it took a seq.
  const ok = await a.request({ type: 'send', conv, cmid: 'after', kind: 'text', body: 'fine' });
  assert.equal(ok.seq, 1);
  // The first message event Bob gets live is that one (inbox fan-out follows the ack).
  assert.equal((await b.nextEvent((f) => f.type === 'message')).cmid, 'after');
  assert.deepEqual(
    (await historyAll(b, conv)).map((m) => m.cmid),
    ['after'],
  );
  assert.deepEqual(
    (await syncAll(b)).filter((e) => e.type === 'message').map((m) => m.cmid),
    ['after'],
  );
});

test('surrogate pairs and other non-BMP text round-trip exactly through send, live delivery, sync and history', async () => {
  const a = await s.client('uni-a');
  const b = await s.client('uni-b');
  const conv = 'dm:uni-a:uni-b';
  const bodies = [
    '😀👍🏽👩‍👩‍👧‍👦 🇫🇷',
    'clef 𝄞, CJK ext-B 𠀀𪚥, math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, last code point \u{10ffff}',
    'RTL \u202eשלום\u202c, BOM \ufeff, ZWJ a\u200db, U+2028 \u2028, non-character \uffff, NUL \u0000',
  ];
  const cmids = ['emoji-😀', '𝄞', 'plain'];
  for (let i = 0; i < bodies.length; i++) {
    const r = await a.request({ type: 'send', conv, cmid: cmids[i], kind: 'text', body: bodies[i] });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.seq, i + 1);
  }
  const live = [];
  for (let i = 0; i < bodies.length; i++) live.push(await b.nextEvent((f) => f.type === 'message'));
  const expected = bodies.map((body, i) => [cmids[i], body]);
  assert.deepEqual(
    live.map((m) => [m.cmid, m.body]),
    expected,
  );
  const synced = (await syncAll(b)).filter((e) => e.type === 'message');
  assert.deepEqual(
    synced.map((m) => [m.cmid, m.body]),
    expected,
  );
  assert.deepEqual(
    (await historyAll(a, conv)).map((m) => [m.cmid, m.body]),
    expected,
  );
  // The sender recognises its own sends by cmid after a resync.
  const own = (await syncAll(a)).filter((e) => e.type === 'message' && e.from === 'uni-a');
  assert.deepEqual(
    own.map((m) => m.cmid),
    cmids,
  );
});
