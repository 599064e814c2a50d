// Runs the MessageBus conformance suite against real Redis pub/sub, with two instances.
import { randomBytes } from 'node:crypto';
import { messageBusSuite } from '@parley/server/adapters/conformance/message-bus.suite';
import { requireEngine } from '@parley/server/test/engines';
import { RedisBus } from './redis-bus.js';

const url = requireEngine('redis', 'RedisBus against real Redis');

if (url !== undefined) {
  messageBusSuite('RedisBus', async () => {
    const prefix = `parley-test-${randomBytes(4).toString('hex')}:`;
    const bus = await RedisBus.open(url, { prefix });
    const peer = await RedisBus.open(url, { prefix });
    return {
      bus,
      peer,
      close: async () => {
        await bus.close();
        await peer.close();
      },
    };
  });
}
