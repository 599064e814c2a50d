/**
 * The conformance suite of the `DeadLetterStore` port, run for each kind of letter: push jobs
 * (`PushDeadLetters`) and webhook deliveries (`WebhookDeadLetters`). Every adapter runs it through
 * its own runner and must pass it. It pins down the contract written in the doc comments of
 * `ports/job-queue.ts`: letters read back as added, `list` is oldest first (by id: callers make ids
 * that increase in the order letters are added, as the dispatchers' ULIDs do) and pages with
 * `after`, and `remove` deletes, counting what it deleted and ignoring unknown ids.
 *
 * One store is shared by the suite's tests (a cluster's table may hold other runs' letters too),
 * so each test works on letters of its own and looks at the others only where the port says what
 * they are (older ids before newer ones).
 *
 * The suite never runs on its own: an adapter's test file calls `pushDeadLettersSuite` and
 * `webhookDeadLettersSuite`.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { monotonicFactory } from 'ulid';
import type { DeadLetterStore } from '../../ports/job-queue.js';
import type { DeadLetter } from '../../ports/push-queue.js';
import { WEBHOOK_EVENT_TYPES, type WebhookDeadLetter } from '../../ports/webhooks.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

type Letter = { id: string };

/** What the runner hands the suite. */
export interface DeadLettersHarness<L extends Letter> extends Closable {
  store: DeadLetterStore<L>;
}

/**
 * The `n`th letter of a run, with id `letterId`: its other fields vary with `n`, and the users,
 * conversations or endpoints it names are made with the suite's `id`, unique to the run.
 */
type LetterOf<L extends Letter> = (letterId: string, n: number, id: (label?: string) => string) => L;

const NOW = Date.now();

/** Every platform in turn, each with a reason of the kind its provider gives. */
const PUSH_FAILURES = [
  { platform: 'apns', reason: 'BadDeviceToken' },
  { platform: 'fcm', reason: 'QUOTA_EXCEEDED' },
  { platform: 'webpush', reason: 'the endpoint answered 413' },
] as const;

const pushLetter: LetterOf<DeadLetter> = (letterId, n, id) => ({
  id: letterId,
  job: {
    user: id('u'),
    device: 'phone',
    conv: `g:${id('c')}`,
    seq: n,
    from: 'alice',
    kind: 'text',
    inbox: 100 + n,
    ts: NOW - 60_000 + n,
  },
  ...PUSH_FAILURES[n % PUSH_FAILURES.length]!,
  attempts: 1 + (n % 5),
  ts: NOW + n,
});

const webhookLetter: LetterOf<WebhookDeadLetter> = (letterId, n, id) => {
  const conv = `g:${id('c')}`;
  return {
    id: letterId,
    delivery: {
      endpoint: `https://${id('h')}.example.com/parley`,
      key: conv,
      event: {
        id: id('e'),
        type: WEBHOOK_EVENT_TYPES[n % WEBHOOK_EVENT_TYPES.length]!,
        ts: NOW - 60_000 + n,
        // Nested values, so a store that keeps letters as text must round-trip them whole.
        data: { conv, seq: n, from: 'alice', members: ['alice', id('u')], group: { name: `n${n}` } },
      },
    },
    reason: n % 2 === 0 ? 'the endpoint answered 503' : 'connect ECONNREFUSED',
    attempts: 1 + (n % 5),
    ts: NOW + n,
  };
};

/** Registers the `PushDeadLetters` conformance tests for one adapter. */
export function pushDeadLettersSuite(
  name: string,
  make: () => Promise<DeadLettersHarness<DeadLetter>>,
  options: SuiteOptions = {},
): void {
  deadLettersSuite('PushDeadLetters', name, make, pushLetter, options);
}

/** Registers the `WebhookDeadLetters` conformance tests for one adapter. */
export function webhookDeadLettersSuite(
  name: string,
  make: () => Promise<DeadLettersHarness<WebhookDeadLetter>>,
  options: SuiteOptions = {},
): void {
  deadLettersSuite('WebhookDeadLetters', name, make, webhookLetter, options);
}

/** Registers the conformance tests of one kind of letter, `subject`, built by `letterOf`. */
function deadLettersSuite<L extends Letter>(
  subject: string,
  name: string,
  make: () => Promise<DeadLettersHarness<L>>,
  letterOf: LetterOf<L>,
  options: SuiteOptions,
): void {
  defineSuite({ subject, adapter: name, make, options }, ({ h, check, id }) => {
    /** Ids as the dispatchers make them: ULIDs, increasing within the process. */
    const letterId = monotonicFactory();
    let n = 0;
    const letter = (): L => letterOf(letterId(), ++n, id);
    /** Every page of `list(limit, after)` from `after` up to and including `last`. */
    const pagesUpTo = async (limit: number, after: string, last: string): Promise<L[][]> => {
      const pages: L[][] = [];
      let cursor = after;
      for (;;) {
        const page = await h().store.list(limit, cursor);
        pages.push(page);
        if (page.length < limit || page.some((l) => l.id >= last)) return pages;
        assert.ok(page.at(-1)!.id > cursor, `list(${limit}, ${cursor}) did not move past ${cursor}`);
        cursor = page.at(-1)!.id;
      }
    };

    check('a letter reads back as added; unknown ids are null', async () => {
      const start = letterId();
      // Three in a row, so each variant of a kind that cycles through three (push's platforms) is read back.
      const [a, b, c] = [letter(), letter(), letter()];
      await h().store.add([a, b, c]);
      assert.deepEqual(await h().store.get(a.id), a);
      assert.deepEqual(await h().store.get(b.id), b);
      assert.deepEqual(await h().store.get(c.id), c);
      assert.equal(await h().store.get(letterId()), null);
      // Adding nothing is fine, and adding a letter again keeps one.
      await h().store.add([]);
      await h().store.add([a]);
      const listed = await h().store.list(10, start);
      assert.deepEqual(
        listed.filter((l) => l.id === a.id || l.id === b.id || l.id === c.id),
        [a, b, c],
      );
    });

    check('list is oldest first and pages with after', async () => {
      const start = letterId();
      const letters = Array.from({ length: 7 }, () => letter());
      // Added in three calls, the middle one with a single letter.
      await h().store.add(letters.slice(0, 3));
      await h().store.add(letters.slice(3, 4));
      await h().store.add(letters.slice(4));
      const last = letters.at(-1)!.id;
      const pages = await pagesUpTo(3, start, last);
      let after = start;
      for (const page of pages) {
        assert.ok(page.length <= 3, `a page of ${page.length} letters for a limit of 3`);
        for (const l of page) {
          assert.ok(l.id > after, `list gave ${l.id}, not after ${after}`);
          after = l.id;
        }
      }
      const mine = new Set(letters.map((l) => l.id));
      assert.deepEqual(
        pages.flat().filter((l) => mine.has(l.id)),
        letters,
      );
      // Starting after one of them: the ones after it.
      const tail = (await h().store.list(100, letters[4]!.id)).filter((l) => mine.has(l.id));
      assert.deepEqual(tail, letters.slice(5));
      // Without after, the list starts at the oldest letter of all: not after any of these.
      const first = await h().store.list(2);
      assert.ok(first.length > 0 && first.length <= 2);
      assert.ok(first[0]!.id <= letters[0]!.id, 'list without after does not start at the oldest letter');
      assert.ok(first.length < 2 || first[0]!.id < first[1]!.id, 'list without after is not oldest first');
    });

    check('remove deletes the letters given and counts them; unknown ids are ignored', async () => {
      const start = letterId();
      const [a, b, c, d] = [letter(), letter(), letter(), letter()];
      await h().store.add([a, b, c, d]);
      assert.equal(await h().store.remove([b.id, letterId()]), 1);
      assert.equal(await h().store.get(b.id), null);
      assert.equal(await h().store.remove([b.id]), 0, 'a removed letter was counted again');
      assert.equal(await h().store.remove([]), 0);
      assert.equal(await h().store.remove([a.id, d.id]), 2);
      const mine = new Set([a.id, b.id, c.id, d.id]);
      assert.deepEqual(
        (await h().store.list(100, start)).filter((l) => mine.has(l.id)),
        [c],
      );
      assert.deepEqual(await h().store.get(c.id), c);
    });
  });
}
