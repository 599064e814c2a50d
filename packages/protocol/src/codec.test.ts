import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeServerFrame, encodeFrame, inboxEventHead, inboxEventTail } from './codec.js';
import type { MessageEvent, ReplyError, ServerFrame } from './frames.js';

describe('encodeFrame', () => {
  it('writes one JSON object and leaves out undefined fields', () => {
    const text = encodeFrame({
      type: 'reply',
      id: undefined,
      ok: false,
      error: { code: 'bad_request', message: 'x' },
    });
    assert.equal(text, '{"type":"reply","ok":false,"error":{"code":"bad_request","message":"x"}}');
  });
});

describe('inboxEventHead and inboxEventTail', () => {
  it('puts any inbox number between its parts and decodes as the event with that number', () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.string(),
        fc.option(fc.nat({ max: 1000 }), { nil: undefined }),
        (inbox, body, replyTo) => {
          const m = {
            conv: 'dm:alice:bob',
            seq: 3,
            ts: 1795000000123,
            from: 'alice',
            from_device: 'phone-1',
            cmid: 'c1',
            kind: 'text',
            body,
            ...(replyTo === undefined ? {} : { reply_to: replyTo }),
          };
          const text = `${inboxEventHead('message')}${inbox},${inboxEventTail(m)}`;
          assert.deepEqual(decodeServerFrame(text), { type: 'message', inbox, ...m });
        },
      ),
    );
    const r = { conv: 'g:1', user: 'bob', kind: 'read' as const, seq: 9, ts: 5 };
    const text = `${inboxEventHead('receipt')}7,${inboxEventTail(r)}`;
    assert.deepEqual(decodeServerFrame(text), { type: 'receipt', inbox: 7, ...r });
  });
});

describe('decodeServerFrame', () => {
  it('decodes events and replies', () => {
    const msg: MessageEvent = {
      type: 'message',
      inbox: 311,
      conv: 'dm:alice:bob',
      seq: 18,
      ts: 1795000000123,
      from: 'alice',
      from_device: 'phone-1',
      cmid: 'c1',
      kind: 'text',
      body: 'hi bob',
      reply_to: 17,
    };
    assert.deepEqual(decodeServerFrame(encodeFrame(msg)), msg);
    const err: ReplyError = {
      type: 'reply',
      id: 'c7',
      ok: false,
      error: { code: 'forbidden', message: 'no' },
    };
    const decoded = decodeServerFrame(encodeFrame(err));
    assert.deepEqual(decoded, err);
    // The union narrows on type and ok.
    if (decoded?.type === 'reply' && decoded.ok === false) assert.equal(decoded.error.code, 'forbidden');
    else assert.fail('expected a failed reply');
  });
  it('keeps unknown event types and fields (forward compatibility)', () => {
    const f = decodeServerFrame('{"type":"future_event","x":1}') as unknown as Record<string, unknown>;
    assert.deepEqual(f, { type: 'future_event', x: 1 });
  });
  it('returns null for anything but an object with a string type', () => {
    for (const t of [
      '',
      'nope',
      '{',
      'null',
      '1',
      '"s"',
      '[]',
      '[{"type":"x"}]',
      '{}',
      '{"type":1}',
      '{"type":null}',
    ]) {
      assert.equal(decodeServerFrame(t), null, t);
    }
  });
  it('never throws on any text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (t) => {
          const f: ServerFrame | null = decodeServerFrame(t);
          if (f !== null) assert.equal(typeof f.type, 'string');
        },
      ),
      { numRuns: 1000 },
    );
  });
});
