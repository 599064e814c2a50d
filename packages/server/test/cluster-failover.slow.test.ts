// Crash and failover in cluster mode, under load through HAProxy: SIGKILL one process, then SIGSTOP
// another (a zombie: its partitions move while it is paused) and SIGCONT it. Clients reconnect
// through HAProxy and retry unacknowledged sends with their cmid. Afterwards every acknowledged
// message is in history once, seqs and inbox numbers are contiguous, per-sender order is kept,
// and the zombie wrote nothing conflicting. The sink's inbox holds every message exactly once,
// numbered without gaps.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { clusterEngines, startCluster, type TestCluster } from './cluster-fixture.js';
import { requireEngine } from './engines.js';
import type { Frame, TestClient } from './helpers.js';

const ready =
  clusterEngines() !== undefined ||
  (requireEngine('cassandra', 'cluster failover on the real engines (Cassandra, Kafka, Redis)') && false);

const SENDERS = 6;
const REQUEST_TIMEOUT_MS = 12_000;

/** A user sending one message at a time to its own conversation, retrying each until acknowledged. */
class Sender {
  readonly acked: { cmid: string; seq: number }[] = [];
  private client: TestClient | null = null;
  private n = 0;
  stopped = false;
  retries = 0;

  constructor(
    private readonly cluster: TestCluster,
    readonly user: string,
    readonly conv: string,
  ) {}

  async run(): Promise<void> {
    while (!this.stopped) {
      const cmid = `c${++this.n}`;
      const seq = await this.sendUntilAcked(cmid);
      this.acked.push({ cmid, seq });
    }
  }

  private async sendUntilAcked(cmid: string): Promise<number> {
    for (;;) {
      try {
        if (!this.client || this.client.closeCode !== null)
          this.client = await this.cluster.connect('lb', this.user);
        const r = await this.client.request(
          { type: 'send', conv: this.conv, cmid, kind: 'text', body: cmid },
          REQUEST_TIMEOUT_MS,
        );
        if (r.ok) return r.seq as number;
        this.retries++;
        await new Promise((res) => setTimeout(res, r.error?.retry_after_ms ?? 200));
      } catch {
        // No reply (the process died or is paused) or no connection: reconnect and retry the same cmid.
        this.retries++;
        this.client?.close();
        this.client = null;
        await new Promise((res) => setTimeout(res, 200));
      }
    }
  }

  close(): void {
    this.client?.close();
  }
}

if (ready) {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster(3, { haproxy: true });
  });
  after(async () => {
    for (const i of [0, 1, 2]) {
      try {
        cluster.servers[i]?.proc.kill('SIGCONT');
      } catch {}
    }
    await cluster.stop();
  });

  test('SIGKILL and SIGSTOP/SIGCONT under load lose, duplicate (in history) and reorder nothing acknowledged', {
    timeout: 240_000,
  }, async () => {
    const sink = `sink-${cluster.id}`;
    const senders = Array.from({ length: SENDERS }, (_, i) => {
      const user = `s${i}-${cluster.id}`;
      return new Sender(cluster, user, `dm:${[user, sink].sort().join(':')}`);
    });
    const running = senders.map((s) => s.run());
    const phase = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const total = () => senders.reduce((n, s) => n + s.acked.length, 0);

    await phase(3_000);
    const beforeKill = total();
    cluster.servers[1]!.kill('SIGKILL');
    await phase(15_000);
    const afterKill = total();

    const zombie = cluster.servers[2]!;
    zombie.proc.kill('SIGSTOP');
    await phase(15_000);
    const whilePaused = total();
    zombie.proc.kill('SIGCONT');
    await phase(6_000);

    for (const s of senders) s.stopped = true;
    await Promise.all(running);
    for (const s of senders) s.close();
    const retries = senders.reduce((n, s) => n + s.retries, 0);
    console.log(
      `# failover: acknowledged ${beforeKill} before the kill, ${afterKill - beforeKill} in the 15 s after, ${whilePaused - afterKill} while one process was paused, ${total()} in all; ${retries} retries`,
    );
    assert.ok(afterKill > beforeKill, 'sends resumed after the kill');
    assert.ok(whilePaused > afterKill, 'sends went on while a process was paused');

    const verified = await verify(cluster, 0, sink, senders);
    const conflicts = (
      zombie.output().match(/already (taken by|holds) another|inbox numbers taken by another writer/g) ?? []
    ).length;
    console.log(
      `# zombie: ${conflicts} writes refused as conflicting after SIGCONT; ${verified.messages} messages verified`,
    );
  });
}

if (ready) {
  test('a rolling restart of the three processes, each drained, loses and duplicates nothing', {
    timeout: 240_000,
  }, async () => {
    const rolling = await startCluster(3, { haproxy: true, env: { PARLEY_DRAIN_MS: '1500' } });
    try {
      const sink = `sink-${rolling.id}`;
      const senders = Array.from({ length: SENDERS }, (_, i) => {
        const user = `r${i}-${rolling.id}`;
        return new Sender(rolling, user, `dm:${[user, sink].sort().join(':')}`);
      });
      const running = senders.map((s) => s.run());
      await new Promise((r) => setTimeout(r, 2_000));
      for (const i of [0, 1, 2]) {
        const old = rolling.servers[i]!;
        old.kill('SIGTERM');
        assert.equal(await old.exited, 0, `process ${i} drained and exited cleanly`);
        await rolling.restart(i);
        // Its consumers rejoin the groups before the next one goes.
        await new Promise((r) => setTimeout(r, 6_000));
      }
      for (const s of senders) s.stopped = true;
      await Promise.all(running);
      for (const s of senders) s.close();
      const acked = senders.reduce((n, s) => n + s.acked.length, 0);
      const verified = await verify(rolling, 0, sink, senders);
      console.log(
        `# rolling restart: ${acked} acknowledged, ${verified.messages} verified, ${senders.reduce((n, s) => n + s.retries, 0)} retries`,
      );
    } finally {
      await rolling.stop();
    }
  });
}

/**
 * Checks every sender's conversation through server `at`: seqs contiguous, each cmid once, every
 * acknowledged cmid at its acknowledged seq, acknowledged seqs in send order; and the sink's inbox:
 * every message exactly once, numbers contiguous. Returns how many messages it checked.
 */
async function verify(
  cluster: TestCluster,
  at: number,
  sink: string,
  senders: readonly Sender[],
): Promise<{ messages: number }> {
  const checker = await cluster.connect(at, sink);
  try {
    let sinkMessages = 0;
    for (const s of senders) {
      const messages: Frame[] = [];
      let afterSeq = 0;
      for (;;) {
        const r = await checker.request(
          { type: 'history', conv: s.conv, after: afterSeq, limit: 200 },
          15_000,
        );
        assert.equal(r.ok, true, JSON.stringify(r));
        messages.push(...r.messages);
        if (!r.more) break;
        afterSeq = r.messages.at(-1).seq;
      }
      sinkMessages += messages.length;
      assert.deepEqual(
        messages.map((m) => m.seq),
        Array.from({ length: messages.length }, (_, i) => i + 1),
        `${s.conv}: seqs contiguous`,
      );
      const byCmid = new Map<string, number>();
      for (const m of messages) {
        assert.equal(byCmid.has(m.cmid), false, `${s.conv}: cmid ${m.cmid} stored twice`);
        byCmid.set(m.cmid, m.seq);
      }
      for (const a of s.acked)
        assert.equal(byCmid.get(a.cmid), a.seq, `${s.conv}: acknowledged ${a.cmid} kept its seq`);
      const seqs = s.acked.map((a) => a.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((x, y) => x - y),
        `${s.conv}: sender order kept`,
      );
    }
    // The sink's inbox: one entry per message of all six conversations, numbered without gaps.
    const numbers: number[] = [];
    const seen = new Map<string, number>();
    const repeats: string[] = [];
    let cursor = 0;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const r = await checker.request({ type: 'sync', after: cursor, limit: 1000 }, 15_000);
      for (const e of r.events) {
        numbers.push(e.inbox);
        if (e.type === 'message') {
          const k = `${e.conv}/${e.seq}`;
          if (seen.has(k)) repeats.push(`${k} at inbox ${seen.get(k)} and ${e.inbox}`);
          else seen.set(k, e.inbox);
        }
      }
      cursor = r.events.at(-1)?.inbox ?? cursor;
      if (!r.more && seen.size >= sinkMessages) break;
      if (!r.more) await new Promise((res) => setTimeout(res, 500));
    }
    assert.equal(seen.size, sinkMessages, 'the sink received every message');
    assert.deepEqual(repeats, [], 'no message twice in the sink inbox');
    assert.deepEqual(
      numbers,
      Array.from({ length: numbers.length }, (_, i) => i + 1),
      'sink inbox contiguous',
    );
    return { messages: sinkMessages };
  } finally {
    checker.close();
  }
}
