/**
 * The conformance suite of the `MessageBus` port (in-process and Redis pub/sub): delivery to the
 * channel's subscribers only, every subscriber, per-publisher order, nothing after unsubscribing,
 * and — for a shared bus — between instances.
 * @module
 */
import assert from 'node:assert/strict';
import type { MessageBus } from '../../ports/message-bus.js';
import { type Closable, defineSuite, type SuiteOptions } from './harness.js';

/** What the runner hands the suite. */
export interface MessageBusHarness extends Closable {
  bus: MessageBus;
  /**
   * A second instance over the same bus, as another process has (`MemoryBus.peer()` in one
   * process). Required: every bus is shared by the instances of a deployment.
   */
  peer: MessageBus;
}

/** Registers the `MessageBus` conformance tests for one adapter. */
export function messageBusSuite(
  name: string,
  make: () => Promise<MessageBusHarness>,
  options: SuiteOptions = {},
): void {
  const until = async (what: string, cond: () => boolean, timeoutMs = 2_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const settle = () => new Promise((r) => setTimeout(r, 100));

  defineSuite({ subject: 'MessageBus', adapter: name, make, options }, ({ h, check, checkWith, id }) => {
    check('a message reaches the subscribers of its channel only, in publish order', async () => {
      const chan = id('c');
      const other = id('c');
      const got: string[] = [];
      const elsewhere: string[] = [];
      const off = await h().bus.subscribe(chan, (m) => got.push(m));
      const offOther = await h().bus.subscribe(other, (m) => elsewhere.push(m));
      for (let i = 0; i < 50; i++) await h().bus.publish(chan, `m${i}`);
      await until('50 messages', () => got.length === 50);
      assert.deepEqual(
        got,
        Array.from({ length: 50 }, (_, i) => `m${i}`),
      );
      await settle();
      assert.deepEqual(elsewhere, []);
      await off();
      await offOther();
    });

    check('every subscriber of a channel gets each message', async () => {
      const chan = id('c');
      const a: string[] = [];
      const b: string[] = [];
      const offA = await h().bus.subscribe(chan, (m) => a.push(m));
      const offB = await h().bus.subscribe(chan, (m) => b.push(m));
      await h().bus.publish(chan, 'hello');
      await until('both', () => a.length === 1 && b.length === 1);
      await offA();
      await h().bus.publish(chan, 'again');
      await until('b again', () => b.length === 2);
      await settle();
      assert.deepEqual(a, ['hello']);
      await offB();
    });

    check('a message published with no subscriber is dropped, not kept for a later one', async () => {
      const chan = id('c');
      await h().bus.publish(chan, 'lost');
      const got: string[] = [];
      const off = await h().bus.subscribe(chan, (m) => got.push(m));
      await h().bus.publish(chan, 'kept');
      await until('kept', () => got.length >= 1);
      await settle();
      assert.deepEqual(got, ['kept']);
      await off();
    });

    checkWith('peer', 'second instance')('messages cross between instances', async (peer) => {
      const chan = id('c');
      const got: string[] = [];
      const off = await peer.subscribe(chan, (m) => got.push(m));
      for (let i = 0; i < 20; i++) await h().bus.publish(chan, `x${i}`);
      await until('20 messages on the peer', () => got.length === 20);
      assert.deepEqual(
        got,
        Array.from({ length: 20 }, (_, i) => `x${i}`),
      );
      await off();
    });
  });
}
