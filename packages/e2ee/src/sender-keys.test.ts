import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBase64, fromUtf8, toBase64, utf8 } from './bytes.js';
import {
  decodeSenderKeyEnvelope,
  encodeSenderKeyEnvelope,
  parseSenderKeyDistribution,
  SenderKey,
  SenderKeyRing,
} from './sender-keys.js';

const text = (bytes: Uint8Array) => fromUtf8(bytes);

function setup() {
  const key = SenderKey.create('g:1', 'alice', 'a1');
  const ring = new SenderKeyRing('g:1');
  assert.ok(ring.install('alice', 'a1', key.distribution()));
  return { key, ring };
}

test('members decrypt with the distributed key; the envelope carries device, key id, iteration, nonce, signature', () => {
  const { key, ring } = setup();
  const envelope = key.encrypt(utf8('hello group'));
  assert.deepEqual(Object.keys(envelope).sort(), ['c', 'd', 'i', 'k', 'nc', 'sg', 'v']);
  assert.equal(envelope.d, 'a1');
  assert.equal(envelope.k, key.keyId);
  const body = encodeSenderKeyEnvelope(envelope);
  assert.equal(text(ring.decrypt('alice', decodeSenderKeyEnvelope(body))), 'hello group');
});

test('out of order, replays, and messages older than the distribution', () => {
  const { key, ring } = setup();
  const early = key.encrypt(utf8('early'));
  const late = new SenderKeyRing('g:1');
  late.install('alice', 'a1', key.distribution());
  const envelopes = ['0', '1', '2'].map((t) => key.encrypt(utf8(t)));
  assert.equal(text(ring.decrypt('alice', envelopes[2]!)), '2');
  assert.equal(text(ring.decrypt('alice', envelopes[0]!)), '0');
  assert.throws(() => ring.decrypt('alice', envelopes[0]!), { code: 'replay' });
  assert.equal(text(ring.decrypt('alice', envelopes[1]!)), '1');
  assert.equal(text(ring.decrypt('alice', early)), 'early');
  assert.throws(() => late.decrypt('alice', early), { code: 'key_not_shared' });
  assert.equal(text(late.decrypt('alice', envelopes[1]!)), '1');
});

test('the signature binds ciphertext, header, conversation and sender user', () => {
  const { key, ring } = setup();
  const envelope = key.encrypt(utf8('signed'));
  const flipped = fromBase64(envelope.c);
  flipped[3]! ^= 0x80;
  assert.throws(() => ring.decrypt('alice', { ...envelope, c: toBase64(flipped) }), {
    code: 'bad_signature',
  });
  assert.throws(() => ring.decrypt('alice', { ...envelope, nc: toBase64(new Uint8Array(12)) }), {
    code: 'bad_signature',
  });
  // The same key installed under another user (or another conversation) does not verify.
  const other = new SenderKeyRing('g:1');
  other.install('mallory', 'a1', key.distribution());
  assert.throws(() => other.decrypt('mallory', envelope), { code: 'bad_signature' });
  const otherConv = new SenderKeyRing('g:2');
  otherConv.install('alice', 'a1', { ...key.distribution(), conv: 'g:2' });
  assert.throws(() => otherConv.decrypt('alice', envelope), { code: 'bad_signature' });
  assert.throws(() => ring.install('alice', 'a1', { ...key.distribution(), conv: 'g:2' }), {
    code: 'bad_input',
  });
  assert.equal(text(ring.decrypt('alice', envelope)), 'signed');
});

test('rotation gives a new key id that the old distribution cannot read', () => {
  const { key, ring } = setup();
  const old = key.encrypt(utf8('old'));
  const rotated = key.rotate();
  assert.notEqual(rotated.keyId, key.keyId);
  const distribution = rotated.distribution();
  const fresh = rotated.encrypt(utf8('new'));
  assert.throws(() => ring.decrypt('alice', fresh), { code: 'missing_sender_key' });
  assert.ok(ring.install('alice', 'a1', distribution));
  assert.equal(text(ring.decrypt('alice', fresh)), 'new');
  assert.equal(text(ring.decrypt('alice', old)), 'old');
  // A key id already held is not replaced (the held copy may stand earlier in the chain).
  assert.ok(!ring.install('alice', 'a1', rotated.distribution()));
  ring.forget('alice');
  assert.ok(!ring.has('alice', 'a1', rotated.keyId));
});

test('sender keys and rings survive JSON', () => {
  const { key, ring } = setup();
  const first = key.encrypt(utf8('first'));
  const restoredKey = SenderKey.fromJSON(JSON.parse(JSON.stringify(key.toJSON())));
  const restoredRing = SenderKeyRing.fromJSON(JSON.parse(JSON.stringify(ring.toJSON())));
  assert.equal(text(restoredRing.decrypt('alice', restoredKey.encrypt(utf8('second')))), 'second');
  assert.equal(text(restoredRing.decrypt('alice', first)), 'first');
});

test('malformed envelopes and distributions are bad_input', () => {
  assert.throws(() => decodeSenderKeyEnvelope('{"v":2}'), { code: 'bad_input' });
  assert.throws(() => decodeSenderKeyEnvelope('[]'), { code: 'bad_input' });
  assert.throws(() => decodeSenderKeyEnvelope('{"v":1,"d":"a","k":-1,"i":0,"nc":"","c":"","sg":""}'), {
    code: 'bad_input',
  });
  const { key } = setup();
  assert.throws(() => parseSenderKeyDistribution({ ...key.distribution(), chain_key: 'AAAA' }), {
    code: 'bad_input',
  });
});
