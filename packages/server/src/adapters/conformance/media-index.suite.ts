/**
 * The conformance suite of the `MediaIndex` port: every adapter runs it through its own runner and
 * must pass it. It pins down the contract written in the doc comments of `ports/media-index.ts`:
 * records read back as created, `reference` adds conversations (forgetting the earliest past
 * `MAX_MEDIA_REFERENCES`) and only moves `lastReferencedAt` forward, unknown and deleted ids are
 * ignored, `collectable` finds media never listed and created before one cutoff and media last
 * listed before the other, and `delete` forgets the id.
 *
 * What the port leaves open is not checked: the order of `collectable` and of `conversations`.
 *
 * The suite never runs on its own: an adapter's test file calls `mediaIndexSuite`. One store is
 * shared by the suite's tests (and, on a real engine, with earlier runs), so `collectable` is
 * checked on media of the test's own, far in the past, and on the ids of the run only.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { MAX_MEDIA_REFERENCES, type MediaIndex, type MediaRecord } from '../../ports/media-index.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface MediaIndexHarness extends Closable {
  store: MediaIndex;
}

const NOW = Date.now();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Registers the `MediaIndex` conformance tests for one adapter. */
export function mediaIndexSuite(
  name: string,
  make: () => Promise<MediaIndexHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'MediaIndex', adapter: name, make, options }, ({ h, check, id }) => {
    const record = (createdAt = NOW, label = 'm_'): Omit<MediaRecord, 'lastReferencedAt'> => ({
      id: id(label),
      owner: id('owner'),
      size: 183_224,
      contentType: 'image/jpeg',
      createdAt,
    });
    const conv = () => `g:${id('c')}`;
    const sorted = async (mediaId: string) => (await h().store.conversations(mediaId)).sort();

    check('create then get returns the record; an unknown id is null', async () => {
      const r = record();
      await h().store.create(r);
      const got = await h().store.get(r.id);
      assert.deepEqual(got, r);
      assert.ok(got && !('lastReferencedAt' in got), 'a media never listed has a lastReferencedAt');
      assert.equal(await h().store.get(id('m_')), null);
      assert.deepEqual(await h().store.conversations(r.id), []);
    });

    check('reference adds the conversation and moves lastReferencedAt forward only', async () => {
      const r = record();
      await h().store.create(r);
      const [a, b] = [conv(), conv()];
      await h().store.reference(r.id, a, NOW + 10);
      assert.deepEqual(await h().store.get(r.id), { ...r, lastReferencedAt: NOW + 10 });
      // An earlier listing (a late write) adds its conversation, and leaves the time.
      await h().store.reference(r.id, b, NOW + 5);
      assert.deepEqual(await h().store.get(r.id), { ...r, lastReferencedAt: NOW + 10 });
      assert.deepEqual(await sorted(r.id), [a, b].sort());
      // The same conversation again: listed once, the time moves on.
      await h().store.reference(r.id, a, NOW + 20);
      assert.deepEqual(await sorted(r.id), [a, b].sort());
      assert.equal((await h().store.get(r.id))?.lastReferencedAt, NOW + 20);
    });

    check('reference of an unknown or deleted id is ignored', async () => {
      const unknown = id('m_');
      await h().store.reference(unknown, conv(), NOW);
      assert.equal(await h().store.get(unknown), null);
      assert.deepEqual(await h().store.conversations(unknown), []);
      const r = record();
      await h().store.create(r);
      await h().store.delete(r.id);
      await h().store.reference(r.id, conv(), NOW + 1);
      assert.equal(await h().store.get(r.id), null);
      assert.deepEqual(await h().store.conversations(r.id), []);
    });

    check('delete forgets the record and its conversations, and nothing else', async () => {
      const [r, kept] = [record(), record()];
      await h().store.create(r);
      await h().store.create(kept);
      const c = conv();
      await h().store.reference(r.id, c, NOW + 1);
      await h().store.reference(kept.id, c, NOW + 1);
      await h().store.delete(r.id);
      assert.equal(await h().store.get(r.id), null);
      assert.deepEqual(await h().store.conversations(r.id), []);
      assert.deepEqual(await h().store.get(kept.id), { ...kept, lastReferencedAt: NOW + 1 });
      assert.deepEqual(await h().store.conversations(kept.id), [c]);
      await h().store.delete(r.id); // again: nothing to do
    });

    check(
      'collectable: never listed and created before the first cutoff, or last listed before the second',
      async () => {
        // Half a year back, so that no other media of this run qualifies by accident.
        const base = NOW - 180 * DAY;
        const cutoff = base + 5 * DAY;
        const oldUnlisted = record(base);
        const newUnlisted = record(base + 10 * DAY);
        const listedLongAgo = record(base - DAY);
        const listedLately = record(base - DAY);
        const oldButListedLately = record(base - 2 * DAY);
        const all = [oldUnlisted, newUnlisted, listedLongAgo, listedLately, oldButListedLately];
        for (const r of all) await h().store.create(r);
        await h().store.reference(listedLongAgo.id, conv(), base + HOUR);
        await h().store.reference(listedLately.id, conv(), base + HOUR);
        await h().store.reference(listedLately.id, conv(), base + 10 * DAY);
        await h().store.reference(oldButListedLately.id, conv(), base + 6 * DAY);
        try {
          const mine = new Set(all.map((r) => r.id));
          const found = (await h().store.collectable(cutoff, cutoff, 1_000)).filter((r) => mine.has(r.id));
          assert.deepEqual(
            found.sort(byId),
            [oldUnlisted, { ...listedLongAgo, lastReferencedAt: base + HOUR }].sort(byId),
          );
          // The two cutoffs apply each to its own kind.
          const unlistedOnly = (await h().store.collectable(cutoff, base, 1_000)).filter((r) =>
            mine.has(r.id),
          );
          assert.deepEqual(unlistedOnly, [oldUnlisted]);
          const listedOnly = (await h().store.collectable(base, base + 7 * DAY, 1_000)).filter((r) =>
            mine.has(r.id),
          );
          assert.deepEqual(
            listedOnly.map((r) => r.id).sort(),
            [listedLongAgo.id, oldButListedLately.id].sort(),
          );
          // Listed after the cutoff: no longer collectable, even if it was.
          await h().store.reference(listedLongAgo.id, conv(), base + 8 * DAY);
          const after = (await h().store.collectable(cutoff, cutoff, 1_000)).filter((r) => mine.has(r.id));
          assert.deepEqual(after, [oldUnlisted]);
          // A deleted one is not collectable any more.
          await h().store.delete(oldUnlisted.id);
          const left = (await h().store.collectable(cutoff, cutoff, 1_000)).filter((r) => mine.has(r.id));
          assert.deepEqual(left, []);
          // At most `limit`.
          const limited = await h().store.collectable(base + 20 * DAY, base + 20 * DAY, 2);
          assert.equal(limited.length, 2);
        } finally {
          for (const r of all) await h().store.delete(r.id);
        }
      },
    );

    check(
      `past MAX_MEDIA_REFERENCES (${MAX_MEDIA_REFERENCES}) conversations, the earliest listed is forgotten`,
      async () => {
        const r = record();
        await h().store.create(r);
        const convs = Array.from({ length: MAX_MEDIA_REFERENCES }, () => conv());
        // Conversation i listed the media at NOW + i.
        for (let i = 0; i < convs.length; i += 100)
          await Promise.all(convs.slice(i, i + 100).map((c, j) => h().store.reference(r.id, c, NOW + i + j)));
        assert.equal((await h().store.conversations(r.id)).length, MAX_MEDIA_REFERENCES);
        // The first conversation lists it again: now the second is the earliest.
        await h().store.reference(r.id, convs[0]!, NOW + 5_000);
        const extra = conv();
        await h().store.reference(r.id, extra, NOW + 6_000);
        const now = new Set(await h().store.conversations(r.id));
        assert.equal(now.size, MAX_MEDIA_REFERENCES);
        assert.ok(now.has(extra), 'the latest conversation is not listed');
        assert.ok(now.has(convs[0]!), 'a conversation listed again was forgotten');
        assert.ok(!now.has(convs[1]!), 'the earliest conversation is still listed');
        assert.equal((await h().store.get(r.id))?.lastReferencedAt, NOW + 6_000);
      },
    );
  });
}
