// Durable commit rate of the embedded store: many concurrent appends (as from many sequencers),
// group-committed by the writer thread with synchronous=FULL. Prints messages/s, commits (fsyncs)/s
// the store's CPU per message (all threads) and the longest main-thread event-loop stall.
// `--inbox 2` also stores each message's fan-out as the server does for a 1:1 message (an inbox
// entry for each of the two users and the fan-out mark, in a second commit after the message's).
//   npm run bench:store -- [--seconds 10] [--concurrency 256] [--body 100] [--inbox 0|2]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { SqliteStore } from '../src/adapters/sqlite/sqlite-store.js';
import type { StoredMessage } from '../src/ports/message-store.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '256' },
    body: { type: 'string', default: '100' },
    inbox: { type: 'string', default: '0' },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const body = 'x'.repeat(Number(values.body));
const withInbox = Number(values.inbox) > 0;

const dir = mkdtempSync(join(tmpdir(), 'parley-bench-'));
let commits = 0;
let rowsCommitted = 0;
const store = new SqliteStore(join(dir, 'bench.db'), {
  onCommit: (info) => {
    commits++;
    rowsCommitted += info.rows;
  },
});
const loop = monitorEventLoopDelay({ resolution: 1 });

let stored = 0;
let running = true;
const started = performance.now();
const cpuStart = process.cpuUsage();
loop.enable();
// Each worker is one conversation's sequencer: one append in flight at a time, as in the server.
await Promise.all(
  Array.from({ length: concurrency }, async (_, w) => {
    const conv = `dm:bench${w}:peer${w}`;
    const users = [`bench${w}`, `peer${w}`];
    let seq = 0;
    while (running) {
      seq++;
      const m: StoredMessage = {
        conv,
        seq,
        ts: Date.now(),
        from: `bench${w}`,
        from_device: 'd',
        cmid: `c${seq}`,
        kind: 'text',
        body,
      };
      await store.messages.append([m]);
      // One inbox number per user per message: each worker owns its two users' inboxes.
      if (withInbox)
        await store.inbox.append([], [{ conv, seq }], [{ conv, seq, ts: m.ts, users, inboxes: [seq, seq] }]);
      stored++;
      if (performance.now() - started > seconds * 1000) running = false;
    }
  }),
);
const elapsed = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuStart);
loop.disable();
await store.close();
rmSync(dir, { recursive: true, force: true });
const row = {
  seconds: Number(elapsed.toFixed(1)),
  concurrency,
  body_bytes: body.length,
  inbox_entries_per_message: withInbox ? 2 : 0,
  messages_per_s: Math.round(stored / elapsed),
  commits_per_s: Math.round(commits / elapsed),
  rows_per_commit: Number((rowsCommitted / commits).toFixed(1)),
  cpu_us_per_message: Number(((cpu.user + cpu.system) / stored).toFixed(1)),
  max_event_loop_stall_ms: Number((loop.max / 1e6).toFixed(2)),
  p99_event_loop_delay_ms: Number((loop.percentile(99) / 1e6).toFixed(2)),
};
console.table([row]);
console.log(JSON.stringify(row));
