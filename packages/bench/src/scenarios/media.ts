/**
 * `media`: media transfer throughput and the key-claim rate, against a spawned `parley serve` (the
 * embedded file store: bytes through Parley) or `--url` (cluster mode: presigned S3 URLs, bytes
 * straight to the object store).
 *
 * Transfers: one client uploads `--files` files of `--file-mib` MiB each, one after another
 * (`media_upload`, then a PUT of the bytes to the URL it got), then downloads each (`media_download`,
 * then a GET), checking every byte. Reported: MiB/s per direction (bytes over the time from the
 * request for the URL to the last byte), the slowest transfer, and the server's peak RSS (a file
 * must stream, never sit in memory).
 *
 * Claims: a target user publishes 500 one-time prekeys on each of `--key-devices` devices; `--claimers`
 * connections then claim the target's bundles (`keys_claim`, one outstanding each) until every
 * one-time prekey is gone. Reported: claims/s, latency p50/p99/max, and the keys handed out twice
 * (must be 0). The per-target claim budget is lifted for the run: it measures the directory, not
 * the budget.
 * @module
 */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { epochNow } from '../clock.js';
import type { Run } from '../run.js';
import { mintToken } from '../tokens.js';

const MIB = 1024 * 1024;
const KEYS_PER_DEVICE = 500;
const KEYS_PER_UPLOAD = 200;

/** A minimal request/reply client over one socket. */
class Client {
  private next = 0;
  private readonly waiting = new Map<string, (f: Record<string, unknown>) => void>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString()) as Record<string, unknown>;
      const w = typeof f.id === 'string' ? this.waiting.get(f.id) : undefined;
      if (w) {
        this.waiting.delete(f.id as string);
        w(f);
      }
    });
  }

  static async open(url: string, token: string, device: string): Promise<Client> {
    const ws = new WebSocket(url, 'parley.v1.json', { perMessageDeflate: false });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const c = new Client(ws);
    const r = await c.request({ type: 'connect', token, device });
    if (r.ok !== true) throw new Error(`connect failed: ${JSON.stringify(r)}`);
    return c;
  }

  request(frame: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = `r${this.next++}`;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  async must(frame: Record<string, unknown>): Promise<Record<string, unknown>> {
    const r = await this.request(frame);
    if (r.ok !== true) throw new Error(`${String(frame.type)} failed: ${JSON.stringify(r).slice(0, 300)}`);
    return r;
  }

  close(): void {
    this.ws.close();
  }
}

/** Runs `media`. */
export async function media(run: Run): Promise<void> {
  const parley = await run.parley({
    PARLEY_MEDIA_UPLOAD_BYTES_PER_DAY: String(1024 * 1024 * MIB),
    PARLEY_MEDIA_BURST: '100000',
    PARLEY_KEYS_BURST: '100000',
    PARLEY_KEYS_CLAIM_BURST: '1000000',
    PARLEY_KEYS_CLAIMED_BURST: '1000000',
    PARLEY_KEYS_CLAIMED_RATE_PER_SECOND: '1000000',
  });
  const secret = new TextEncoder().encode(run.secret);
  const token = (user: string) => mintToken(secret, `${run.runId}-${user}`, 3600);
  const before = parley.sampleNow();
  let peakRss = before?.rssBytes ?? 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, parley.sampleNow()?.rssBytes ?? 0);
  }, 20);
  await transfers(run, await Client.open(parley.url, await token('uploader'), 'd'));
  clearInterval(sampler);
  if (before)
    run.row(
      'server RSS before / peak during transfers',
      `${(before.rssBytes / MIB).toFixed(0)} / ${(peakRss / MIB).toFixed(0)}`,
      'MiB',
    );
  else run.notes.push('server RSS not sampled: pass --server-pids with --url');
  await claims(run, parley.url, token);
}

async function transfers(run: Run, c: Client): Promise<void> {
  const o = run.opts;
  const bytes = o.fileMib * MIB;
  const files: { media: string; body: Buffer }[] = [];
  let upMs = 0;
  let slowestUp = 0;
  for (let i = 0; i < o.files; i++) {
    const body = randomBytes(bytes);
    const started = epochNow();
    const r = await c.must({ type: 'media_upload', size: bytes, content_type: 'application/octet-stream' });
    const res = await fetch(r.url as string, {
      method: r.method as string,
      headers: r.headers as Record<string, string>,
      body,
    });
    if (!res.ok) throw new Error(`upload answered ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
    const ms = epochNow() - started;
    upMs += ms;
    slowestUp = Math.max(slowestUp, ms);
    files.push({ media: r.media as string, body });
  }
  let downMs = 0;
  let slowestDown = 0;
  let corrupt = 0;
  for (const f of files) {
    const started = epochNow();
    const r = await c.must({ type: 'media_download', media: f.media });
    const res = await fetch(r.url as string);
    const got = Buffer.from(await res.arrayBuffer());
    const ms = epochNow() - started;
    downMs += ms;
    slowestDown = Math.max(slowestDown, ms);
    if (!got.equals(f.body)) corrupt++;
  }
  c.close();
  const total = (o.files * bytes) / MIB;
  run.row(
    `uploads (${o.files} × ${o.fileMib} MiB, one at a time)`,
    (total / (upMs / 1000)).toFixed(1),
    'MiB/s',
  );
  run.row('slowest upload', Math.round(slowestUp), 'ms');
  run.row(`downloads (${o.files} × ${o.fileMib} MiB)`, (total / (downMs / 1000)).toFixed(1), 'MiB/s');
  run.row('slowest download', Math.round(slowestDown), 'ms');
  run.row('downloads that differed from the upload', corrupt);
}

/** Publishes `keys` one-time prekeys on each of `devices` devices of `user`. */
async function publishKeys(
  url: string,
  token: (user: string) => Promise<string>,
  user: string,
  devices: number,
  keys: number,
): Promise<void> {
  for (let d = 0; d < devices; d++) {
    const device = await Client.open(url, await token(user), `dev${d}`);
    // One identity per device: a different one would replace the keys uploaded before it.
    const identity = randomBytes(64).toString('base64');
    for (let from = 0; from < keys; from += KEYS_PER_UPLOAD) {
      const n = Math.min(KEYS_PER_UPLOAD, keys - from);
      await device.must({
        type: 'keys_upload',
        identity_key: identity,
        signed_prekey: {
          key_id: 1,
          key: randomBytes(32).toString('base64'),
          signature: randomBytes(64).toString('base64'),
        },
        one_time_prekeys: Array.from({ length: n }, (_, i) => ({
          key_id: from + i + 1,
          key: randomBytes(32).toString('base64'),
        })),
      });
    }
    device.close();
  }
}

/**
 * Two rounds of claims until every one-time prekey is handed out: all claimers on one target
 * (`--key-devices` devices × 500 keys: the contended case), then spread over 50 targets of one
 * device and 40 keys each (the usual case: sessions with many different users).
 */
async function claims(run: Run, url: string, token: (user: string) => Promise<string>): Promise<void> {
  const o = run.opts;
  const claimers = await Promise.all(
    Array.from({ length: o.claimers }, async (_, i) => Client.open(url, await token(`claimer${i}`), 'd')),
  );
  await publishKeys(url, token, 'target', o.keyDevices, KEYS_PER_DEVICE);
  const one = await claimRound(claimers, [`${run.runId}-target`]);
  report(
    run,
    `one target, ${o.keyDevices} devices × ${KEYS_PER_DEVICE} keys`,
    one,
    o.keyDevices * KEYS_PER_DEVICE,
  );
  const targets = Array.from({ length: 50 }, (_, i) => `spread${i}`);
  for (const t of targets) await publishKeys(url, token, t, 1, 40);
  const spread = await claimRound(
    claimers,
    targets.map((t) => `${run.runId}-${t}`),
  );
  report(run, '50 targets, 1 device × 40 keys each', spread, 50 * 40);
  for (const c of claimers) c.close();
}

interface ClaimRound {
  seconds: number;
  latencies: number[];
  handedOut: Map<string, number>;
}

/** Claimers claim the targets in turn until each returns no one-time prekey. */
async function claimRound(claimers: Client[], targets: string[]): Promise<ClaimRound> {
  const handedOut = new Map<string, number>();
  const latencies: number[] = [];
  const exhausted = new Set<string>();
  let next = 0;
  const started = epochNow();
  await Promise.all(
    claimers.map(async (c) => {
      while (exhausted.size < targets.length) {
        const target = targets[next++ % targets.length]!;
        if (exhausted.has(target)) continue;
        const t = epochNow();
        const r = await c.must({ type: 'keys_claim', user: target });
        latencies.push(epochNow() - t);
        let any = false;
        for (const d of r.devices as { device: string; one_time_prekey?: { key_id: number } }[]) {
          if (!d.one_time_prekey) continue;
          any = true;
          const key = `${target}/${d.device}/${d.one_time_prekey.key_id}`;
          handedOut.set(key, (handedOut.get(key) ?? 0) + 1);
        }
        if (!any) exhausted.add(target);
      }
    }),
  );
  return { seconds: (epochNow() - started) / 1000, latencies, handedOut };
}

function report(run: Run, label: string, r: ClaimRound, published: number): void {
  const sorted = [...r.latencies].sort((a, b) => a - b);
  const q = (p: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0);
  const twice = [...r.handedOut.values()].filter((n) => n > 1).length;
  run.row(
    `key claims, ${run.opts.claimers} concurrent claimers, ${label}`,
    (sorted.length / r.seconds).toFixed(0),
    'claims/s',
  );
  run.row(
    '  one-time prekeys handed out / published / twice',
    `${r.handedOut.size} / ${published} / ${twice}`,
  );
  run.row(
    '  claim latency p50 / p99 / max',
    `${q(0.5)} / ${q(0.99)} / ${Math.round(sorted.at(-1) ?? 0)}`,
    'ms',
  );
}
