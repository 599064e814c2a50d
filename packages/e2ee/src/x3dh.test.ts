import assert from 'node:assert/strict';
import { test } from 'node:test';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, fromBase64, toBase64, utf8 } from './bytes.js';
import { E2eeError } from './errors.js';
import { DeviceIdentity, type PrekeyBundle } from './identity.js';
import { deriveResponderSecret, initiateX3dh, respondX3dh } from './x3dh.js';

/** Bob's bundle as `keys_claim` would return it, with or without a one-time prekey. */
function bundleOf(bob: DeviceIdentity, withOneTime: boolean): PrekeyBundle {
  const bundle: PrekeyBundle = { device: 'b1', ...bob.publicBundle() };
  if (withOneTime) bundle.one_time_prekey = bob.generateOneTimePrekeys(1)[0]!;
  return bundle;
}

/** Bob's private keys, read from his stored JSON (for computing the spec's formula independently). */
function secretsOf(bob: DeviceIdentity) {
  const json = bob.toJSON() as {
    dh: string;
    signed_prekey: { secret: string };
    one_time_prekeys: { key_id: number; secret: string }[];
  };
  return {
    ik: fromBase64(json.dh),
    spk: fromBase64(json.signed_prekey.secret),
    opk: (id: number) => fromBase64(json.one_time_prekeys.find((p) => p.key_id === id)!.secret),
  };
}

for (const withOneTime of [true, false]) {
  test(`both sides derive SK and AD by the spec's formula (${withOneTime ? 'with' : 'without'} a one-time prekey)`, () => {
    const alice = DeviceIdentity.generate();
    const bob = DeviceIdentity.generate();
    const bundle = bundleOf(bob, withOneTime);
    const secrets = secretsOf(bob);
    const init = initiateX3dh(alice, bundle);
    assert.equal(init.header.one_time_prekey_id, bundle.one_time_prekey?.key_id);

    const ek = fromBase64(init.header.ephemeral_key);
    const dh = [
      x25519.getSharedSecret(secrets.spk, alice.dhPublicKey), // DH1 = DH(IKa, SPKb)
      x25519.getSharedSecret(secrets.ik, ek), // DH2 = DH(EKa, IKb)
      x25519.getSharedSecret(secrets.spk, ek), // DH3 = DH(EKa, SPKb)
    ];
    if (withOneTime) dh.push(x25519.getSharedSecret(secrets.opk(bundle.one_time_prekey!.key_id), ek));
    const expected = hkdf(
      sha256,
      concat(new Uint8Array(32).fill(0xff), ...dh),
      new Uint8Array(32),
      utf8('Parley E2EE v1 X3DH'),
      32,
    );
    assert.deepEqual(init.sharedKey, expected);
    assert.deepEqual(init.associatedData, concat(alice.identityKeyBytes, bob.identityKeyBytes));

    const resp = respondX3dh(bob, init.header);
    assert.deepEqual(resp.sharedKey, expected);
    assert.deepEqual(resp.associatedData, init.associatedData);
  });
}

test('a signed prekey not signed by the identity key is refused', () => {
  const alice = DeviceIdentity.generate();
  const bob = DeviceIdentity.generate();
  const mallory = DeviceIdentity.generate();
  const forged = { ...bundleOf(bob, true), signed_prekey: mallory.signedPrekey };
  assert.throws(
    () => initiateX3dh(alice, forged),
    (e: unknown) => e instanceof E2eeError && e.code === 'bad_signature',
  );
  const swapped = { ...bundleOf(bob, true), identity_key: mallory.identityKey };
  assert.throws(() => initiateX3dh(alice, swapped), { code: 'bad_signature' });
});

test('the responder consumes the one-time prekey; deriving alone does not', () => {
  const alice = DeviceIdentity.generate();
  const bob = DeviceIdentity.generate();
  const bundle = bundleOf(bob, true);
  const { header } = initiateX3dh(alice, bundle);
  deriveResponderSecret(bob, header);
  assert.ok(bob.hasOneTimePrekey(header.one_time_prekey_id!));
  respondX3dh(bob, header);
  assert.ok(!bob.hasOneTimePrekey(header.one_time_prekey_id!));
  assert.throws(() => respondX3dh(bob, header), { code: 'unknown_prekey' });
  assert.throws(
    () => respondX3dh(bob, { ...header, one_time_prekey_id: undefined as never, signed_prekey_id: 99 }),
    {
      code: 'unknown_prekey',
    },
  );
});

test('different ephemeral keys give different session keys', () => {
  const alice = DeviceIdentity.generate();
  const bob = DeviceIdentity.generate();
  const bundle = bundleOf(bob, false);
  const a = initiateX3dh(alice, bundle);
  const b = initiateX3dh(alice, bundle);
  assert.notEqual(toBase64(a.sharedKey), toBase64(b.sharedKey));
});
