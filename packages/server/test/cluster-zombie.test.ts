// Zombies on real Cassandra, with the timing made certain: a writer whose store write is held
// while another member takes over its partition (a process paused mid-write and resumed after its
// partitions moved). The sequencer zombie's seq is refused and its send not acknowledged; the
// fan-out zombie's inbox numbers are refused and its redo finds the entries already stored, so it
// writes nothing. The multi-process failover test pauses whole processes, but cannot choose the
// instant; these tests choose it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { CassandraStore } from '@parley/cluster/cassandra/cassandra-store';
import { migrateCassandra } from '@parley/cluster/cassandra/schema';
import { Client } from 'cassandra-driver';
import { FanoutStage } from '../src/cluster/fanout-stage.js';
import { FencedInbox, FencedMessages, fencedStage, PartitionFence } from '../src/cluster/fencing.js';
import { toFanoutRecord } from '../src/cluster/wire.js';
import { InboxWriter, MESSAGE_FRAME_HEAD } from '../src/domain/inbox-writer.js';
import { Sequencer } from '../src/domain/sequencer.js';
import { EpochFencedError } from '../src/ports/epoch-fencing.js';
import type { PendingEntry } from '../src/ports/inbox-appender.js';
import type { InboxEntry } from '../src/ports/inbox-store.js';
import { silentLogger } from '../src/ports/logger.js';
import type { StoredMessage } from '../src/ports/message-store.js';
import type { ConsumedRecord } from '../src/ports/partitioned-log.js';
import { requireEngine } from './engines.js';

const address = requireEngine('cassandra', 'zombie writers against real Cassandra');
const KEYSPACE = 'parley_zombie_test';

/** Holds every write until released: the zombie's process is "paused" with the write in hand. */
class Gate {
  private release!: () => void;
  readonly opened = new Promise<void>((r) => {
    this.release = r;
  });
  reached = false;
  open(): void {
    this.release();
  }
  /** `write`, held here until the gate opens. */
  hold<A extends unknown[]>(write: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
    return async (...args) => {
      this.reached = true;
      await this.opened;
      await write(...args);
    };
  }
}

if (address !== undefined) {
  const dc = process.env.PARLEY_TEST_CASSANDRA_DC ?? 'datacenter1';
  const clients: Client[] = [];
  let store: CassandraStore;
  const id = randomBytes(3).toString('hex');

  before(async () => {
    const admin = new Client({ contactPoints: [address], localDataCenter: dc });
    await migrateCassandra(admin, KEYSPACE, { class: 'SimpleStrategy', replication_factor: 1 });
    await admin.shutdown();
    store = await open();
  });
  after(async () => {
    for (const c of clients) await c.shutdown();
  });

  async function open(): Promise<CassandraStore> {
    const client = new Client({ contactPoints: [address!], localDataCenter: dc });
    clients.push(client);
    return new CassandraStore(client, { keyspace: KEYSPACE });
  }

  const sequencer = (messages: CassandraStore['messages'], s: CassandraStore) =>
    new Sequencer(
      messages,
      s.conversations,
      { isBlocked: async () => false },
      { now: () => Date.now() },
      silentLogger,
      [],
      { maxGroupSize: 512 },
    );

  test('a sequencer resumed after its conversation moved cannot take a seq: its send is refused', async () => {
    const conv = `dm:za-${id}:zb-${id}`;
    const gate = new Gate();
    const zombieStore = await open();
    const held = { ...zombieStore.messages, append: gate.hold(zombieStore.messages.append) };
    const zombie = sequencer(held, zombieStore);
    const send = (cmid: string) => ({
      conv,
      from: `za-${id}`,
      from_device: 'd',
      cmid,
      kind: 'text',
      body: cmid,
    });
    const zombieSend = zombie.submit(send('from-zombie'));
    while (!gate.reached) await new Promise((r) => setTimeout(r, 5));
    // The new owner, meanwhile, takes seq 1.
    const owner = sequencer(store.messages, store);
    assert.deepEqual((await owner.submit(send('from-owner'))).seq, 1);
    gate.open();
    await assert.rejects(zombieSend, (err: Error) => {
      assert.equal(err.name, 'SeqConflictError', 'refused by the store’s fencing');
      return true;
    });
    const log = await store.messages.page(conv, { limit: 10 });
    assert.deepEqual(
      log.map((m) => [m.seq, m.cmid]),
      [[1, 'from-owner']],
    );
    // Its client retries through the owner: stored once, after.
    assert.equal((await owner.submit(send('from-zombie'))).seq, 2);
  });

  test('a fan-out member resumed after its partition moved writes no inbox number twice', async () => {
    const sink = `zsink-${id}`;
    const conv = `dm:zs-${id}:${sink}`;
    const other = `dm:zt-${id}:${sink}`;
    await store.messages.append([message(conv, 1), message(other, 1)]);
    const record = (c: string, seq: number, offset: number) => fanoutRecord(sink, c, seq, offset);

    const gate = new Gate();
    const zombieStore = await open();
    const heldInbox = { ...zombieStore.inbox, append: gate.hold(zombieStore.inbox.append) };
    const warnings: string[] = [];
    const zombieLog = { ...silentLogger, warn: (_f: object, msg: string) => void warnings.push(msg) };
    const zombie = new FanoutStage(
      new InboxWriter(heldInbox, { deliver: () => {} }, zombieLog),
      zombieStore.inbox,
      zombieStore.messages,
      silentLogger,
    );
    // The zombie numbers conv/1 as the sink's inbox 1 and is paused with that write in hand.
    const zombieBatch = zombie.onRecords(0, [record(conv, 1, 10)]);
    while (!gate.reached) await new Promise((r) => setTimeout(r, 5));
    // The new owner's batch starts at an earlier uncommitted record the zombie had handled.
    const owner = new FanoutStage(
      new InboxWriter(store.inbox, { deliver: () => {} }, silentLogger),
      store.inbox,
      store.messages,
      silentLogger,
    );
    await owner.onAssigned([0]);
    await owner.onRecords(0, [record(other, 1, 9), record(conv, 1, 10)]);
    gate.open();
    await zombieBatch;
    assert.deepEqual(
      warnings,
      ['inbox numbers taken by another writer: dropping the queued batches and reloading heads'],
      'the zombie’s write was refused; its redo found both entries stored and wrote nothing',
    );
    const inbox = await store.inbox.read(sink, 0, 10);
    assert.deepEqual(
      inbox.map((e) => [e.inbox, e.conv, e.seq]),
      [
        [1, other, 1],
        [2, conv, 1],
      ],
    );
  });

  /** A fan-out member's fenced inbox over its own client: what cluster mode's fan-out stage writes through. */
  const fenced = (s: CassandraStore, stage: string, owner: string, epochInbox = s.epochInbox) =>
    new FencedInbox(
      s.inbox,
      epochInbox,
      new PartitionFence(s.stageEpochs, stage, owner, silentLogger),
      silentLogger,
    );

  test('under the epoch fence, a fan-out member resumed after its partition moved publishes nothing, and its late row loses', async () => {
    const stage = `zstage-${id}-a`;
    const sink = `zfsink-${id}`;
    const conv = `dm:zfs-${id}:${sink}`;
    const other = `dm:zft-${id}:${sink}`;
    await store.messages.append([message(conv, 1), message(other, 1)]);
    const record = (c: string, offset: number) => fanoutRecord(sink, c, 1, offset);
    const member = (inbox: FencedInbox, s: CassandraStore, log = silentLogger) =>
      fencedStage(
        new FanoutStage(new InboxWriter(inbox, { deliver: () => {} }, log), inbox, s.messages, log),
        inbox.fence,
        inbox,
      );

    const gate = new Gate();
    const zombieStore = await open();
    const heldRows = { ...zombieStore.epochInbox, write: gate.hold(zombieStore.epochInbox.write) };
    const warnings: string[] = [];
    const zombieLog = { ...silentLogger, warn: (_f: object, msg: string) => void warnings.push(msg) };
    const zombieInbox = fenced(zombieStore, stage, 'zombie', heldRows);
    const zombie = member(zombieInbox, zombieStore, zombieLog);
    await zombie.onAssigned([0]);
    // The zombie numbers conv/1 as the sink's inbox 1 and is paused with that write in hand.
    const zombieBatch = zombie.onRecords(0, [record(conv, 10)]);
    while (!gate.reached) await new Promise((r) => setTimeout(r, 5));
    // The new owner takes the partition (a newer epoch) and starts at an earlier uncommitted record.
    const ownerInbox = fenced(store, stage, 'owner');
    const owner = member(ownerInbox, store);
    await owner.onAssigned([0]);
    await owner.onRecords(0, [record(other, 9), record(conv, 10)]);
    gate.open();
    await zombieBatch;
    assert.deepEqual(
      warnings,
      ['inbox numbers taken by another writer: dropping the queued batches and reloading heads'],
      'the zombie’s check found the newer epoch; its redo found both entries written and wrote nothing',
    );
    const inbox = await store.inbox.read(sink, 0, 10);
    assert.deepEqual(
      inbox.map((e) => [e.inbox, e.conv, e.seq]),
      [
        [1, other, 1],
        [2, conv, 1],
      ],
      'the owner’s row under inbox 1 stands: the zombie’s late write of it lost',
    );
  });

  test('under the epoch fence, a zombie’s row written after the new owner loaded its head is never read, and is replaced', async () => {
    const stage = `zstage-${id}-b`;
    const user = `zfb-${id}`;
    const entry = (conv: string): InboxEntry => ({ user, inbox: 1, ts: 1, type: 'message', conv, seq: 1 });
    const zombie = fenced(await open(), stage, 'zombie');
    await zombie.fence.assigned([3]);
    assert.equal(await zombie.head(user), 0);
    const owner = fenced(store, stage, 'owner');
    await owner.fence.assigned([3]);
    assert.equal(await owner.head(user), 0);
    await assert.rejects(zombie.append([entry('dm:from-zombie')], []), EpochFencedError);
    assert.deepEqual(await store.inbox.read(user, 0, 10), [], 'written, not published: no reader sees it');
    await owner.append([entry('dm:from-owner')], []);
    assert.deepEqual(
      (await store.inbox.read(user, 0, 10)).map((e) => e.conv),
      ['dm:from-owner'],
    );
  });

  test('under the epoch fence, a sequencer resumed after its conversation moved publishes nothing: its send is refused, the owner’s message stands', async () => {
    const stage = `zseq-${id}`;
    const conv = `dm:zea-${id}:zeb-${id}`;
    const send = (cmid: string) => ({
      conv,
      from: `zea-${id}`,
      from_device: 'd',
      cmid,
      kind: 'text',
      body: cmid,
    });
    const fencedLog = (s: CassandraStore, owner: string, epochMessages = s.epochMessages) =>
      new FencedMessages(
        s.messages,
        epochMessages,
        new PartitionFence(s.stageEpochs, stage, owner, silentLogger),
      );
    const gate = new Gate();
    const zombieStore = await open();
    const held = { ...zombieStore.epochMessages, write: gate.hold(zombieStore.epochMessages.write) };
    const zombieLog = fencedLog(zombieStore, 'zombie', held);
    await zombieLog.fence.assigned([0]);
    const zombieSend = sequencer(zombieLog, zombieStore).submit(send('from-zombie'));
    while (!gate.reached) await new Promise((r) => setTimeout(r, 5));
    // The new owner takes the partition (a newer epoch) and, meanwhile, seq 1.
    const ownerLog = fencedLog(store, 'owner');
    await ownerLog.fence.assigned([0]);
    const owner = sequencer(ownerLog, store);
    assert.equal((await owner.submit(send('from-owner'))).seq, 1);
    gate.open();
    await assert.rejects(zombieSend, EpochFencedError, 'its check found the newer epoch');
    const log = await store.messages.page(conv, { limit: 10 });
    assert.deepEqual(
      log.map((m) => [m.seq, m.cmid]),
      [[1, 'from-owner']],
      'the zombie’s late row under seq 1 lost to the owner’s',
    );
    assert.equal(await store.messages.findByCmid(conv, `zea-${id}`, 'from-zombie'), null);
    // Its client retries through the owner: stored once, after.
    assert.equal((await owner.submit(send('from-zombie'))).seq, 2);
  });
}

/** A stored text message of `conv` at `seq`. */
function message(conv: string, seq: number): StoredMessage {
  return {
    conv,
    seq,
    ts: Date.now(),
    from: 'x',
    from_device: 'd',
    cmid: `${conv}-${seq}`,
    kind: 'text',
    body: `m${seq}`,
  };
}

/** A fan-out record of partition 0 at `offset`: `user`'s inbox entry for message `seq` of `conv`. */
function fanoutRecord(user: string, conv: string, seq: number, offset: number): ConsumedRecord {
  const p: PendingEntry = {
    user,
    entry: { type: 'message', conv, seq, ts: 0 },
    frameHead: MESSAGE_FRAME_HEAD,
    frameTail: Buffer.alloc(0),
  };
  return {
    partition: 0,
    offset: BigInt(offset),
    key: user,
    value: Buffer.from(JSON.stringify(toFanoutRecord(p))),
    timestamp: Date.now(),
  };
}
