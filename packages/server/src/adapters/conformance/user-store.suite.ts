/**
 * The conformance suite of the `UserStore` port: every adapter runs it through its own runner and
 * must pass it. It pins down the contract written in the doc comments of `ports/user-store.ts`:
 * settings that default until saved, blocks that are one-way, idempotent and listed sorted,
 * last-seen times that are absent until recorded and overwritten by the next record, and mutes
 * per user and conversation, until a time or forever, overwritten by the next and removed by null.
 * (Mutes that have ended may be listed or not: the tests use end times in the future.)
 *
 * The suite never runs on its own: an adapter's test file calls `userStoreSuite`. One store is
 * shared by the suite's tests, each working on users of its own, with ids unique to the run.
 *
 * @module
 */
import assert from 'node:assert/strict';
import {
  DEFAULT_SETTINGS,
  MUTED_FOREVER,
  type UserSettings,
  type UserStore,
} from '../../ports/user-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** Mute end times in the future, so that stores expiring ended mutes keep them through the test. */
const HOUR = 3_600_000;
const LATER = Date.now() + 24 * HOUR;

/** What the runner hands the suite. */
export interface UserStoreHarness extends Closable {
  store: UserStore;
}

/** Registers the `UserStore` conformance tests for one adapter. */
export function userStoreSuite(
  name: string,
  make: () => Promise<UserStoreHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'UserStore', adapter: name, make, options }, ({ h, check, id }) => {
    /** A fresh user id, unique to this run. */
    const user = (label = 'u') => id(label);

    check('a user without stored settings has the defaults', async () => {
      assert.deepEqual(DEFAULT_SETTINGS, { readReceipts: true, lastSeen: 'everyone', groupAdd: 'everyone' });
      const u = user();
      const got = await h().store.settings(u);
      assert.deepEqual(got, { ...DEFAULT_SETTINGS });
      // A caller may change what it got without changing the defaults.
      got.readReceipts = false;
      got.lastSeen = 'nobody';
      got.groupAdd = 'nobody';
      assert.deepEqual(await h().store.settings(u), { ...DEFAULT_SETTINGS });
      assert.deepEqual(await h().store.settings(user()), { ...DEFAULT_SETTINGS });
    });

    check('saveSettings then settings returns them; each save overwrites the last', async () => {
      const u = user();
      const other = user();
      const steps: UserSettings[] = [
        { readReceipts: false, lastSeen: 'nobody', groupAdd: 'everyone' },
        { readReceipts: true, lastSeen: 'nobody', groupAdd: 'everyone' },
        { readReceipts: false, lastSeen: 'everyone', groupAdd: 'everyone' },
        { readReceipts: true, lastSeen: 'everyone', groupAdd: 'everyone' },
        { readReceipts: true, lastSeen: 'everyone', groupAdd: 'nobody' },
        { readReceipts: false, lastSeen: 'nobody', groupAdd: 'nobody' },
        { readReceipts: true, lastSeen: 'everyone', groupAdd: 'everyone' },
      ];
      for (const s of steps) {
        await h().store.saveSettings(u, s);
        assert.deepEqual(await h().store.settings(u), s);
      }
      await h().store.saveSettings(u, { readReceipts: false, lastSeen: 'nobody', groupAdd: 'everyone' });
      assert.deepEqual(await h().store.settings(u), {
        readReceipts: false,
        lastSeen: 'nobody',
        groupAdd: 'everyone',
      });
      // Another user's settings are their own.
      assert.deepEqual(await h().store.settings(other), { ...DEFAULT_SETTINGS });
      await h().store.saveSettings(other, { readReceipts: true, lastSeen: 'nobody', groupAdd: 'everyone' });
      assert.deepEqual(await h().store.settings(u), {
        readReceipts: false,
        lastSeen: 'nobody',
        groupAdd: 'everyone',
      });
    });

    check('the store keeps its own copy of saved and returned settings', async () => {
      const u = user();
      const saved: UserSettings = { readReceipts: false, lastSeen: 'nobody', groupAdd: 'everyone' };
      await h().store.saveSettings(u, saved);
      saved.readReceipts = true;
      saved.lastSeen = 'everyone';
      const got = await h().store.settings(u);
      assert.deepEqual(got, { readReceipts: false, lastSeen: 'nobody', groupAdd: 'everyone' });
      got.readReceipts = true;
      assert.deepEqual(await h().store.settings(u), {
        readReceipts: false,
        lastSeen: 'nobody',
        groupAdd: 'everyone',
      });
    });

    check('group_add is stored with the other settings and is per user', async () => {
      const u = user();
      const other = user();
      await h().store.saveSettings(u, { readReceipts: true, lastSeen: 'everyone', groupAdd: 'nobody' });
      assert.deepEqual(await h().store.settings(u), {
        readReceipts: true,
        lastSeen: 'everyone',
        groupAdd: 'nobody',
      });
      assert.equal((await h().store.settings(other)).groupAdd, 'everyone');
      await h().store.saveSettings(u, { readReceipts: false, lastSeen: 'nobody', groupAdd: 'everyone' });
      assert.deepEqual(await h().store.settings(u), {
        readReceipts: false,
        lastSeen: 'nobody',
        groupAdd: 'everyone',
      });
    });

    check('a user who blocked nobody has an empty block list', async () => {
      assert.deepEqual(await h().store.blocked(user()), []);
    });

    check('setBlocked blocks and unblocks, and both are idempotent', async () => {
      const u = user();
      const other = user();
      await h().store.setBlocked(u, other, true);
      assert.deepEqual(await h().store.blocked(u), [other]);
      await h().store.setBlocked(u, other, true);
      assert.deepEqual(await h().store.blocked(u), [other]);
      await h().store.setBlocked(u, other, false);
      assert.deepEqual(await h().store.blocked(u), []);
      await h().store.setBlocked(u, other, false);
      assert.deepEqual(await h().store.blocked(u), []);
      // Unblocking someone never blocked changes nothing either, and blocking again works.
      await h().store.setBlocked(u, user(), false);
      assert.deepEqual(await h().store.blocked(u), []);
      await h().store.setBlocked(u, other, true);
      assert.deepEqual(await h().store.blocked(u), [other]);
    });

    check('blocked lists the blocked users sorted; blocking is one-way and per user', async () => {
      const u = user();
      const [zed, amy, mia] = [user('zed'), user('amy'), user('mia')];
      for (const other of [zed, amy, mia]) await h().store.setBlocked(u, other, true);
      assert.deepEqual(await h().store.blocked(u), [amy, mia, zed]);
      // Concurrent changes of one list all land.
      const bob = user('bob');
      await Promise.all([h().store.setBlocked(u, bob, true), h().store.setBlocked(u, mia, false)]);
      assert.deepEqual(await h().store.blocked(u), [amy, bob, zed]);
      // The blocked users blocked nobody, and another user's list is separate.
      assert.deepEqual(await h().store.blocked(zed), []);
      const v = user();
      await h().store.setBlocked(v, u, true);
      assert.deepEqual(await h().store.blocked(v), [u]);
      assert.deepEqual(await h().store.blocked(u), [amy, bob, zed]);
    });

    check('lastSeen returns the times of the users asked for; never-seen users are absent', async () => {
      const a = user();
      const b = user();
      const c = user();
      const unasked = user();
      await h().store.saveLastSeen(a, 1_700_000_000_100);
      await h().store.saveLastSeen(b, 1_700_000_000_200);
      await h().store.saveLastSeen(unasked, 1_700_000_000_300);
      assert.deepEqual(
        await h().store.lastSeen([a, b, c]),
        new Map([
          [a, 1_700_000_000_100],
          [b, 1_700_000_000_200],
        ]),
      );
      assert.deepEqual(await h().store.lastSeen([c]), new Map());
      assert.deepEqual(await h().store.lastSeen([]), new Map());
      assert.deepEqual(await h().store.lastSeen([b]), new Map([[b, 1_700_000_000_200]]));
    });

    check('saveLastSeen overwrites the time stored before', async () => {
      const u = user();
      const other = user();
      await h().store.saveLastSeen(u, 1_700_000_000_000);
      await h().store.saveLastSeen(other, 1_700_000_000_000);
      await h().store.saveLastSeen(u, 1_700_000_050_000);
      assert.deepEqual(
        await h().store.lastSeen([u, other]),
        new Map([
          [u, 1_700_000_050_000],
          [other, 1_700_000_000_000],
        ]),
      );
    });

    check('settings, blocks and last seen of one user are independent of each other', async () => {
      const u = user();
      const other = user();
      await h().store.saveLastSeen(u, 1_700_000_000_500);
      assert.deepEqual(await h().store.settings(u), { ...DEFAULT_SETTINGS });
      assert.deepEqual(await h().store.blocked(u), []);
      await h().store.saveSettings(u, { readReceipts: false, lastSeen: 'nobody', groupAdd: 'everyone' });
      await h().store.setBlocked(u, other, true);
      assert.deepEqual(await h().store.lastSeen([u]), new Map([[u, 1_700_000_000_500]]));
      await h().store.saveLastSeen(u, 1_700_000_000_900);
      assert.deepEqual(await h().store.settings(u), {
        readReceipts: false,
        lastSeen: 'nobody',
        groupAdd: 'everyone',
      });
      assert.deepEqual(await h().store.blocked(u), [other]);
      assert.deepEqual(await h().store.lastSeen([u]), new Map([[u, 1_700_000_000_900]]));
      // A mute changes none of them, nor they it.
      const conv = `g:${id('c')}`;
      await h().store.setMute(u, conv, LATER);
      assert.deepEqual(await h().store.settings(u), {
        readReceipts: false,
        lastSeen: 'nobody',
        groupAdd: 'everyone',
      });
      assert.deepEqual(await h().store.blocked(u), [other]);
      await h().store.saveSettings(u, { ...DEFAULT_SETTINGS });
      assert.deepEqual(await h().store.mutes(u, [conv]), new Map([[conv, LATER]]));
    });

    check('a user who muted nothing has no mutes', async () => {
      const u = user();
      assert.deepEqual(await h().store.mutes(u, [`g:${id('c')}`, `dm:${id('c')}`]), new Map());
      assert.deepEqual(await h().store.mutes(u, []), new Map());
    });

    check('setMute mutes a conversation until a time; each setMute overwrites the last', async () => {
      const u = user();
      const conv = `g:${id('c')}`;
      await h().store.setMute(u, conv, LATER);
      assert.deepEqual(await h().store.mutes(u, [conv]), new Map([[conv, LATER]]));
      await h().store.setMute(u, conv, LATER + HOUR);
      assert.deepEqual(await h().store.mutes(u, [conv]), new Map([[conv, LATER + HOUR]]));
      // A shorter mute replaces a longer one too.
      await h().store.setMute(u, conv, LATER - HOUR);
      assert.deepEqual(await h().store.mutes(u, [conv]), new Map([[conv, LATER - HOUR]]));
    });

    check('MUTED_FOREVER mutes with no end, and reads back as itself', async () => {
      const u = user();
      const [conv, other] = [`g:${id('c')}`, `dm:${id('c')}`];
      await h().store.setMute(u, conv, MUTED_FOREVER);
      assert.deepEqual(await h().store.mutes(u, [conv, other]), new Map([[conv, MUTED_FOREVER]]));
      await h().store.setMute(u, conv, LATER);
      assert.deepEqual(await h().store.mutes(u, [conv]), new Map([[conv, LATER]]));
      await h().store.setMute(u, conv, MUTED_FOREVER);
      assert.deepEqual(await h().store.mutes(u, [conv]), new Map([[conv, MUTED_FOREVER]]));
    });

    check('setMute with null unmutes, idempotently, and muting again works', async () => {
      const u = user();
      const [conv, kept] = [`g:${id('c')}`, `g:${id('c')}`];
      await h().store.setMute(u, conv, LATER);
      await h().store.setMute(u, kept, MUTED_FOREVER);
      await h().store.setMute(u, conv, null);
      assert.deepEqual(await h().store.mutes(u, [conv, kept]), new Map([[kept, MUTED_FOREVER]]));
      await h().store.setMute(u, conv, null);
      await h().store.setMute(u, `g:${id('c')}`, null);
      assert.deepEqual(await h().store.mutes(u, [conv, kept]), new Map([[kept, MUTED_FOREVER]]));
      await h().store.setMute(u, conv, LATER + HOUR);
      assert.deepEqual(
        await h().store.mutes(u, [conv, kept]),
        new Map([
          [conv, LATER + HOUR],
          [kept, MUTED_FOREVER],
        ]),
      );
    });

    check('mutes answers for the conversations asked, of that user only', async () => {
      const [u, other] = [user(), user()];
      const convs = Array.from({ length: 5 }, (_, i) => (i % 2 === 0 ? `g:${id('c')}` : `dm:${id('c')}`));
      // Concurrent mutes of one user all land.
      await Promise.all(convs.slice(0, 4).map((c, i) => h().store.setMute(u, c, LATER + i * HOUR)));
      await h().store.setMute(other, convs[0]!, MUTED_FOREVER);
      await h().store.setMute(other, convs[4]!, LATER);
      assert.deepEqual(
        await h().store.mutes(u, convs),
        new Map(convs.slice(0, 4).map((c, i) => [c, LATER + i * HOUR])),
      );
      assert.deepEqual(
        await h().store.mutes(u, [convs[3]!, convs[4]!, convs[1]!]),
        new Map([
          [convs[3]!, LATER + 3 * HOUR],
          [convs[1]!, LATER + HOUR],
        ]),
      );
      assert.deepEqual(
        await h().store.mutes(other, convs),
        new Map([
          [convs[0]!, MUTED_FOREVER],
          [convs[4]!, LATER],
        ]),
      );
      // Unmuting for one user leaves the other's mute of the same conversation.
      await h().store.setMute(u, convs[0]!, null);
      assert.deepEqual(await h().store.mutes(other, [convs[0]!]), new Map([[convs[0]!, MUTED_FOREVER]]));
      assert.deepEqual(await h().store.mutes(u, [convs[0]!]), new Map());
      assert.deepEqual(await h().store.mutes(user(), convs), new Map());
    });
  });
}
