/**
 * The conformance suite of the `KeyDirectory` port: every adapter runs it through its own runner
 * and must pass it. It pins down the contract written in the doc comments of
 * `ports/key-directory.ts`: keys read back exactly as uploaded, a one-time prekey is handed out
 * once and then the signed prekey alone, only devices with an identity key and a signed prekey are
 * claimed, key ids already stored and keys past `MAX_ONE_TIME_PREKEYS` are dropped, a new identity
 * key replaces the whole bundle, and `remove` forgets the device. Concurrent claims (through two
 * store instances over the same data, where the adapter has them) never share a one-time prekey.
 *
 * What the port leaves open is not checked: which one-time prekey a claim hands out, the order of
 * the bundles, and duplicate key ids within one upload (the edge refuses them).
 *
 * The suite never runs on its own: an adapter's test file calls `keyDirectorySuite`. One store is
 * shared by the suite's tests, each working on users of its own, with ids unique to the run.
 *
 * @module
 */
import assert from 'node:assert/strict';
import {
  type ClaimedBundle,
  type KeyDirectory,
  MAX_ONE_TIME_PREKEYS,
  type PublicPrekey,
  type SignedPublicPrekey,
} from '../../ports/key-directory.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface KeyDirectoryHarness extends Closable {
  store: KeyDirectory;
  /**
   * A second store instance over the same data (another process, as far as the store can tell),
   * when the adapter can open one: the concurrency tests spread their calls over both.
   */
  other?: () => KeyDirectory;
}

/** Keys as a device would publish them (opaque strings to the server). */
const signed = (keyId: number, tag = ''): SignedPublicPrekey => ({
  keyId,
  key: `spk-${keyId}${tag}`,
  signature: `sig-${keyId}${tag}`,
});
const prekeys = (from: number, n: number, tag = ''): PublicPrekey[] =>
  Array.from({ length: n }, (_, i) => ({ keyId: from + i, key: `otk-${from + i}${tag}` }));

const byDevice = (a: ClaimedBundle, b: ClaimedBundle) =>
  a.device < b.device ? -1 : a.device > b.device ? 1 : 0;

/** Registers the `KeyDirectory` conformance tests for one adapter. */
export function keyDirectorySuite(
  name: string,
  make: () => Promise<KeyDirectoryHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'KeyDirectory', adapter: name, make, options }, ({ h, check, id }) => {
    const user = (label = 'u') => id(label);
    const device = (label = 'd') => id(label);
    /** Claims `n` times, one after the other; the one-time prekeys handed out, in order. */
    const claimAll = async (u: string, n: number) => {
      const out: (PublicPrekey | undefined)[] = [];
      for (let i = 0; i < n; i++) out.push((await h().store.claim(u))[0]?.oneTimePrekey);
      return out;
    };

    check('upload then claim hands out the bundle exactly as uploaded', async () => {
      const u = user();
      const d = device();
      const n = await h().store.upload(u, d, {
        identityKey: 'identity-A',
        signedPrekey: signed(7),
        oneTimePrekeys: prekeys(100, 1),
      });
      assert.equal(n, 1);
      assert.deepEqual(await h().store.claim(u), [
        {
          device: d,
          identityKey: 'identity-A',
          signedPrekey: { keyId: 7, key: 'spk-7', signature: 'sig-7' },
          oneTimePrekey: { keyId: 100, key: 'otk-100' },
        },
      ]);
      assert.deepEqual(await h().store.claim(user()), [], 'another user has no keys');
    });

    check('each one-time prekey is handed out once, then the signed prekey alone', async () => {
      const u = user();
      const d = device();
      await h().store.upload(u, d, {
        identityKey: 'id',
        signedPrekey: signed(1),
        oneTimePrekeys: prekeys(1, 3),
      });
      const got = await claimAll(u, 3);
      assert.deepEqual(
        got.map((k) => k?.keyId).sort(),
        [1, 2, 3],
        'three claims did not get the three one-time prekeys',
      );
      for (const k of got) assert.equal(k?.key, `otk-${k?.keyId}`);
      assert.equal(await h().store.count(u, d), 0);
      const [last, ...rest] = await h().store.claim(u);
      assert.deepEqual(rest, []);
      assert.deepEqual(last, { device: d, identityKey: 'id', signedPrekey: signed(1) });
      assert.ok(last && !('oneTimePrekey' in last), 'a bundle without a one-time prekey names one');
      // The signed prekey alone, again and again.
      assert.deepEqual(await h().store.claim(u), [{ device: d, identityKey: 'id', signedPrekey: signed(1) }]);
    });

    check('a device without an identity key or a signed prekey is not claimed', async () => {
      const u = user();
      const [noSigned, noIdentity, full] = [device('a'), device('b'), device('c')];
      await h().store.upload(u, noSigned, { identityKey: 'id-a', oneTimePrekeys: prekeys(1, 2) });
      await h().store.upload(u, noIdentity, { signedPrekey: signed(2), oneTimePrekeys: prekeys(1, 2) });
      await h().store.upload(u, full, { identityKey: 'id-c', signedPrekey: signed(3) });
      assert.deepEqual(await h().store.claim(u), [
        { device: full, identityKey: 'id-c', signedPrekey: signed(3) },
      ]);
      // The devices left out kept their one-time prekeys.
      assert.equal(await h().store.count(u, noSigned), 2);
      assert.equal(await h().store.count(u, noIdentity), 2);
      assert.deepEqual(await h().store.devicesWithKeys(u), new Set([noSigned, full]));
    });

    check("a claim hands out one bundle per device, each with that device's own keys", async () => {
      const u = user();
      const [phone, laptop] = [device('phone'), device('laptop')];
      await h().store.upload(u, phone, {
        identityKey: 'id-phone',
        signedPrekey: signed(1, 'p'),
        oneTimePrekeys: prekeys(10, 1, 'p'),
      });
      await h().store.upload(u, laptop, {
        identityKey: 'id-laptop',
        signedPrekey: signed(1, 'l'),
        oneTimePrekeys: prekeys(10, 2, 'l'),
      });
      const bundles = (await h().store.claim(u)).sort(byDevice);
      const [first, second] = [phone, laptop].sort();
      assert.deepEqual(
        bundles.map((b) => b.device),
        [first, second],
      );
      const of = (d: string) => bundles.find((b) => b.device === d)!;
      assert.equal(of(phone).identityKey, 'id-phone');
      assert.deepEqual(of(phone).signedPrekey, signed(1, 'p'));
      assert.deepEqual(of(phone).oneTimePrekey, { keyId: 10, key: 'otk-10p' });
      assert.equal(of(laptop).identityKey, 'id-laptop');
      assert.match(of(laptop).oneTimePrekey?.key ?? '', /^otk-1[01]l$/);
      assert.equal(await h().store.count(u, phone), 0);
      assert.equal(await h().store.count(u, laptop), 1);
    });

    check('count is per device, and uploads add to the one-time prekeys left', async () => {
      const u = user();
      const [d, other] = [device(), device()];
      assert.equal(await h().store.count(u, d), 0);
      assert.equal(await h().store.upload(u, d, { identityKey: 'id', oneTimePrekeys: prekeys(1, 2) }), 2);
      assert.equal(await h().store.upload(u, d, { oneTimePrekeys: prekeys(3, 3) }), 5);
      assert.equal(await h().store.count(u, d), 5);
      assert.equal(await h().store.count(u, other), 0);
      assert.equal(await h().store.count(user(), d), 0);
      // An upload without one-time prekeys answers how many are left.
      assert.equal(await h().store.upload(u, d, { signedPrekey: signed(1) }), 5);
    });

    check('a key id already stored is ignored: the stored key stays', async () => {
      const u = user();
      const d = device();
      await h().store.upload(u, d, {
        identityKey: 'id',
        signedPrekey: signed(1),
        oneTimePrekeys: prekeys(1, 2),
      });
      const n = await h().store.upload(u, d, {
        oneTimePrekeys: [
          { keyId: 2, key: 'replacement' },
          { keyId: 3, key: 'otk-3' },
        ],
      });
      assert.equal(n, 3);
      const got = await claimAll(u, 3);
      assert.deepEqual(got.map((k) => `${k?.keyId}:${k?.key}`).sort(), ['1:otk-1', '2:otk-2', '3:otk-3']);
    });

    check(
      `past MAX_ONE_TIME_PREKEYS (${MAX_ONE_TIME_PREKEYS}) the rest of an upload is dropped`,
      async () => {
        const u = user();
        const d = device();
        await h().store.upload(u, d, { identityKey: 'id', signedPrekey: signed(1) });
        let n = 0;
        // Uploads of 200 (the most one frame carries) until past the limit.
        for (let from = 0; from < MAX_ONE_TIME_PREKEYS + 100; from += 200)
          n = await h().store.upload(u, d, { oneTimePrekeys: prekeys(from, 200) });
        assert.equal(n, MAX_ONE_TIME_PREKEYS);
        assert.equal(await h().store.count(u, d), MAX_ONE_TIME_PREKEYS);
        // The first ones were kept: key MAX - 1 is stored, so uploading it again adds nothing…
        await h().store.claim(u);
        const again = await h().store.upload(u, d, { oneTimePrekeys: prekeys(MAX_ONE_TIME_PREKEYS - 1, 1) });
        // …unless the claim just took it (which key a claim takes is the store's choice).
        assert.ok(again === MAX_ONE_TIME_PREKEYS - 1 || again === MAX_ONE_TIME_PREKEYS, `count ${again}`);
        // One claimed: room for exactly one more.
        assert.equal(
          await h().store.upload(u, d, { oneTimePrekeys: prekeys(10_000, 3) }),
          MAX_ONE_TIME_PREKEYS,
        );
        assert.equal(await h().store.count(u, d), MAX_ONE_TIME_PREKEYS);
      },
    );

    check(
      'the same identity key again keeps the bundle; a signed prekey replaces the stored one',
      async () => {
        const u = user();
        const d = device();
        await h().store.upload(u, d, {
          identityKey: 'id',
          signedPrekey: signed(1),
          oneTimePrekeys: prekeys(1, 2),
        });
        assert.equal(await h().store.upload(u, d, { identityKey: 'id' }), 2);
        assert.equal(await h().store.upload(u, d, { signedPrekey: signed(2) }), 2);
        const [b] = await h().store.claim(u);
        assert.equal(b?.identityKey, 'id');
        assert.deepEqual(b?.signedPrekey, signed(2));
        assert.ok(b?.oneTimePrekey, 'the one-time prekeys went with the signed prekey');
        assert.equal(await h().store.count(u, d), 1);
      },
    );

    check(
      'a new identity key deletes the signed prekey and the one-time prekeys of the old one',
      async () => {
        const u = user();
        const d = device();
        await h().store.upload(u, d, {
          identityKey: 'old-id',
          signedPrekey: signed(1),
          oneTimePrekeys: prekeys(1, 3),
        });
        assert.equal(await h().store.upload(u, d, { identityKey: 'new-id' }), 0);
        assert.equal(await h().store.count(u, d), 0);
        // No signed prekey of the new identity yet: nothing to claim.
        assert.deepEqual(await h().store.claim(u), []);
        assert.deepEqual(await h().store.devicesWithKeys(u), new Set([d]));
        // The keys of the old identity's ids can be uploaded again, for the new identity.
        assert.equal(
          await h().store.upload(u, d, { signedPrekey: signed(5), oneTimePrekeys: prekeys(1, 1, 'n') }),
          1,
        );
        assert.deepEqual(await h().store.claim(u), [
          {
            device: d,
            identityKey: 'new-id',
            signedPrekey: signed(5),
            oneTimePrekey: { keyId: 1, key: 'otk-1n' },
          },
        ]);
        // A new identity with its keys in the same upload: the old keys go, the new ones stay.
        const n = await h().store.upload(u, d, {
          identityKey: 'third-id',
          signedPrekey: signed(9),
          oneTimePrekeys: prekeys(20, 2),
        });
        assert.equal(n, 2);
        const [b] = await h().store.claim(u);
        assert.equal(b?.identityKey, 'third-id');
        assert.deepEqual(b?.signedPrekey, signed(9));
        assert.match(b?.oneTimePrekey?.key ?? '', /^otk-2[01]$/);
      },
    );

    check('devicesWithKeys lists the devices that published an identity key', async () => {
      const u = user();
      const [a, b, c] = [device(), device(), device()];
      assert.deepEqual(await h().store.devicesWithKeys(u), new Set());
      await h().store.upload(u, a, { identityKey: 'id-a' });
      await h().store.upload(u, b, { identityKey: 'id-b', signedPrekey: signed(1) });
      await h().store.upload(u, c, { oneTimePrekeys: prekeys(1, 1) });
      assert.deepEqual(await h().store.devicesWithKeys(u), new Set([a, b]));
      assert.deepEqual(await h().store.devicesWithKeys(user()), new Set());
    });

    check('remove deletes every key of the device, and the device can publish anew', async () => {
      const u = user();
      const [d, other] = [device(), device()];
      await h().store.upload(u, d, {
        identityKey: 'id',
        signedPrekey: signed(1),
        oneTimePrekeys: prekeys(1, 3),
      });
      await h().store.upload(u, other, {
        identityKey: 'id-o',
        signedPrekey: signed(1),
        oneTimePrekeys: prekeys(1, 1),
      });
      await h().store.remove(u, d);
      assert.equal(await h().store.count(u, d), 0);
      assert.deepEqual(await h().store.devicesWithKeys(u), new Set([other]));
      assert.deepEqual(
        (await h().store.claim(u)).map((b) => b.device),
        [other],
      );
      await h().store.remove(u, d); // again: nothing to do
      await h().store.remove(user(), device()); // never known
      // Signed in again (the same identity, say): its new keys start afresh.
      assert.equal(await h().store.upload(u, d, { identityKey: 'id', oneTimePrekeys: prekeys(2, 1) }), 1);
      assert.deepEqual(
        (await h().store.claim(u)).filter((b) => b.device === d),
        [],
      );
      await h().store.upload(u, d, { signedPrekey: signed(3) });
      const bundle = (await h().store.claim(u)).find((b) => b.device === d);
      assert.deepEqual(bundle, {
        device: d,
        identityKey: 'id',
        signedPrekey: signed(3),
        oneTimePrekey: { keyId: 2, key: 'otk-2' },
      });
    });

    check('50 concurrent claims of 50 one-time prekeys get 50 different keys; the 51st none', async () => {
      const u = user();
      const d = device();
      await h().store.upload(u, d, {
        identityKey: 'id',
        signedPrekey: signed(1),
        oneTimePrekeys: prekeys(1, 50),
      });
      const stores = [h().store, h().other?.() ?? h().store];
      const claims = await Promise.all(Array.from({ length: 50 }, (_, i) => stores[i % 2]!.claim(u)));
      const keys = claims.map((c) => {
        assert.equal(c.length, 1);
        assert.ok(c[0]?.oneTimePrekey, 'a claim got no one-time prekey while some were left');
        return c[0].oneTimePrekey;
      });
      assert.deepEqual(
        keys.map((k) => k.keyId).sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => i + 1),
        'a one-time prekey was handed out twice',
      );
      assert.equal(await h().store.count(u, d), 0);
      assert.deepEqual(await stores[1]!.claim(u), [
        { device: d, identityKey: 'id', signedPrekey: signed(1) },
      ]);
    });
  });
}
