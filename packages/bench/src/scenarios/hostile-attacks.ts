/**
 * The attacks of the `hostile` scenario (issue 10), by name, in the order they run; shared by the
 * scenario and its attacker process (which must not be imported for them: it runs on load).
 * @module
 */

/** The attacks, in the order the scenario runs them. */
export const ATTACKS = [
  'sync-flood',
  'http-history',
  'typing-flood',
  'idle-sockets',
  'big-direct',
  'read-flood',
  'group-fanout',
] as const;
/** One of ATTACKS. */
export type Attack = (typeof ATTACKS)[number];
