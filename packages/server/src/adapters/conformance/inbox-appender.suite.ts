/**
 * The conformance suite of the `InboxAppender` port: the in-process `InboxWriter` and cluster
 * mode's `RemoteInboxAppender` (which publishes to the fan-out topic, whose consumer, the fan-out
 * stage, numbers and stores the entries) must put the same entries in the same inboxes under the
 * same numbers. It pins down the contract written in the doc comments of `ports/inbox-appender.ts`:
 * each user's entries numbered 1, 2, 3, … after the stored head, in the order they were handed in;
 * `appendMessages` puts each message in each of its recipients' inboxes once; `idle` waits for
 * what was handed in before it; `withHeads` runs its function; `backlog` counts what is not done.
 *
 * What "stored" means differs by design: in process `idle` resolves once the entries are in the
 * inbox store; in cluster mode once they are durable on the fan-out topic, and the fan-out stage
 * stores them afterwards. So every check reads the store after `appender.idle()` and then the
 * harness's `stored()`, which is immediate in process and waits for the fan-out stage in cluster
 * mode: the in-process runner checks `idle` itself, the remote runner the whole path.
 *
 * The entries are handed in as the stages that produce them do (the preconditions of the fan-out
 * stage's repeat detection): inside `withHeads`, each message to each recipient once, a
 * conversation's messages in seq order, each receipt once, every message durable in the
 * conversation log first (cluster mode sends messages by reference and reads them back).
 *
 * The suite never runs on its own: a runner calls `inboxAppenderSuite` (the in-process one in
 * `backend/writer-ports.conformance.test.ts`, the remote one in `cluster/remote.conformance.test.ts`).
 *
 * @module
 */
import assert from 'node:assert/strict';
import { inboxEventHead, inboxEventTail } from '@parley/protocol';
import { MESSAGE_FRAME_HEAD, messageFrameTail } from '../../domain/inbox-writer.js';
import type { InboxAppender, MessageDelivery, PendingEntry } from '../../ports/inbox-appender.js';
import type { InboxEntry, InboxStore } from '../../ports/inbox-store.js';
import type { MessageStore, StoredMessage } from '../../ports/message-store.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite: the appender, the stores around it, and how to wait for it. */
export interface InboxAppenderHarness extends Closable {
  appender: InboxAppender;
  /** Where the appended entries end up. */
  inbox: InboxStore;
  /** The conversation log: every message handed to the appender is stored here first. */
  messages: MessageStore;
  /**
   * Called after `appender.idle()` resolved: resolves once everything the appender had taken when
   * it is called is in `inbox`, rejecting past a deadline. Immediate for an appender whose `idle`
   * already means stored; in cluster mode it waits for the fan-out stage (never a fixed sleep).
   */
  stored(): Promise<void>;
  /** The frames delivered live to `user` so far, in order (for an adapter that delivers them). */
  frames?: (user: string) => readonly string[];
}

/** Registers the `InboxAppender` conformance tests for one adapter. */
export function inboxAppenderSuite(
  name: string,
  make: () => Promise<InboxAppenderHarness>,
  options: SuiteOptions = {},
): void {
  defineSuite({ subject: 'InboxAppender', adapter: name, make, options }, ({ h, check, checkWith, id }) => {
    const a = () => h().appender;
    const user = () => id('u');
    const group = () => `g:${id('g')}`;

    /** Stores messages `from`..`to` of `conv` in the conversation log and returns them. */
    const messages = async (conv: string, from: number, to: number): Promise<StoredMessage[]> => {
      const rows = Array.from({ length: to - from + 1 }, (_, i) => message(conv, from + i));
      await h().messages.append(rows);
      return rows;
    };
    /** Hands `pending` in, as the stages do: inside `withHeads` for its users. */
    const append = (pending: readonly PendingEntry[]) =>
      a().withHeads(
        pending.map((p) => p.user),
        () => a().append(pending),
      );
    const appendMessages = (deliveries: readonly MessageDelivery[]) =>
      a().withHeads(
        deliveries.flatMap((d) => d.recipients),
        () => a().appendMessages(deliveries, []),
      );
    /** Waits until everything handed in so far is stored, through the appender's own `idle`. */
    const settle = async () => {
      await a().idle();
      await h().stored();
    };
    const inboxOf = (u: string) => h().inbox.read(u, 0, 10_000);
    /** What `pending` (all of one user, in order) is once stored under numbers `first`, `first + 1`, … */
    const numbered = (pending: readonly PendingEntry[], first: number): InboxEntry[] =>
      pending.map((p, i) => ({ ...p.entry, user: p.user, inbox: first + i }) as InboxEntry);
    const messageEntry = (u: string, m: StoredMessage, inbox: number): InboxEntry => ({
      user: u,
      inbox,
      ts: m.ts,
      type: 'message',
      conv: m.conv,
      seq: m.seq,
    });

    check('entries appended for a user get inbox numbers 1, 2, 3, … in append order', async () => {
      const [ann, bob, actor] = [user(), user(), user()];
      const conv = group();
      const [m1, m2, m3] = await messages(conv, 1, 3);
      const forAnn = [asPending(ann, m1!), receipt(ann, conv, 1, actor), asPending(ann, m2!)];
      const forBob = [receipt(bob, conv, 2, actor), asPending(bob, m1!)];
      await append([forAnn[0]!, forBob[0]!]);
      await append([forAnn[1]!]);
      await append([forBob[1]!, forAnn[2]!]);
      const late = asPending(ann, m3!);
      await append([late]);
      await settle();
      assert.deepEqual(await inboxOf(ann), numbered([...forAnn, late], 1));
      assert.deepEqual(await inboxOf(bob), numbered(forBob, 1));
      assert.equal(await h().inbox.head(ann), 4);
      assert.equal(await h().inbox.head(bob), 2);
    });

    check('numbering continues after the entries already stored', async () => {
      const [ann, actor] = [user(), user()];
      const before = group();
      const earlier = [1, 2, 3].map((seq) => receipt(ann, before, seq, actor));
      await h().inbox.append(numbered(earlier, 1), []);
      const conv = group();
      const [m1, m2] = await messages(conv, 1, 2);
      const next = [asPending(ann, m1!), asPending(ann, m2!)];
      await append(next);
      await settle();
      assert.deepEqual(await inboxOf(ann), [...numbered(earlier, 1), ...numbered(next, 4)]);
    });

    check(
      'entries handed in by concurrent withHeads calls are numbered in the order they were appended',
      async () => {
        const [shared, actor] = [user(), user()];
        const conv = group();
        const order: PendingEntry[] = [];
        await Promise.all(
          Array.from({ length: 12 }, (_, i) => {
            const mine = receipt(shared, conv, i + 1, actor);
            const alone = receipt(user(), conv, i + 1, actor);
            return a().withHeads([shared, alone.user], () => {
              order.push(mine);
              a().append([alone, mine]);
            });
          }),
        );
        await settle();
        assert.equal(order.length, 12);
        assert.deepEqual(await inboxOf(shared), numbered(order, 1));
      },
    );

    check("appendMessages puts each message in each recipient's inbox exactly once", async () => {
      const [ann, bob, cat, dan] = [user(), user(), user(), user()];
      const g = group();
      const dm = `dm:${[ann, bob].sort().join(':')}`;
      const [g1, g2, g3] = await messages(g, 1, 3);
      const [d1] = await messages(dm, 1, 1);
      await appendMessages([
        { message: g1!, recipients: [ann, bob, cat] },
        { message: d1!, recipients: [ann, bob] },
        { message: g2!, recipients: [ann, cat] },
      ]);
      await appendMessages([{ message: g3!, recipients: [cat, bob, ann, dan] }]);
      await settle();
      assert.deepEqual(await inboxOf(ann), [
        messageEntry(ann, g1!, 1),
        messageEntry(ann, d1!, 2),
        messageEntry(ann, g2!, 3),
        messageEntry(ann, g3!, 4),
      ]);
      assert.deepEqual(await inboxOf(bob), [
        messageEntry(bob, g1!, 1),
        messageEntry(bob, d1!, 2),
        messageEntry(bob, g3!, 3),
      ]);
      assert.deepEqual(await inboxOf(cat), [
        messageEntry(cat, g1!, 1),
        messageEntry(cat, g2!, 2),
        messageEntry(cat, g3!, 3),
      ]);
      assert.deepEqual(await inboxOf(dan), [messageEntry(dan, g3!, 1)]);
    });

    check('a large group message reaches every member once', async () => {
      const members = Array.from({ length: 300 }, user);
      const g = group();
      const [m1, m2] = await messages(g, 1, 2);
      await appendMessages([
        { message: m1!, recipients: members },
        { message: m2!, recipients: members },
      ]);
      await settle();
      for (const u of members)
        assert.deepEqual(await inboxOf(u), [messageEntry(u, m1!, 1), messageEntry(u, m2!, 2)], u);
    });

    check('append and appendMessages share each user’s numbering, in the order of the calls', async () => {
      const [ann, actor] = [user(), user()];
      const g = group();
      const [m1, m2] = await messages(g, 1, 2);
      const r1 = receipt(ann, g, 1, actor);
      await appendMessages([{ message: m1!, recipients: [ann] }]);
      await append([r1]);
      await appendMessages([{ message: m2!, recipients: [ann] }]);
      await settle();
      assert.deepEqual(await inboxOf(ann), [
        messageEntry(ann, m1!, 1),
        { ...r1.entry, user: ann, inbox: 2 } as InboxEntry,
        messageEntry(ann, m2!, 3),
      ]);
    });

    check('idle resolves once everything handed in before it is stored, whatever comes after', async () => {
      const [ann, bob, actor] = [user(), user(), user()];
      const conv = group();
      const first = [receipt(ann, conv, 1, actor), receipt(ann, conv, 2, actor)];
      await append(first);
      const idle = a().idle();
      const later = receipt(bob, conv, 3, actor);
      await append([later]);
      await idle;
      await h().stored();
      assert.deepEqual(await inboxOf(ann), numbered(first, 1), 'stored once idle resolved');
      await settle();
      assert.deepEqual(await inboxOf(bob), numbered([later], 1));
    });

    check('idle resolves at once when nothing is pending, and backlog is then 0', async () => {
      await settle();
      assert.equal(a().backlog, 0);
      await a().idle();
      await a().idle();
      assert.equal(a().backlog, 0);
    });

    check('backlog counts the entries handed in and not done, and is back to 0 once idle', async () => {
      await settle();
      const [ann, bob, actor] = [user(), user(), user()];
      const g = group();
      const [m1] = await messages(g, 1, 1);
      await a().withHeads([ann, bob], () => {
        a().append([receipt(ann, g, 1, actor), receipt(bob, g, 1, actor)]);
        a().appendMessages([{ message: m1!, recipients: [ann, bob] }], []);
        // Nothing can be stored (or published) before this synchronous step ends.
        assert.equal(a().backlog, 4);
      });
      await a().idle();
      assert.equal(a().backlog, 0);
      await h().stored();
      assert.equal((await inboxOf(ann)).length + (await inboxOf(bob)).length, 4);
    });

    check(
      'withHeads runs its function once, resolving with its result or rejecting with its error',
      async () => {
        const users = [user(), user()];
        let runs = 0;
        assert.equal(
          await a().withHeads(users, () => {
            runs++;
            return 'result';
          }),
          'result',
        );
        assert.equal(runs, 1);
        // Again, with the heads now known: still once.
        assert.deepEqual(
          await a().withHeads(users, () => {
            runs++;
            return { n: runs };
          }),
          { n: 2 },
        );
        const boom = new Error('from fn');
        await assert.rejects(
          a().withHeads([user()], () => {
            runs++;
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal(runs, 3);
        assert.equal(await a().withHeads([], () => 7), 7, 'for no users too');
      },
    );

    checkWith('frames', 'record of the frames delivered live')(
      'each stored entry is delivered live to its user, with its inbox number',
      async (frames) => {
        const [ann, bob, actor] = [user(), user(), user()];
        const g = group();
        const [m1, m2] = await messages(g, 1, 2);
        const r = receipt(ann, g, 1, actor);
        await appendMessages([{ message: m1!, recipients: [ann, bob] }]);
        await append([r, asPending(ann, m2!)]);
        await settle();
        const frame = (p: PendingEntry, n: number) => `${p.frameHead}${n},${p.frameTail.toString()}`;
        assert.deepEqual(frames(ann), [
          frame(asPending(ann, m1!), 1),
          frame(r, 2),
          frame(asPending(ann, m2!), 3),
        ]);
        assert.deepEqual(frames(bob), [frame(asPending(bob, m1!), 1)]);
        assert.equal((JSON.parse(frames(ann)[1]!) as { inbox: number }).inbox, 2);
      },
    );
  });
}

/** A message as its conversation's writer stores it. */
function message(conv: string, seq: number): StoredMessage {
  return {
    conv,
    seq,
    ts: 1_700_000_000_000 + seq,
    from: 'sender',
    from_device: 'dev',
    cmid: `cmid-${seq}`,
    kind: 'text',
    body: `message ${seq} of ${conv} ✓`,
  };
}

/** A durable message's inbox entry for `user`, framed as the fan-out frames it. */
function asPending(user: string, m: StoredMessage): PendingEntry {
  return {
    user,
    entry: { type: 'message', conv: m.conv, seq: m.seq, ts: m.ts },
    frameHead: MESSAGE_FRAME_HEAD,
    frameTail: messageFrameTail(m),
  };
}

/** A receipt for `user`: `actor`'s read watermark in `conv` moved to `seq`. */
function receipt(user: string, conv: string, seq: number, actor: string): PendingEntry {
  const ts = 1_700_000_100_000 + seq;
  return {
    user,
    entry: { type: 'receipt', conv, seq, ts, actor, kind: 'read' },
    frameHead: inboxEventHead('receipt'),
    frameTail: Buffer.from(inboxEventTail({ conv, user: actor, kind: 'read', seq, ts })),
  };
}
