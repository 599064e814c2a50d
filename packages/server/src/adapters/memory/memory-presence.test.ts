// Runs the PresencePort conformance suite against the in-process presence table, with a second
// instance over the same table as the peer.
import { presencePortSuite } from '../conformance/presence.suite.js';
import { MemoryPresence } from './memory-presence.js';

presencePortSuite('MemoryPresence', async () => {
  const presence = new MemoryPresence();
  return { presence, peer: presence.peer(), close: async () => {} };
});
