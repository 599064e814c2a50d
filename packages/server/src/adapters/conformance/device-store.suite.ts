/**
 * The conformance suite of the `DeviceStore` port: every adapter runs it through its own runner and
 * must pass it. It pins down the contract written in the doc comments of `ports/device-store.ts`:
 * devices appear when seen and are listed most recently seen first, the least recently seen one
 * goes past `MAX_DEVICES_PER_USER`, push registrations of every platform read back as set, are
 * removed with `setPush(null)` and by `dropPush` only while unchanged, and a revocation forgets
 * the device and its registration and is reported by `revokedAt`, even after the device is seen
 * again (it refuses the tokens issued before it, whatever happens later).
 *
 * What the port leaves open is not checked: `seen` with a time older than the device's last seen,
 * `setPush` for a device never seen, and a `seen` at the very time of a revocation.
 *
 * The suite never runs on its own: an adapter's test file calls `deviceStoreSuite`. One store is
 * shared by the suite's tests, each working on users of its own, with ids unique to the run.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { type DeviceStore, MAX_DEVICES_PER_USER } from '../../ports/device-store.js';
import type { PushRegistration } from '../../ports/push-provider.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface DeviceStoreHarness extends Closable {
  store: DeviceStore;
}

/** Times near now, so that stores expiring revocations by age (or TTL) keep them through the test. */
const NOW = Date.now();
const MINUTE = 60_000;

/** One registration of each platform (and the optional fields of each). */
const apns: PushRegistration = { platform: 'apns', token: 'a1b2c3d4', topic: 'chat.parley.app' };
const apnsSandbox: PushRegistration = {
  platform: 'apns',
  token: 'e5f6a7b8',
  topic: 'chat.parley.app',
  environment: 'sandbox',
};
const fcm: PushRegistration = { platform: 'fcm', token: 'fcm-token-1' };
const webpush: PushRegistration = {
  platform: 'webpush',
  endpoint: 'https://push.example.com/send/abc',
  keys: { p256dh: 'BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA', auth: 'tBHItJI5svbpez7KI4CCXg' },
};
const unifiedpush: PushRegistration = { platform: 'unifiedpush', endpoint: 'https://up.example.org/up/xyz' };
const unifiedpushKeys: PushRegistration = {
  platform: 'unifiedpush',
  endpoint: 'https://up.example.org/up/uvw',
  keys: { p256dh: 'BOtBVgsHVWXzwhDAoFE8P2IgQvabz_tuJjIlNacmS3XZ', auth: 'aTDc6JebzR6eScy2oLo4RQ' },
};

/** Registers the `DeviceStore` conformance tests for one adapter. */
export function deviceStoreSuite(
  name: string,
  make: () => Promise<DeviceStoreHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'DeviceStore', adapter: name, make, options }, ({ h, check, id }) => {
    const user = (label = 'u') => id(label);
    const device = (label = 'd') => id(label);
    /** The device ids of the user's list, in list order. */
    const listed = async (u: string) => (await h().store.list(u)).map((d) => d.device);

    check('seen creates a device, and a later seen updates its last seen time', async () => {
      const u = user();
      const d = device();
      assert.deepEqual(await h().store.list(u), []);
      await h().store.seen(u, d, NOW);
      assert.deepEqual(await h().store.list(u), [{ device: d, lastSeen: NOW }]);
      await h().store.seen(u, d, NOW + MINUTE);
      assert.deepEqual(await h().store.list(u), [{ device: d, lastSeen: NOW + MINUTE }]);
      // The device is the user's only: another user has none.
      assert.deepEqual(await h().store.list(user()), []);
    });

    check('list is most recently seen first, and follows later sightings', async () => {
      const u = user();
      const [phone, laptop, tablet] = [device('phone'), device('laptop'), device('tablet')];
      await h().store.seen(u, phone, NOW + 2 * MINUTE);
      await h().store.seen(u, laptop, NOW + 3 * MINUTE);
      await h().store.seen(u, tablet, NOW + 1 * MINUTE);
      assert.deepEqual(await h().store.list(u), [
        { device: laptop, lastSeen: NOW + 3 * MINUTE },
        { device: phone, lastSeen: NOW + 2 * MINUTE },
        { device: tablet, lastSeen: NOW + 1 * MINUTE },
      ]);
      await h().store.seen(u, tablet, NOW + 4 * MINUTE);
      assert.deepEqual(await listed(u), [tablet, laptop, phone]);
      await h().store.seen(u, phone, NOW + 5 * MINUTE);
      assert.deepEqual(await listed(u), [phone, tablet, laptop]);
    });

    check(
      'a device and its registration are per user: the same device id of two users is two devices',
      async () => {
        const [a, b] = [user(), user()];
        const d = device();
        await h().store.seen(a, d, NOW);
        await h().store.seen(b, d, NOW + MINUTE);
        await h().store.setPush(a, d, fcm);
        assert.deepEqual(await h().store.list(a), [{ device: d, lastSeen: NOW, push: fcm }]);
        assert.deepEqual(await h().store.list(b), [{ device: d, lastSeen: NOW + MINUTE }]);
        assert.equal(await h().store.revoke(b, d, NOW + 2 * MINUTE), true);
        assert.deepEqual(await h().store.list(a), [{ device: d, lastSeen: NOW, push: fcm }]);
        assert.equal(await h().store.revokedAt(a, d), undefined);
      },
    );

    check('past MAX_DEVICES_PER_USER devices, the least recently seen other device is dropped', async () => {
      const u = user();
      const devices = Array.from({ length: MAX_DEVICES_PER_USER }, (_, i) => device(`n${i}-`));
      // devices[i] seen at NOW + i minutes: devices[0] is the least recently seen.
      await Promise.all(devices.map((d, i) => h().store.seen(u, d, NOW + i * MINUTE)));
      assert.equal((await h().store.list(u)).length, MAX_DEVICES_PER_USER);
      await h().store.setPush(u, devices[0]!, fcm);

      // Seeing a known device at the limit drops nothing.
      await h().store.seen(u, devices[5]!, NOW + 100 * MINUTE);
      assert.equal((await h().store.list(u)).length, MAX_DEVICES_PER_USER);

      const extra = device('extra');
      await h().store.seen(u, extra, NOW + 101 * MINUTE);
      let now = await listed(u);
      assert.equal(now.length, MAX_DEVICES_PER_USER);
      assert.ok(!now.includes(devices[0]!), 'the least recently seen device is still listed');
      assert.equal(now[0], extra);
      assert.equal(
        (await h().store.pushRegistrations([u])).get(u),
        undefined,
        'the dropped device kept its registration',
      );

      // devices[1] is seen again, so devices[2] is now the least recently seen.
      await h().store.seen(u, devices[1]!, NOW + 102 * MINUTE);
      await h().store.seen(u, device('extra'), NOW + 103 * MINUTE); // another new device
      now = await listed(u);
      assert.equal(now.length, MAX_DEVICES_PER_USER);
      assert.ok(now.includes(devices[1]!), 'a device seen again was dropped');
      assert.ok(!now.includes(devices[2]!), 'the least recently seen device is still listed');

      // The device being seen stays even when its time is the oldest: another one goes.
      const late = device('late');
      await h().store.seen(u, late, NOW - 10 * MINUTE);
      now = await listed(u);
      assert.equal(now.length, MAX_DEVICES_PER_USER);
      assert.ok(now.includes(late), 'the device just seen was dropped');
      assert.ok(!now.includes(devices[3]!), 'the least recently seen other device is still listed');
    });

    check('setPush stores a registration of each platform; list and pushRegistrations show it', async () => {
      const u = user();
      const regs = [apns, apnsSandbox, fcm, webpush, unifiedpush, unifiedpushKeys];
      const devices = regs.map((_, i) => device(`p${i}-`));
      for (const [i, d] of devices.entries()) await h().store.seen(u, d, NOW + i * MINUTE);
      for (const [i, d] of devices.entries()) await h().store.setPush(u, d, regs[i]!);
      assert.deepEqual(
        await h().store.list(u),
        devices.map((d, i) => ({ device: d, lastSeen: NOW + i * MINUTE, push: regs[i] })).reverse(),
      );
      assert.deepEqual(
        await h().store.pushRegistrations([u]),
        new Map([[u, new Map(devices.map((d, i) => [d, regs[i]!]))]]),
      );
    });

    check('setPush replaces the registration; setPush(null) removes it and keeps the device', async () => {
      const u = user();
      const d = device();
      const other = device();
      await h().store.seen(u, d, NOW);
      await h().store.seen(u, other, NOW - MINUTE);
      await h().store.setPush(u, d, fcm);
      await h().store.setPush(u, other, apns);
      await h().store.setPush(u, d, webpush);
      assert.deepEqual((await h().store.list(u))[0], { device: d, lastSeen: NOW, push: webpush });
      await h().store.setPush(u, d, null);
      assert.deepEqual(await h().store.list(u), [
        { device: d, lastSeen: NOW },
        { device: other, lastSeen: NOW - MINUTE, push: apns },
      ]);
      assert.deepEqual(await h().store.pushRegistrations([u]), new Map([[u, new Map([[other, apns]])]]));
      // Removing what is not there changes nothing.
      await h().store.setPush(u, d, null);
      assert.deepEqual(await h().store.pushRegistrations([u]), new Map([[u, new Map([[other, apns]])]]));
    });

    check('the store keeps its own copy of registrations given and returned', async () => {
      const u = user();
      const d = device();
      await h().store.seen(u, d, NOW);
      const given = structuredClone(webpush) as Extract<PushRegistration, { platform: 'webpush' }>;
      await h().store.setPush(u, d, given);
      given.endpoint = 'https://changed.example.com/';
      given.keys.auth = 'changed';
      const got = (await h().store.pushRegistrations([u])).get(u)?.get(d) as typeof given;
      assert.deepEqual(got, webpush);
      got.keys.auth = 'changed too';
      assert.deepEqual((await h().store.list(u))[0]?.push, webpush);
    });

    check('dropPush removes the registration only while it is the one given', async () => {
      const u = user();
      const d = device();
      await h().store.seen(u, d, NOW);
      const old: PushRegistration = { platform: 'fcm', token: 'old-token' };
      const renewed: PushRegistration = { platform: 'fcm', token: 'new-token' };
      await h().store.setPush(u, d, old);
      await h().store.setPush(u, d, renewed);
      // The provider reported the old token dead: the registration made meanwhile survives.
      await h().store.dropPush(u, d, old);
      assert.deepEqual((await h().store.list(u))[0]?.push, renewed);
      await h().store.dropPush(u, d, { platform: 'apns', token: 'new-token', topic: 'x' });
      assert.deepEqual((await h().store.list(u))[0]?.push, renewed);
      // The same registration (another object, as read back) is removed; the device stays.
      const current = (await h().store.pushRegistrations([u])).get(u)?.get(d);
      assert.ok(current);
      await h().store.dropPush(u, d, structuredClone(current));
      assert.deepEqual(await h().store.list(u), [{ device: d, lastSeen: NOW }]);
      assert.deepEqual(await h().store.pushRegistrations([u]), new Map());
      // Nothing to drop, an unknown device: nothing happens.
      await h().store.dropPush(u, d, renewed);
      await h().store.dropPush(u, device(), renewed);
      assert.deepEqual(await h().store.list(u), [{ device: d, lastSeen: NOW }]);
    });

    check('dropPush compares whole registrations: web push keys count', async () => {
      const u = user();
      const d = device();
      await h().store.seen(u, d, NOW);
      await h().store.setPush(u, d, webpush);
      const otherKeys = {
        ...webpush,
        keys: { ...(webpush as { keys: { p256dh: string; auth: string } }).keys, auth: 'other' },
      };
      await h().store.dropPush(u, d, otherKeys as PushRegistration);
      assert.deepEqual((await h().store.list(u))[0]?.push, webpush);
      await h().store.dropPush(u, d, structuredClone(webpush));
      assert.equal((await h().store.list(u))[0]?.push, undefined);
    });

    check(
      'pushRegistrations answers for the users asked; users without registrations are absent',
      async () => {
        const [a, b, c, d, e] = [user('a'), user('b'), user('c'), user('d'), user('e')];
        const [a1, a2, b1, c1, e1] = [device(), device(), device(), device(), device()];
        await h().store.seen(a, a1, NOW);
        await h().store.seen(a, a2, NOW);
        await h().store.seen(b, b1, NOW);
        await h().store.seen(c, c1, NOW);
        await h().store.seen(e, e1, NOW);
        await h().store.setPush(a, a1, apns);
        await h().store.setPush(a, a2, webpush);
        await h().store.setPush(b, b1, fcm);
        await h().store.setPush(e, e1, unifiedpush);
        // c has a device without a registration, d none at all, e was not asked for.
        assert.deepEqual(
          await h().store.pushRegistrations([a, b, c, d]),
          new Map([
            [
              a,
              new Map([
                [a1, apns],
                [a2, webpush],
              ]),
            ],
            [b, new Map([[b1, fcm]])],
          ]),
        );
        assert.deepEqual(await h().store.pushRegistrations([c, d]), new Map());
        assert.deepEqual(await h().store.pushRegistrations([]), new Map());
      },
    );

    check('revoke forgets the device and its registration, and reports whether it was known', async () => {
      const u = user();
      const [d, other] = [device(), device()];
      await h().store.seen(u, d, NOW);
      await h().store.seen(u, other, NOW - MINUTE);
      await h().store.setPush(u, d, apns);
      await h().store.setPush(u, other, fcm);
      assert.equal(await h().store.revoke(u, d, NOW + MINUTE), true);
      assert.deepEqual(await h().store.list(u), [{ device: other, lastSeen: NOW - MINUTE, push: fcm }]);
      assert.deepEqual(await h().store.pushRegistrations([u]), new Map([[u, new Map([[other, fcm]])]]));
      assert.equal(await h().store.revoke(u, d, NOW + 2 * MINUTE), false, 'a revoked device is not known');
      assert.equal(await h().store.revoke(u, device(), NOW + 2 * MINUTE), false);
      assert.equal(await h().store.revoke(user(), device(), NOW + 2 * MINUTE), false);
    });

    check('revokedAt is the time of the last revocation; never revoked: undefined', async () => {
      const u = user();
      const [d, other, unknown] = [device(), device(), device()];
      await h().store.seen(u, d, NOW);
      await h().store.seen(u, other, NOW);
      assert.equal(await h().store.revokedAt(u, d), undefined);
      await h().store.revoke(u, d, NOW + MINUTE);
      assert.equal(await h().store.revokedAt(u, d), NOW + MINUTE);
      await h().store.revoke(u, d, NOW + 2 * MINUTE);
      assert.equal(await h().store.revokedAt(u, d), NOW + 2 * MINUTE);
      assert.equal(await h().store.revokedAt(u, other), undefined);
      assert.equal(await h().store.revokedAt(user(), d), undefined);
      // A device the store does not know (evicted, say) still has its tokens revoked.
      assert.equal(await h().store.revoke(u, unknown, NOW + 3 * MINUTE), false);
      assert.equal(await h().store.revokedAt(u, unknown), NOW + 3 * MINUTE);
      // Revocations are kept as long as a token may live: later ones do not push this one out.
      await h().store.revoke(user(), device(), NOW + 10 * MINUTE);
      assert.equal(await h().store.revokedAt(u, d), NOW + 2 * MINUTE);
    });

    check('a revocation stays when the device is seen again (signed in with a newer token)', async () => {
      const u = user();
      const d = device();
      await h().store.seen(u, d, NOW);
      await h().store.setPush(u, d, fcm);
      const revoked = NOW + 10 * MINUTE;
      await h().store.revoke(u, d, revoked);
      await h().store.seen(u, d, revoked - MINUTE);
      await h().store.seen(u, d, revoked + MINUTE);
      assert.equal(await h().store.revokedAt(u, d), revoked, 'a sighting cleared the revocation');
      // The device is back, without its old registration.
      assert.deepEqual(await h().store.list(u), [{ device: d, lastSeen: revoked + MINUTE }]);
      assert.deepEqual(await h().store.pushRegistrations([u]), new Map());
      // And it can be revoked again.
      assert.equal(await h().store.revoke(u, d, revoked + 2 * MINUTE), true);
      assert.equal(await h().store.revokedAt(u, d), revoked + 2 * MINUTE);
    });
  });
}
