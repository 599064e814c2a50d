// The fan-out stage's repeat detection, on the in-memory store: a record delivered again, or a
// message's fan-out published again for a retried send, never puts the message in an inbox twice,
// however many entries came in between and whichever member owns the partition by then.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBus } from '../adapters/memory/memory-bus.js';
import { MemoryLog } from '../adapters/memory/memory-log.js';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import { frameText } from '../backend/sessions.js';
import { Fanout } from '../domain/fanout.js';
import { InboxWriter, MESSAGE_FRAME_HEAD } from '../domain/inbox-writer.js';
import { Sequencer } from '../domain/sequencer.js';
import type { PendingEntry } from '../ports/inbox-appender.js';
import type { InboxEntry } from '../ports/inbox-store.js';
import { silentLogger } from '../ports/logger.js';
import type { ConsumedRecord } from '../ports/partitioned-log.js';
import type { OutboundFrame } from '../ports/router.js';
import { FanoutStage } from './fanout-stage.js';
import { RemoteInboxAppender } from './remote.js';
import { SequencerStage } from './sequencer-stage.js';
import { type IngressRecord, type ReplyMessage, toFanoutRecord } from './wire.js';

/** A fan-out stage as one member runs it; `delivered` counts live frames per user. */
function member(store: MemoryStore) {
  const delivered = new Map<string, number>();
  const frames: string[] = [];
  const router = {
    deliver: (user: string, frame: OutboundFrame) => {
      delivered.set(user, (delivered.get(user) ?? 0) + 1);
      frames.push(frameText(frame));
    },
  };
  const writer = new InboxWriter(store.inbox, router, silentLogger);
  return { stage: new FanoutStage(writer, store.inbox, store.messages, silentLogger), delivered, frames };
}

let offset = 0n;
/** The fan-out records of `entries`, each message stored in the conversation log first. */
async function records(store: MemoryStore, entries: readonly PendingEntry[]): Promise<ConsumedRecord[]> {
  for (const p of entries) {
    const e = p.entry;
    if (e.type !== 'message' || (await store.messages.getMany([e]))[0]) continue;
    await store.messages.append([
      {
        conv: e.conv,
        seq: e.seq,
        ts: e.ts,
        from: 'a',
        from_device: 'd',
        cmid: `${e.conv}-${e.seq}`,
        kind: 'text',
        body: `m${e.seq}`,
      },
    ]);
  }
  return entries.map((p) => ({
    partition: 0,
    offset: offset++,
    key: p.user,
    value: Buffer.from(JSON.stringify(toFanoutRecord(p))),
    timestamp: Date.now(),
  }));
}

function message(user: string, conv: string, seq: number): PendingEntry {
  return {
    user,
    entry: { type: 'message', conv, seq, ts: 1_000 + seq },
    frameHead: MESSAGE_FRAME_HEAD,
    frameTail: Buffer.from(`"conv":"${conv}","seq":${seq}}`),
  };
}

function receipt(user: string, conv: string, seq: number, actor: string): PendingEntry {
  return {
    user,
    entry: { type: 'receipt', conv, seq, ts: 2_000 + seq, actor, kind: 'read' },
    frameHead: '{"type":"receipt","inbox":',
    frameTail: Buffer.from(`"conv":"${conv}","seq":${seq}}`),
  };
}

/** The user's message entries as "conv/seq", in inbox order. */
async function inboxMessages(store: MemoryStore, user: string): Promise<string[]> {
  const all: InboxEntry[] = await store.inbox.read(user, 0, 100_000);
  return all.filter((e) => e.type === 'message').map((e) => `${e.conv}/${e.seq}`);
}

test('a record delivered again right after it was stored is dropped, by the same member or the next', async () => {
  const store = new MemoryStore();
  const first = member(store);
  const batch = await records(store, [message('sink', 'dm:a:sink', 1), receipt('sink', 'dm:a:sink', 1, 'a')]);
  await first.stage.onRecords(0, batch);
  await first.stage.onRecords(0, batch);
  const next = member(store);
  await next.stage.onAssigned([0]);
  await next.stage.onRecords(0, batch);
  assert.equal(await store.inbox.head('sink'), 2);
  assert.equal(next.delivered.get('sink'), undefined, 'nothing delivered twice');
});

test('a fan-out published again long after the first (a retried send) is dropped after a rebalance', async () => {
  const store = new MemoryStore();
  const first = member(store);
  await first.stage.onRecords(0, await records(store, [message('sink', 'dm:a:sink', 7)]));
  // Far more than the inbox tail a new owner reads: other senders keep the sink busy.
  const others = Array.from({ length: 1_500 }, (_, i) =>
    message('sink', `dm:b${i % 5}:sink`, 1 + Math.floor(i / 5)),
  );
  await first.stage.onRecords(0, await records(store, others));
  await first.stage.onRevoked([0]);

  const next = member(store);
  await next.stage.onAssigned([0]);
  await next.stage.onRecords(
    0,
    await records(store, [message('sink', 'dm:a:sink', 7), message('sink', 'dm:a:sink', 8)]),
  );
  const seen = await inboxMessages(store, 'sink');
  assert.equal(seen.filter((m) => m === 'dm:a:sink/7').length, 1, 'seq 7 stored once');
  assert.deepEqual(seen.slice(-1), ['dm:a:sink/8'], 'the next message still gets through');
  assert.equal(await store.inbox.head('sink'), 1 + 1_500 + 1);
});

test('messages of a conversation new to the user pass, and each user is judged separately', async () => {
  const store = new MemoryStore();
  const { stage } = member(store);
  await stage.onRecords(0, await records(store, [message('ann', 'g:x', 5), message('bob', 'g:x', 5)]));
  await stage.onRecords(
    0,
    await records(store, [message('ann', 'g:x', 5), message('bob', 'g:x', 6), message('cat', 'g:x', 5)]),
  );
  assert.deepEqual(await inboxMessages(store, 'ann'), ['g:x/5']);
  assert.deepEqual(await inboxMessages(store, 'bob'), ['g:x/5', 'g:x/6']);
  assert.deepEqual(await inboxMessages(store, 'cat'), ['g:x/5']);
});

test('a message travels by reference: its record carries no body, the frame is read from the store', async () => {
  const store = new MemoryStore();
  const { stage, frames } = member(store);
  const batch = await records(store, [message('ann', 'g:big', 1), message('bob', 'g:big', 1)]);
  for (const r of batch) assert.deepEqual(Object.keys(JSON.parse(r.value.toString())), ['user', 'entry']);
  await stage.onRecords(0, batch);
  assert.deepEqual(
    frames.map((f) => JSON.parse(f)),
    ['ann', 'bob'].map(() => ({
      type: 'message',
      inbox: 1,
      conv: 'g:big',
      seq: 1,
      ts: 1_001,
      from: 'a',
      from_device: 'd',
      cmid: 'g:big-1',
      kind: 'text',
      body: 'm1',
    })),
  );
});

/** A sequencer stage on the in-memory store, log and bus; `replies` collects its answers. */
async function sequencerStage() {
  const store = new MemoryStore();
  // Counts the store's cmid lookups (the dedup read).
  const lookups = { n: 0 };
  const findByCmid = store.messages.findByCmid;
  store.messages.findByCmid = (...args) => {
    lookups.n++;
    return findByCmid(...args);
  };
  const log = new MemoryLog();
  log.createTopic('fanout', 4);
  const outbox = new RemoteInboxAppender(log, 'fanout', silentLogger);
  const fanout = new Fanout(outbox, store.messages, store.conversations, silentLogger);
  const sequencer = new Sequencer(
    store.messages,
    store.conversations,
    { isBlocked: async () => false },
    { now: () => 5_000 },
    silentLogger,
    [fanout],
    { maxGroupSize: 512 },
  );
  const bus = new MemoryBus();
  const replies: ReplyMessage[] = [];
  await bus.subscribe('reply:gw', (m) => void replies.push(JSON.parse(m) as ReplyMessage));
  const stage = new SequencerStage(
    sequencer,
    fanout,
    outbox,
    store.messages,
    store.conversations,
    bus,
    silentLogger,
  );
  return { store, stage, replies, lookups };
}

function ingress(cmid: string, deadline: number): ConsumedRecord {
  const rec: IngressRecord = {
    rid: cmid,
    reply: 'reply:gw',
    deadline,
    op: 'send',
    req: { conv: 'dm:a:b', from: 'a', from_device: 'd', cmid, kind: 'text', body: cmid },
  };
  return {
    partition: 0,
    offset: offset++,
    key: 'dm:a:b',
    value: Buffer.from(JSON.stringify(rec)),
    timestamp: 0,
  };
}

test('a send that reaches its owner after the gateway gave up is refused, not stored', async () => {
  const { store, stage, replies } = await sequencerStage();
  await stage.onRecords(0, [ingress('late', Date.now() - 1), ingress('on-time', Date.now() + 60_000)]);
  const byRid = new Map(replies.map((r) => [r.rid, r]));
  const late = byRid.get('late');
  assert.equal(late?.ok, false);
  assert.equal(late.ok === false && late.code, 'unavailable');
  assert.equal(byRid.get('on-time')?.ok, true);
  const stored = await store.messages.page('dm:a:b', { limit: 10 });
  assert.deepEqual(
    stored.map((m) => [m.seq, m.cmid]),
    [[1, 'on-time']],
  );
});

test('a new send is looked up by cmid once on its way through the stage; delivered again, it is a duplicate', async () => {
  const { store, stage, replies, lookups } = await sequencerStage();
  const record = ingress('once', Date.now() + 60_000);
  await stage.onRecords(0, [record]);
  assert.equal(lookups.n, 1, 'one findByCmid for a new send (not one in the stage and one in the sequencer)');
  assert.deepEqual(replies[0], {
    rid: 'once',
    ok: true,
    result: { seq: 1, ts: 5_000, dup: false, recipients: 2 },
  });
  // The owner died before committing the record: it is delivered again, and answered as stored.
  await stage.onRecords(0, [record]);
  assert.equal(lookups.n, 2);
  assert.deepEqual(replies[1], { rid: 'once', ok: true, result: { seq: 1, ts: 5_000, dup: true } });
  const stored = await store.messages.page('dm:a:b', { limit: 10 });
  assert.deepEqual(
    stored.map((m) => [m.seq, m.cmid]),
    [[1, 'once']],
  );
});
