import { decodeTime } from 'ulid';
import type { DeadLetter, PushDeadLetters, PushQueue } from './ports/push-queue.js';

/** Letters read per page when a command covers all of them. */
const PAGE = 500;

export const PUSH_DLQ_USAGE = `usage: parley push dlq <list|show|replay|purge> …
  list [--limit N] [--after ID]   dead-lettered push jobs, oldest first
  show ID                          one letter, as JSON
  replay ID… | --all               queue the jobs again (sent if the device is still offline), then delete the letters
  purge ID… | --all                delete the letters`;

/** What the command works on: the dead-letter store and the push queue of the configured mode. */
export interface PushDlqTarget {
  deadLetters: PushDeadLetters;
  queue: PushQueue;
}

/** One letter on one line: what an operator scans for. */
function line(l: DeadLetter): string {
  const j = l.job;
  return [
    l.id,
    new Date(l.ts).toISOString(),
    l.platform,
    `${j.user}/${j.device}`,
    `${j.conv}#${j.seq}`,
    `attempts=${l.attempts}`,
    l.reason,
  ].join('  ');
}

/** The letters named by id, or every letter with `all`. */
async function* selected(
  t: PushDlqTarget,
  ids: readonly string[],
  all: boolean,
): AsyncGenerator<DeadLetter[]> {
  if (!all) {
    const found = await Promise.all(ids.map((id) => t.deadLetters.get(id)));
    const missing = ids.filter((_, i) => !found[i]);
    if (missing.length > 0) throw new Error(`no such letter: ${missing.join(', ')}`);
    yield found as DeadLetter[];
    return;
  }
  // Paged by id, not from the start each time: a store with tombstones (Cassandra) would rescan
  // every letter already deleted. Letters made after the command started (a replayed job failing
  // again) are left for the next run, so a replay of a failing provider ends.
  const startedAt = Date.now();
  let after: string | undefined;
  for (;;) {
    const page = (await t.deadLetters.list(PAGE, after)).filter((l) => decodeTime(l.id) <= startedAt);
    if (page.length === 0) return;
    after = page[page.length - 1]!.id;
    yield page;
  }
}

/**
 * `parley push dlq …`: lists, shows, replays and purges dead-lettered push jobs. Replaying queues
 * the job again before deleting its letter, so a crash in between replays it twice (at worst one
 * extra notification, which the provider collapses), never loses it. Returns the exit code.
 */
export async function pushDlqCommand(
  t: PushDlqTarget,
  args: { action: string | undefined; ids: string[]; all: boolean; limit?: number; after?: string },
  out: (text: string) => void,
): Promise<number> {
  switch (args.action) {
    case 'list': {
      const letters = await t.deadLetters.list(args.limit ?? 100, args.after);
      for (const l of letters) out(line(l));
      if (letters.length === 0) out('(no dead letters)');
      return 0;
    }
    case 'show': {
      const l = args.ids[0] ? await t.deadLetters.get(args.ids[0]) : null;
      if (!l) throw new Error(`no such letter: ${args.ids[0] ?? '(give an id)'}`);
      out(JSON.stringify(l, null, 2));
      return 0;
    }
    case 'replay':
    case 'purge': {
      if (!args.all && args.ids.length === 0) throw new Error(`${args.action}: give letter ids or --all`);
      let n = 0;
      for await (const letters of selected(t, args.ids, args.all)) {
        if (args.action === 'replay') await t.queue.enqueue(letters.map((l) => l.job));
        n += await t.deadLetters.remove(letters.map((l) => l.id));
      }
      out(`${args.action === 'replay' ? 'replayed' : 'purged'} ${n} letter(s)`);
      return 0;
    }
    default:
      out(PUSH_DLQ_USAGE);
      return 2;
  }
}
