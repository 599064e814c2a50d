// Runs the PresencePort conformance suite against the in-process presence table.
import { presencePortSuite } from '../conformance/presence.suite.js';
import { MemoryPresence } from './memory-presence.js';

const oneProcess = 'MemoryPresence is one process’s table: there is no second instance to share it with';

presencePortSuite('MemoryPresence', async () => ({ presence: new MemoryPresence(), close: async () => {} }), {
  skip: {
    'a device connected through another instance keeps the user online everywhere': oneProcess,
    'changes made through one instance reach the listeners of another': oneProcess,
    'connections made through one instance are listed by another': oneProcess,
  },
});
