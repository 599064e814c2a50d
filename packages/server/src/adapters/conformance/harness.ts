/**
 * What every conformance suite of this folder shares: one `describe` per adapter, one harness made
 * before the first test and closed after the last, tests an adapter may skip by title (saying why),
 * and ids unique to the run.
 *
 * A suite is a function an adapter's runner calls with the adapter's name, a `make` that opens the
 * adapter under test, and its `SuiteOptions`; the suite hands them to `defineSuite` with a body that
 * registers its tests through the `Suite` it is given:
 *
 * ```ts
 * export function userStoreSuite(name: string, make: () => Promise<UserStoreHarness>, options: SuiteOptions = {}) {
 *   defineSuite({ subject: 'UserStore', adapter: name, make, options }, ({ h, check, id }) => {
 *     check('a user without stored settings has the defaults', async () => {
 *       assert.deepEqual(await h().store.settings(id('u')), { ...DEFAULT_SETTINGS });
 *     });
 *   });
 * }
 * ```
 *
 * One harness is shared by a suite's tests (a real engine cannot open a fresh keyspace per test
 * cheaply, and its backend may be shared with other runs), so each test works on users and
 * conversations of its own, named with `id`.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

/** Options of a conformance suite, given by the adapter's runner. */
export interface SuiteOptions {
  /**
   * Tests this adapter cannot pass, by exact title, each with the reason; they are reported as
   * skipped with that reason. A title that names no test of the suite is an error.
   */
  skip?: Readonly<Record<string, string>>;
}

/** What a suite's `make` opens: the adapter under test, in whatever parts the suite needs. */
export interface Closable {
  /** Releases what `make` opened; the suite calls it after its last test. */
  close(): Promise<void>;
}

/** What `defineSuite` needs to know of one suite run. */
export interface SuiteSpec<H extends Closable> {
  /** What the suite checks (`'MessageStore'`); the `describe` is titled `<subject> conformance: <adapter>`. */
  subject: string;
  /** The adapter's name, as its runner gave it; skip reasons are prefixed with it. */
  adapter: string;
  /** Opens the harness the tests share; called once, before the first test. */
  make: () => Promise<H>;
  options?: SuiteOptions;
}

/** What a suite's body registers its tests with. */
export interface Suite<H extends Closable> {
  /**
   * The harness the tests share. It is made when the tests start, after the body has registered
   * them: call it in tests and the helpers they call, never in the body itself.
   */
  h(): H;
  /** Registers a test, skipped (with the adapter's reason) when `options.skip` names its title. */
  check(title: string, fn: () => Promise<void>): void;
  /**
   * A `check` for tests that need an optional part of the harness (`part`, described as `what` in
   * the failure). The part is handed to the test; a harness without it fails the test, telling the
   * runner to name the title in `options.skip` with the reason.
   */
  checkWith<K extends keyof H>(
    part: K,
    what: string,
  ): (title: string, fn: (part: NonNullable<H[K]>) => Promise<void>) => void;
  /**
   * A fresh id, unique to this run: `<run>-<label><n>`, where `run` is random per suite run and `n`
   * counts up across all labels, so `id('a') < id('b')` whichever came first.
   */
  id(label?: string): string;
}

/**
 * Registers one conformance suite for one adapter: a `describe` whose harness is made before the
 * first test and closed after the last, with the tests `body` registers. Once `body` has returned,
 * every title in `options.skip` must have been registered, so a renamed test cannot leave a skip
 * behind that silently stops applying.
 */
export function defineSuite<H extends Closable>(spec: SuiteSpec<H>, body: (suite: Suite<H>) => void): void {
  const { subject, adapter, make, options = {} } = spec;
  const title = `${subject} conformance: ${adapter}`;
  describe(title, () => {
    let harness: H | undefined;
    const titles = new Set<string>();
    const run = randomBytes(4).toString('hex');
    let n = 0;

    before(async () => {
      harness = await make();
    });
    after(async () => {
      await harness?.close();
    });

    const h = (): H => {
      if (harness === undefined) throw new Error(`${title}: the harness is used before it was made`);
      return harness;
    };
    const check = (testTitle: string, fn: () => Promise<void>): void => {
      titles.add(testTitle);
      const reason = options.skip?.[testTitle];
      test(testTitle, reason === undefined ? {} : { skip: `${adapter}: ${reason}` }, fn);
    };
    const checkWith =
      <K extends keyof H>(part: K, what: string) =>
      (testTitle: string, fn: (part: NonNullable<H[K]>) => Promise<void>): void =>
        check(testTitle, async () => {
          const got = h()[part];
          if (got === undefined || got === null)
            assert.fail(`the harness has no ${what}; name "${testTitle}" in options.skip, with the reason`);
          await fn(got);
        });
    const id = (label = ''): string => `${run}-${label}${++n}`;

    body({ h, check, checkWith, id });

    for (const skipped of Object.keys(options.skip ?? {})) {
      if (!titles.has(skipped))
        throw new Error(`${title}: options.skip names "${skipped}", but no test has that title`);
    }
  });
}
