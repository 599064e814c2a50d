import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { fromBase64, toBase64 } from './bytes.js';
import { E2eeError } from './errors.js';
import { DeviceIdentity, parseIdentityKey, verifySignedPrekey } from './identity.js';
import { MemoryKeyStorage } from './key-storage.js';

test('the identity key is the Ed25519 public key followed by the X25519 public key', () => {
  const identity = DeviceIdentity.generate();
  const bytes = fromBase64(identity.identityKey, 64);
  assert.deepEqual(bytes.subarray(0, 32), identity.signingPublicKey);
  assert.deepEqual(bytes.subarray(32), identity.dhPublicKey);
  const parsed = parseIdentityKey(identity.identityKey);
  assert.deepEqual(parsed.signing, identity.signingPublicKey);
  assert.deepEqual(parsed.dh, identity.dhPublicKey);
  assert.throws(() => parseIdentityKey(toBase64(new Uint8Array(33))), E2eeError);
});

test('the signed prekey verifies under its identity only, and only with the domain prefix', () => {
  const identity = DeviceIdentity.generate();
  const other = DeviceIdentity.generate();
  const spk = identity.signedPrekey;
  assert.ok(verifySignedPrekey(identity.identityKey, spk));
  assert.ok(!verifySignedPrekey(other.identityKey, spk));
  assert.ok(!verifySignedPrekey(identity.identityKey, { ...spk, key: other.signedPrekey.key }));
  assert.ok(!verifySignedPrekey(identity.identityKey, { ...spk, signature: 'garbage' }));
  // A bare signature over the key (no context) must not pass: signatures are domain-separated.
  const bare = identity.sign(fromBase64(spk.key));
  assert.ok(ed25519.verify(bare, fromBase64(spk.key), identity.signingPublicKey));
  assert.ok(!verifySignedPrekey(identity.identityKey, { ...spk, signature: toBase64(bare) }));
});

test('one-time prekeys get increasing ids across batches, and keysUpload has the protocol fields', () => {
  const identity = DeviceIdentity.generate();
  const first = identity.generateOneTimePrekeys(3);
  const second = identity.generateOneTimePrekeys(2);
  assert.deepEqual(
    [...first, ...second].map((p) => p.key_id),
    [1, 2, 3, 4, 5],
  );
  assert.equal(identity.oneTimePrekeyCount, 5);
  const upload = identity.keysUpload(first);
  assert.deepEqual(Object.keys(upload).sort(), ['identity_key', 'one_time_prekeys', 'signed_prekey']);
  assert.deepEqual(Object.keys(upload.signed_prekey).sort(), ['key', 'key_id', 'signature']);
  assert.equal(upload.one_time_prekeys.length, 3);
  assert.deepEqual(identity.publicBundle(), {
    identity_key: upload.identity_key,
    signed_prekey: upload.signed_prekey,
  });
});

test('a consumed one-time prekey is gone; the previous signed prekey survives one rotation', () => {
  const identity = DeviceIdentity.generate();
  const [prekey] = identity.generateOneTimePrekeys(1);
  const peer = x25519.utils.randomSecretKey();
  const peerPublic = x25519.getPublicKey(peer);
  const shared = identity.agreeOneTimePrekey(prekey!.key_id, peerPublic);
  assert.deepEqual(shared, x25519.getSharedSecret(peer, fromBase64(prekey!.key)));
  identity.consumeOneTimePrekey(prekey!.key_id);
  assert.throws(() => identity.agreeOneTimePrekey(prekey!.key_id, peerPublic), { code: 'unknown_prekey' });

  const first = identity.signedPrekey;
  const second = identity.rotateSignedPrekey();
  assert.equal(second.key_id, first.key_id + 1);
  assert.ok(verifySignedPrekey(identity.identityKey, second));
  identity.agreeSignedPrekey(first.key_id, peerPublic);
  identity.rotateSignedPrekey();
  assert.throws(() => identity.agreeSignedPrekey(first.key_id, peerPublic), { code: 'unknown_prekey' });
});

test('an identity survives JSON storage with its keys and remaining prekeys', async () => {
  const identity = DeviceIdentity.generate();
  const prekeys = identity.generateOneTimePrekeys(3);
  identity.consumeOneTimePrekey(prekeys[1]!.key_id);
  identity.rotateSignedPrekey();
  const storage = new MemoryKeyStorage();
  await storage.set('identity', identity.toJSON());
  const restored = DeviceIdentity.fromJSON(await storage.get('identity'));
  assert.equal(restored.identityKey, identity.identityKey);
  assert.deepEqual(restored.signedPrekey, identity.signedPrekey);
  assert.equal(restored.oneTimePrekeyCount, 2);
  assert.ok(!restored.hasOneTimePrekey(prekeys[1]!.key_id));
  assert.deepEqual(
    restored.generateOneTimePrekeys(1).map((p) => p.key_id),
    [4],
  );
  assert.throws(() => DeviceIdentity.fromJSON({ v: 1 }), E2eeError);
});

test('MemoryKeyStorage stores copies and deletes', async () => {
  const storage = new MemoryKeyStorage();
  const value = { a: [1, 2] };
  await storage.set('x', value);
  value.a.push(3);
  assert.deepEqual(await storage.get('x'), { a: [1, 2] });
  await storage.delete('x');
  assert.equal(await storage.get('x'), undefined);
  assert.deepEqual(storage.names(), []);
});
