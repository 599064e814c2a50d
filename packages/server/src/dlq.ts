import { decodeTime } from 'ulid';
import type { DeadLetterStore } from './ports/job-queue.js';
import type { DeadLetter, PushQueue } from './ports/push-queue.js';
import type { WebhookDeadLetter, WebhookQueue } from './ports/webhooks.js';

/** Letters read per page when a command covers all of them. */
const PAGE = 500;

export const PUSH_DLQ_USAGE = `usage: parley push dlq <list|show|replay|purge> …
  list [--limit N] [--after ID]   dead-lettered push jobs, oldest first
  show ID                          one letter, as JSON
  replay ID… | --all               queue the jobs again (sent if the device is still offline), then delete the letters
  purge ID… | --all                delete the letters`;

export const WEBHOOKS_DLQ_USAGE = `usage: parley webhooks dlq <list|show|replay|purge> …
  list [--limit N] [--after ID]   dead-lettered webhook deliveries, oldest first
  show ID                          one letter, as JSON
  replay ID… | --all               queue the deliveries again (same event ids), then delete the letters
  purge ID… | --all                delete the letters`;

/** What the command works on: a dead-letter store, how its letters are queued again and shown. */
export interface DlqTarget<L extends { id: string }> {
  deadLetters: DeadLetterStore<L>;
  requeue(letters: readonly L[]): Promise<void>;
  /** One letter on one line: what an operator scans for. */
  line(letter: L): string;
  usage: string;
}

/** The push dead letters, replayed into the push queue. */
export function pushDlq(deadLetters: DeadLetterStore<DeadLetter>, queue: PushQueue): DlqTarget<DeadLetter> {
  return {
    deadLetters,
    requeue: (letters) => queue.enqueue(letters.map((l) => l.job)),
    line: (l) =>
      [
        l.id,
        new Date(l.ts).toISOString(),
        l.platform,
        `${l.job.user}/${l.job.device}`,
        `${l.job.conv}#${l.job.seq}`,
        `attempts=${l.attempts}`,
        l.reason,
      ].join('  '),
    usage: PUSH_DLQ_USAGE,
  };
}

/** The webhook dead letters, replayed into the webhook queue (behind what is queued for their keys). */
export function webhooksDlq(
  deadLetters: DeadLetterStore<WebhookDeadLetter>,
  queue: WebhookQueue,
): DlqTarget<WebhookDeadLetter> {
  return {
    deadLetters,
    requeue: (letters) => queue.enqueue(letters.map((l) => l.delivery)),
    line: (l) =>
      [
        l.id,
        new Date(l.ts).toISOString(),
        l.delivery.endpoint,
        l.delivery.event.type,
        l.delivery.event.id,
        `attempts=${l.attempts}`,
        l.reason,
      ].join('  '),
    usage: WEBHOOKS_DLQ_USAGE,
  };
}

/** The letters named by id, or every letter with `all`. */
async function* selected<L extends { id: string }>(
  t: DlqTarget<L>,
  ids: readonly string[],
  all: boolean,
): AsyncGenerator<L[]> {
  if (!all) {
    const found = await Promise.all(ids.map((id) => t.deadLetters.get(id)));
    const missing = ids.filter((_, i) => !found[i]);
    if (missing.length > 0) throw new Error(`no such letter: ${missing.join(', ')}`);
    yield found as L[];
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
 * `parley push dlq …` and `parley webhooks dlq …`: lists, shows, replays and purges dead letters.
 * Replaying queues the job again before deleting its letter, so a crash in between replays it
 * twice (at worst one extra notification, which the provider collapses, or one repeated event,
 * which receivers deduplicate by id), never loses it. Returns the exit code.
 */
export async function dlqCommand<L extends { id: string }>(
  t: DlqTarget<L>,
  args: { action: string | undefined; ids: string[]; all: boolean; limit?: number; after?: string },
  out: (text: string) => void,
): Promise<number> {
  switch (args.action) {
    case 'list': {
      const letters = await t.deadLetters.list(args.limit ?? 100, args.after);
      for (const l of letters) out(t.line(l));
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
        if (args.action === 'replay') await t.requeue(letters);
        n += await t.deadLetters.remove(letters.map((l) => l.id));
      }
      out(`${args.action === 'replay' ? 'replayed' : 'purged'} ${n} letter(s)`);
      return 0;
    }
    default:
      out(t.usage);
      return 2;
  }
}
