/**
 * The conformance suite of the `PresencePort`: every adapter (the in-process table, Redis, …) runs
 * it through its own runner and must pass it. It pins down the contract written in the doc
 * comments of `ports/presence.ts`: a user is online while at least one device has a live
 * connection, only the first device coming and the last device going are transitions, a
 * connection that a newer one of the same device replaced cannot take the user offline, and every
 * transition reaches every `onChange` listener, in order, with the time it was given.
 *
 * Change events may arrive after the call that caused them returns (a cluster adapter delivers
 * them over pub/sub), so the suite waits for them, and checks that nothing else was reported by
 * waiting for a later, expected event: events of one user arrive in order. One adapter instance is
 * shared by the suite's tests (and its backend may be shared with other runs), so each test works
 * on users of its own, with ids unique to the run, and looks only at their events.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { PresenceChange, PresencePort } from '../../ports/presence.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface PresenceHarness extends Closable {
  presence: PresencePort;
  /**
   * A second instance over the same backend, as another server of the deployment has; tests of
   * deployment-wide presence need it (`MemoryPresence.peer()` is one over the same table).
   * Required: presence is deployment-wide in every adapter.
   */
  peer: PresencePort;
}

/** Options of the presence suite. */
export interface PresenceSuiteOptions extends SuiteOptions {
  /** How long to wait for an expected change event, in ms (default 2,000). */
  eventTimeoutMs?: number;
  /**
   * How long to keep listening once the expected events arrived, so that a late extra one (a
   * duplicate, or a transition that should not have been reported) fails the test; in ms (default 50).
   */
  eventQuietMs?: number;
}

/** Registers the `PresencePort` conformance tests for one adapter. */
export function presencePortSuite(
  name: string,
  make: () => Promise<PresenceHarness>,
  options: PresenceSuiteOptions = {},
): void {
  const timeoutMs = options.eventTimeoutMs ?? 2_000;
  const quietMs = options.eventQuietMs ?? 50;
  /** Every change reported to the harness's first listener of `presence`, and of `peer`. */
  const events = new Recorder();
  const peerEvents = new Recorder();
  /** Makes the harness and subscribes the recorders before the first test. */
  const makeListened = async () => {
    const made = await make();
    made.presence.onChange(events.listener);
    made.peer.onChange(peerEvents.listener);
    return made;
  };

  defineSuite(
    { subject: 'PresencePort', adapter: name, make: makeListened, options },
    ({ h, check, checkWith, id }) => {
      /** A fresh user id, unique to this run. */
      const user = () => id('u');
      /** A fresh connection id, unique to this run. */
      const connection = () => id('c');
      /** Registers a test that needs `peer`. */
      const checkWithPeer = checkWith('peer', 'peer instance');
      /** Asserts that `u`'s changes, once `want.length` have arrived, are exactly `want`. */
      const expectChanges = (u: string, want: Omit<PresenceChange, 'user'>[], recorder = events) =>
        recorder.expect(
          u,
          want.map((c) => ({ user: u, ...c })),
          timeoutMs,
          quietMs,
        );

      check('connected reports true only for the first device of a user', async () => {
        const u = user();
        assert.equal(await h().presence.connected(u, 'phone', connection(), 100), true);
        assert.equal(await h().presence.connected(u, 'laptop', connection(), 110), false);
        assert.equal(await h().presence.connected(u, 'tablet', connection(), 120), false);
        assert.deepEqual(await h().presence.online([u]), new Set([u]));
        // A device reconnecting while the user is online is no transition either.
        assert.equal(await h().presence.connected(u, 'phone', connection(), 130), false);
        assert.deepEqual(await h().presence.online([u]), new Set([u]));
      });

      check('connections lists each live device with its current connection', async () => {
        const u = user();
        const other = user();
        const phone = connection();
        const laptop = connection();
        const newer = connection();
        await h().presence.connected(u, 'phone', phone, 100);
        await h().presence.connected(u, 'laptop', laptop, 110);
        await h().presence.connected(u, 'phone', newer, 120);
        await h().presence.disconnected(u, 'laptop', laptop, 130);
        const got = await h().presence.connections([u, other]);
        assert.deepEqual([...got.keys()], [u]);
        assert.deepEqual(got.get(u), new Map([['phone', newer]]));
        await h().presence.disconnected(u, 'phone', newer, 140);
        assert.deepEqual(await h().presence.connections([u]), new Map());
      });

      check('disconnected reports true only when the last device goes', async () => {
        const u = user();
        const phone = connection();
        const laptop = connection();
        await h().presence.connected(u, 'phone', phone, 100);
        await h().presence.connected(u, 'laptop', laptop, 110);
        assert.equal(await h().presence.disconnected(u, 'laptop', laptop, 120), false);
        assert.deepEqual(await h().presence.online([u]), new Set([u]));
        assert.equal(await h().presence.disconnected(u, 'phone', phone, 130), true);
        assert.deepEqual(await h().presence.online([u]), new Set());
        // Back online: the first device is a transition again.
        const again = connection();
        assert.equal(await h().presence.connected(u, 'laptop', again, 140), true);
        assert.deepEqual(await h().presence.online([u]), new Set([u]));
        assert.equal(await h().presence.disconnected(u, 'laptop', again, 150), true);
        assert.deepEqual(await h().presence.online([u]), new Set());
      });

      check(
        'a stale connection of a device replaced by a newer one does not take the user offline',
        async () => {
          const u = user();
          const old = connection();
          const current = connection();
          assert.equal(await h().presence.connected(u, 'phone', old, 100), true);
          // The phone reconnects before its old connection is found dead.
          assert.equal(await h().presence.connected(u, 'phone', current, 110), false);
          assert.equal(await h().presence.disconnected(u, 'phone', old, 120), false);
          assert.deepEqual(await h().presence.online([u]), new Set([u]));
          // Only the current connection's end counts.
          assert.equal(await h().presence.disconnected(u, 'phone', current, 130), true);
          assert.deepEqual(await h().presence.online([u]), new Set());
          await expectChanges(u, [
            { status: 'online', ts: 100 },
            { status: 'offline', ts: 130 },
          ]);
        },
      );

      check(
        'disconnecting an unknown user, device or connection reports false and changes nothing',
        async () => {
          const u = user();
          assert.equal(await h().presence.disconnected(u, 'phone', connection(), 100), false);
          assert.deepEqual(await h().presence.online([u]), new Set());
          const phone = connection();
          await h().presence.connected(u, 'phone', phone, 110);
          assert.equal(await h().presence.disconnected(u, 'laptop', connection(), 120), false);
          assert.equal(await h().presence.disconnected(u, 'laptop', phone, 121), false);
          assert.deepEqual(await h().presence.online([u]), new Set([u]));
          assert.equal(await h().presence.disconnected(u, 'phone', phone, 130), true);
          // The same end reported twice is one transition.
          assert.equal(await h().presence.disconnected(u, 'phone', phone, 140), false);
          assert.deepEqual(await h().presence.online([u]), new Set());
          // Only the two transitions were reported: the marker after them is the next event.
          await h().presence.connected(u, 'phone', connection(), 150);
          await expectChanges(u, [
            { status: 'online', ts: 110 },
            { status: 'offline', ts: 130 },
            { status: 'online', ts: 150 },
          ]);
        },
      );

      check('devices of different users are independent', async () => {
        const a = user();
        const b = user();
        const ca = connection();
        const cb = connection();
        // Same device name on both; even a (wrongly) shared connection id must not cross users.
        assert.equal(await h().presence.connected(a, 'phone', ca, 100), true);
        assert.equal(await h().presence.connected(b, 'phone', cb, 100), true);
        assert.equal(await h().presence.disconnected(b, 'phone', ca, 105), false);
        assert.equal(await h().presence.disconnected(a, 'phone', ca, 110), true);
        assert.deepEqual(await h().presence.online([a, b]), new Set([b]));
        assert.equal(await h().presence.disconnected(b, 'phone', cb, 120), true);
        assert.deepEqual(await h().presence.online([a, b]), new Set());
      });

      check('online returns the users among those given that have a live device', async () => {
        const a = user();
        const b = user();
        const c = user();
        const d = user();
        const unasked = user();
        await h().presence.connected(a, 'phone', connection(), 100);
        const cb = connection();
        await h().presence.connected(b, 'phone', cb, 100);
        await h().presence.disconnected(b, 'phone', cb, 110);
        await h().presence.connected(d, 'phone', connection(), 100);
        await h().presence.connected(d, 'laptop', connection(), 100);
        await h().presence.connected(unasked, 'phone', connection(), 100);
        assert.deepEqual(await h().presence.online([a, b, c, d]), new Set([a, d]));
        assert.deepEqual(await h().presence.online([c, b]), new Set());
        assert.deepEqual(await h().presence.online([d]), new Set([d]));
        assert.deepEqual(await h().presence.online([]), new Set());
      });

      check('onChange reports every transition, in order, with the given ts, to every listener', async () => {
        const u = user();
        const second = new Recorder();
        h().presence.onChange(second.listener);
        const phone = connection();
        const laptop = connection();
        await h().presence.connected(u, 'phone', phone, 1_000);
        await h().presence.connected(u, 'laptop', laptop, 1_010);
        await h().presence.disconnected(u, 'laptop', laptop, 1_020);
        await h().presence.disconnected(u, 'phone', phone, 1_030);
        const tablet = connection();
        await h().presence.connected(u, 'tablet', tablet, 1_040);
        await h().presence.disconnected(u, 'tablet', tablet, 1_050);
        const want = [
          { status: 'online', ts: 1_000 },
          { status: 'offline', ts: 1_030 },
          { status: 'online', ts: 1_040 },
          { status: 'offline', ts: 1_050 },
        ] as const;
        await expectChanges(u, [...want]);
        await expectChanges(u, [...want], second);
      });

      check('transitions of many users at once are each reported once', async () => {
        const users = Array.from({ length: 25 }, () => user());
        const conns = users.map(() => [connection(), connection()] as const);
        const results = await Promise.all(
          users.map((u, i) => h().presence.connected(u, 'phone', conns[i]![0], 2_000 + i)),
        );
        assert.deepEqual(
          results,
          users.map(() => true),
        );
        assert.deepEqual(await h().presence.online(users), new Set(users));
        // A second device of each, all at once: no user comes online twice.
        const second = await Promise.all(
          users.map((u, i) => h().presence.connected(u, 'laptop', conns[i]![1], 2_100 + i)),
        );
        assert.deepEqual(
          second,
          users.map(() => false),
        );
        const gone = await Promise.all(
          users.flatMap((u, i) => [
            h().presence.disconnected(u, 'phone', conns[i]![0], 2_200 + i),
            h().presence.disconnected(u, 'laptop', conns[i]![1], 2_200 + i),
          ]),
        );
        // Exactly one of each user's two disconnections is the last one.
        for (let i = 0; i < users.length; i++) {
          assert.equal(Number(gone[2 * i]) + Number(gone[2 * i + 1]), 1, `user ${i}`);
        }
        assert.deepEqual(await h().presence.online(users), new Set());
        await Promise.all(
          users.map((u, i) =>
            expectChanges(u, [
              { status: 'online', ts: 2_000 + i },
              { status: 'offline', ts: 2_200 + i },
            ]),
          ),
        );
      });

      checkWithPeer(
        'a device connected through another instance keeps the user online everywhere',
        async (peer) => {
          const u = user();
          const phone = connection();
          const laptop = connection();
          assert.equal(await h().presence.connected(u, 'phone', phone, 100), true);
          assert.equal(await peer.connected(u, 'laptop', laptop, 110), false);
          assert.deepEqual(await peer.online([u]), new Set([u]));
          assert.equal(await h().presence.disconnected(u, 'phone', phone, 120), false);
          assert.deepEqual(await h().presence.online([u]), new Set([u]));
          assert.equal(await peer.disconnected(u, 'laptop', laptop, 130), true);
          assert.deepEqual(await h().presence.online([u]), new Set());
          assert.deepEqual(await peer.online([u]), new Set());
        },
      );

      checkWithPeer('connections made through one instance are listed by another', async (peer) => {
        const u = user();
        const c = connection();
        await h().presence.connected(u, 'phone', c, 100);
        assert.deepEqual(await peer.connections([u]), new Map([[u, new Map([['phone', c]])]]));
        await h().presence.disconnected(u, 'phone', c, 110);
        assert.deepEqual(await peer.connections([u]), new Map());
      });

      checkWithPeer('changes made through one instance reach the listeners of another', async (peer) => {
        const u = user();
        const phone = connection();
        await h().presence.connected(u, 'phone', phone, 100);
        await h().presence.disconnected(u, 'phone', phone, 110);
        const laptop = connection();
        await peer.connected(u, 'laptop', laptop, 120);
        await peer.disconnected(u, 'laptop', laptop, 130);
        const want = [
          { status: 'online', ts: 100 },
          { status: 'offline', ts: 110 },
          { status: 'online', ts: 120 },
          { status: 'offline', ts: 130 },
        ] as const;
        await expectChanges(u, [...want]);
        await expectChanges(u, [...want], peerEvents);
      });
    },
  );
}

/** Records the changes one listener got, by user, and waits for expected ones. */
class Recorder {
  private readonly byUser = new Map<string, PresenceChange[]>();
  private readonly waiters = new Set<() => void>();

  readonly listener = (change: PresenceChange): void => {
    let list = this.byUser.get(change.user);
    if (!list) {
      list = [];
      this.byUser.set(change.user, list);
    }
    // A copy: a listener must not depend on the adapter never reusing the object.
    list.push({ user: change.user, status: change.status, ts: change.ts });
    for (const wake of [...this.waiters]) wake();
  };

  /**
   * Waits until `user` has at least `want.length` changes (failing after `timeoutMs`), listens
   * `quietMs` longer, then asserts they are exactly `want`: a missing, extra or reordered change fails.
   */
  async expect(
    user: string,
    want: readonly PresenceChange[],
    timeoutMs: number,
    quietMs: number,
  ): Promise<void> {
    const got = () => this.byUser.get(user) ?? [];
    if (got().length < want.length) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          waiters.delete(wake);
          resolve();
        }
        const waiters = this.waiters;
        const wake = () => {
          if (got().length >= want.length) done();
        };
        waiters.add(wake);
      });
    }
    if (quietMs > 0) await new Promise((resolve) => setTimeout(resolve, quietMs));
    assert.deepEqual(got(), want, `presence changes of ${user}`);
  }
}
