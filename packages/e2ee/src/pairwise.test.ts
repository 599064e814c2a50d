import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromBase64, fromUtf8, toBase64, utf8 } from './bytes.js';
import { DeviceIdentity, type PrekeyBundle } from './identity.js';
import {
  decodePairwiseEnvelope,
  encodePairwiseEnvelope,
  PairwiseChannel,
  PairwiseSession,
} from './pairwise.js';

function pair() {
  const alice = DeviceIdentity.generate();
  const bob = DeviceIdentity.generate();
  const bundle: PrekeyBundle = {
    device: 'b1',
    ...bob.publicBundle(),
    one_time_prekey: bob.generateOneTimePrekeys(1)[0]!,
  };
  const aliceChannel = new PairwiseChannel();
  aliceChannel.addInitiated(PairwiseSession.initiate(alice, bundle));
  return {
    alice,
    bob,
    aliceChannel,
    bobChannel: new PairwiseChannel(),
    oneTimeId: bundle.one_time_prekey!.key_id,
  };
}

const text = (bytes: Uint8Array) => fromUtf8(bytes);

test('messages flow both ways; the X3DH header rides along until the responder replies', () => {
  const { alice, bob, aliceChannel, bobChannel, oneTimeId } = pair();
  const first = aliceChannel.encrypt(utf8('hello'));
  const second = aliceChannel.encrypt(utf8('again'));
  assert.ok(decodePairwiseEnvelope(first).h);
  assert.ok(decodePairwiseEnvelope(second).h);
  const received = bobChannel.decrypt(bob, first);
  assert.equal(text(received.plaintext), 'hello');
  assert.ok(received.newSession);
  assert.equal(received.remoteIdentityKey, alice.identityKey);
  assert.ok(!bob.hasOneTimePrekey(oneTimeId));
  assert.equal(text(bobChannel.decrypt(bob, second).plaintext), 'again');

  const reply = bobChannel.encrypt(utf8('hi alice'));
  assert.equal(decodePairwiseEnvelope(reply).h, undefined);
  const back = aliceChannel.decrypt(alice, reply);
  assert.equal(text(back.plaintext), 'hi alice');
  assert.equal(back.remoteIdentityKey, bob.identityKey);
  assert.equal(decodePairwiseEnvelope(aliceChannel.encrypt(utf8('x'))).h, undefined);
});

test('out-of-order delivery works, a replay is refused, and keys differ per message', () => {
  const { bob, aliceChannel, bobChannel } = pair();
  const bodies = ['0', '1', '2', '3'].map((t) => aliceChannel.encrypt(utf8(t)));
  assert.equal(text(bobChannel.decrypt(bob, bodies[2]!).plaintext), '2');
  assert.equal(text(bobChannel.decrypt(bob, bodies[0]!).plaintext), '0');
  assert.equal(text(bobChannel.decrypt(bob, bodies[3]!).plaintext), '3');
  assert.equal(text(bobChannel.decrypt(bob, bodies[1]!).plaintext), '1');
  for (const body of bodies) assert.throws(() => bobChannel.decrypt(bob, body), { code: 'replay' });
});

test('a tampered ciphertext or header is refused and changes nothing; the genuine one still decrypts', () => {
  const { bob, aliceChannel, bobChannel, oneTimeId } = pair();
  const body = aliceChannel.encrypt(utf8('genuine'));
  const envelope = decodePairwiseEnvelope(body);
  const ciphertext = fromBase64(envelope.c);
  ciphertext[0]! ^= 1;
  assert.throws(
    () => bobChannel.decrypt(bob, encodePairwiseEnvelope({ ...envelope, c: toBase64(ciphertext) })),
    {
      code: 'decrypt_failed',
    },
  );
  // The forged start did not burn the one-time prekey.
  assert.ok(bob.hasOneTimePrekey(oneTimeId));
  assert.throws(() => bobChannel.decrypt(bob, encodePairwiseEnvelope({ ...envelope, n: 1 })), {
    code: 'decrypt_failed',
  });
  assert.throws(() => bobChannel.decrypt(bob, 'bm90IGpzb24='), { code: 'bad_input' });
  assert.equal(text(bobChannel.decrypt(bob, body).plaintext), 'genuine');
});

test('a message on an unknown session without a header is refused as no_session', () => {
  const { bob, aliceChannel, bobChannel } = pair();
  const envelope = decodePairwiseEnvelope(aliceChannel.encrypt(utf8('x')));
  delete envelope.h;
  assert.throws(() => bobChannel.decrypt(bob, encodePairwiseEnvelope(envelope)), { code: 'no_session' });
  assert.throws(() => new PairwiseChannel().encrypt(utf8('x')), { code: 'no_session' });
});

test('two devices that start sessions with each other at once both keep working', () => {
  const alice = DeviceIdentity.generate();
  const bob = DeviceIdentity.generate();
  const aliceChannel = new PairwiseChannel();
  const bobChannel = new PairwiseChannel();
  aliceChannel.addInitiated(PairwiseSession.initiate(alice, { device: 'b1', ...bob.publicBundle() }));
  bobChannel.addInitiated(PairwiseSession.initiate(bob, { device: 'a1', ...alice.publicBundle() }));
  const fromAlice = aliceChannel.encrypt(utf8('a→b'));
  const fromBob = bobChannel.encrypt(utf8('b→a'));
  assert.equal(text(bobChannel.decrypt(bob, fromAlice).plaintext), 'a→b');
  assert.equal(text(aliceChannel.decrypt(alice, fromBob).plaintext), 'b→a');
  for (let i = 0; i < 3; i++) {
    assert.equal(text(bobChannel.decrypt(bob, aliceChannel.encrypt(utf8(`a${i}`))).plaintext), `a${i}`);
    assert.equal(text(aliceChannel.decrypt(alice, bobChannel.encrypt(utf8(`b${i}`))).plaintext), `b${i}`);
  }
});

test('sessions survive JSON on both sides mid-conversation', () => {
  const { alice, bob, aliceChannel, bobChannel } = pair();
  bobChannel.decrypt(bob, aliceChannel.encrypt(utf8('one')));
  const skipped = aliceChannel.encrypt(utf8('skipped'));
  const restoredBob = PairwiseChannel.fromJSON(JSON.parse(JSON.stringify(bobChannel.toJSON())));
  const restoredAlice = PairwiseChannel.fromJSON(JSON.parse(JSON.stringify(aliceChannel.toJSON())));
  assert.equal(text(restoredBob.decrypt(bob, restoredAlice.encrypt(utf8('three'))).plaintext), 'three');
  assert.equal(text(restoredBob.decrypt(bob, skipped).plaintext), 'skipped');
  assert.equal(text(restoredAlice.decrypt(alice, restoredBob.encrypt(utf8('back'))).plaintext), 'back');
});
