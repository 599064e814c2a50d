// Runs the MessageBus conformance suite against the in-process bus, with a second instance over
// the same channels as the peer.
import { messageBusSuite } from '../conformance/message-bus.suite.js';
import { MemoryBus } from './memory-bus.js';

messageBusSuite('MemoryBus', async () => {
  const bus = new MemoryBus();
  return { bus, peer: bus.peer(), close: async () => {} };
});
