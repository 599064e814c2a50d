import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { randomBytes } from './bytes.js';
import { MAX_GAP, MAX_SKIPPED_KEYS, ReceivingChain, SendingChain, stepChain } from './chain.js';

test('a chain step is HMAC-SHA256(CK, 0x01) for the message and HMAC-SHA256(CK, 0x02) for the next key', () => {
  const ck = randomBytes(32);
  const { seed, next } = stepChain(ck);
  assert.deepEqual(seed, hmac(sha256, ck, Uint8Array.of(1)));
  assert.deepEqual(next, hmac(sha256, ck, Uint8Array.of(2)));
});

test('the receiving chain derives the sender’s seeds in any order, each once', () => {
  const ck = randomBytes(32);
  const sending = new SendingChain(ck.slice());
  const receiving = new ReceivingChain(ck.slice());
  const sent = [0, 1, 2, 3].map(() => sending.next());
  for (const i of [2, 0, 3, 1]) {
    const prepared = receiving.prepare(i);
    assert.deepEqual(prepared.seed, sent[i]!.seed);
    prepared.commit();
  }
  assert.equal(receiving.skippedCount, 0);
  assert.throws(() => receiving.prepare(1), { code: 'replay' });
});

test('a discarded lookup leaves the chain as it was', () => {
  const ck = randomBytes(32);
  const sending = new SendingChain(ck.slice());
  const receiving = new ReceivingChain(ck.slice());
  const sent = [0, 1, 2, 3, 4, 5].map(() => sending.next());
  receiving.prepare(5).discard();
  assert.equal(receiving.index, 0);
  assert.equal(receiving.skippedCount, 0);
  const prepared = receiving.prepare(5);
  assert.deepEqual(prepared.seed, sent[5]!.seed);
});

test('skipped keys are bounded and a message too far ahead is refused', () => {
  const receiving = new ReceivingChain(randomBytes(32));
  assert.throws(() => receiving.prepare(MAX_GAP + 1), { code: 'too_far_ahead' });
  receiving.prepare(MAX_GAP).commit();
  receiving.prepare(MAX_GAP + 200).commit();
  assert.equal(receiving.skippedCount, MAX_SKIPPED_KEYS);
  // The oldest skipped keys went first.
  assert.throws(() => receiving.prepare(0), { code: 'replay' });
  receiving.prepare(MAX_GAP + 199).commit();
});

test('chains survive JSON', () => {
  const ck = randomBytes(32);
  const sending = new SendingChain(ck.slice());
  const receiving = new ReceivingChain(ck.slice());
  const sent = [0, 1, 2].map(() => sending.next());
  receiving.prepare(2).commit();
  const restored = ReceivingChain.fromJSON(JSON.parse(JSON.stringify(receiving.toJSON())));
  assert.deepEqual(restored.prepare(0).seed, sent[0]!.seed);
  const restoredSending = SendingChain.fromJSON(JSON.parse(JSON.stringify(sending.toJSON())));
  assert.equal(restoredSending.next().index, 3);
});
