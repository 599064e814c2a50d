/**
 * The conformance suite of the `InviteStore` port: every adapter runs it through its own runner and
 * must pass it. It pins down the contract written in the doc comments of `ports/invite-store.ts`:
 * invites read back as created, `take` counts uses atomically and refuses expired, used-up and
 * unknown invites without changing anything, `release` gives a use back (never below zero), and
 * `revoke` deletes, idempotently.
 *
 * The suite never runs on its own: an adapter's test file calls `inviteStoreSuite`. One store is
 * shared by the suite's tests, each working on invites of its own, with ids unique to the run.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { Invite, InviteStore } from '../../ports/invite-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface InviteStoreHarness extends Closable {
  store: InviteStore;
}

/** A time in the near future, so that stores expiring rows by TTL keep them through the test. */
const NOW = Date.now();
const HOUR = 3_600_000;

/** Registers the `InviteStore` conformance tests for one adapter. */
export function inviteStoreSuite(
  name: string,
  make: () => Promise<InviteStoreHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'InviteStore', adapter: name, make, options }, ({ h, check, id }) => {
    const invite = (over: Partial<Invite> = {}): Invite => ({
      id: id('inv'),
      conv: `g:${id('c')}`,
      creator: id('admin'),
      creatorJoinedSeq: 3,
      createdTs: NOW,
      expiresTs: NOW + HOUR,
      uses: 0,
      ...over,
    });

    check('an invite reads back as created; unknown ids are null', async () => {
      const limited = invite({ maxUses: 5 });
      const open = invite();
      await h().store.create(limited);
      await h().store.create(open);
      assert.deepEqual(await h().store.get(limited.id), limited);
      assert.deepEqual(await h().store.get(open.id), open);
      assert.equal(await h().store.get(id('nope')), null);
    });

    check('take counts a use and returns the invite after it, up to max_uses', async () => {
      const i = invite({ maxUses: 2 });
      await h().store.create(i);
      assert.deepEqual(await h().store.take(i.id, NOW), { ...i, uses: 1 });
      assert.deepEqual(await h().store.take(i.id, NOW + 1), { ...i, uses: 2 });
      assert.equal(await h().store.take(i.id, NOW + 2), null);
      assert.equal((await h().store.get(i.id))?.uses, 2, 'a refused take changes nothing');
    });

    check('take without max_uses counts every use', async () => {
      const i = invite();
      await h().store.create(i);
      for (let n = 1; n <= 4; n++) assert.equal((await h().store.take(i.id, NOW))?.uses, n);
    });

    check('take refuses an expired invite and an unknown one', async () => {
      const i = invite({ expiresTs: NOW + 1000 });
      await h().store.create(i);
      assert.equal(await h().store.take(i.id, NOW + 1000), null, 'dead at its expiry time');
      assert.equal(await h().store.take(i.id, NOW + 5000), null);
      assert.equal((await h().store.get(i.id))?.uses ?? 0, 0);
      assert.equal(await h().store.take(id('nope'), NOW), null);
    });

    check('concurrent takes never pass max_uses', async () => {
      const i = invite({ maxUses: 3 });
      await h().store.create(i);
      const got = await Promise.all(Array.from({ length: 8 }, () => h().store.take(i.id, NOW)));
      const taken = got.filter((g) => g !== null);
      assert.equal(taken.length, 3);
      assert.deepEqual(taken.map((g) => g!.uses).sort(), [1, 2, 3]);
      assert.equal((await h().store.get(i.id))?.uses, 3);
    });

    check('release gives a use back, never below zero; a no-op for unknown ids', async () => {
      const i = invite({ maxUses: 1 });
      await h().store.create(i);
      assert.notEqual(await h().store.take(i.id, NOW), null);
      assert.equal(await h().store.take(i.id, NOW), null);
      await h().store.release(i.id);
      assert.equal((await h().store.get(i.id))?.uses, 0);
      assert.deepEqual(await h().store.take(i.id, NOW), { ...i, uses: 1 });
      await h().store.release(i.id);
      await h().store.release(i.id);
      assert.equal((await h().store.get(i.id))?.uses, 0);
      await h().store.release(id('nope'));
    });

    check('revoke deletes the invite, idempotently, and only that one', async () => {
      const i = invite();
      const other = invite({ conv: i.conv });
      await h().store.create(i);
      await h().store.create(other);
      await h().store.revoke(i.id);
      assert.equal(await h().store.get(i.id), null);
      assert.equal(await h().store.take(i.id, NOW), null);
      await h().store.revoke(i.id);
      await h().store.revoke(id('nope'));
      assert.deepEqual(await h().store.get(other.id), other);
    });
  });
}
