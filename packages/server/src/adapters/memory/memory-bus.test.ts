// Runs the MessageBus conformance suite against the in-process bus.
import { messageBusSuite } from '../conformance/message-bus.suite.js';
import { MemoryBus } from './memory-bus.js';

messageBusSuite('MemoryBus', async () => ({ bus: new MemoryBus(), close: async () => {} }), {
  skip: { 'messages cross between instances': 'MemoryBus is one process’s bus' },
});
