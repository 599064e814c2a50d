// End-to-end encryption over a real server, in every mode: SDK clients (several devices per user)
// with @parley/e2ee's SecureMessenger exchange encrypted 1:1 and group messages and an encrypted
// photo; the server's store and media objects hold no plaintext (read directly: the SQLite file
// and media files embedded, Cassandra and the S3 bucket on the engines); a member removed from a
// group cannot decrypt what is sent after; a new device of an existing user reads what is sent
// after it joined.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  attachmentDescriptor,
  decryptAttachment,
  encryptAttachment,
  MemoryKeyStorage,
  parleyClientTransport,
  parseAttachmentDescriptor,
  SecureMessenger,
} from '@parley/e2ee';
import { type MessageEvent, ParleyClient } from '@parley/sdk';
import { WebSocket } from 'ws';
import { mintToken } from '../src/gateway/auth.js';
import { testMode } from './deployments.js';
import { sleep, startServer, TEST_SECRET, type TestServer } from './helpers.js';

const secret = new TextEncoder().encode(TEST_SECRET);

/** One signed-in device: its client, its messenger and the messages it received. */
interface Device {
  user: string;
  device: string;
  client: ParleyClient;
  messenger: SecureMessenger;
  received: MessageEvent[];
}

describe('end-to-end encryption over the server', () => {
  let s: TestServer;
  const devices: Device[] = [];
  const plaintexts: string[] = [];
  let photo: Buffer;

  before(async () => {
    s = await startServer({ keysClaimedBurst: 1000, keysClaimBurst: 10_000 });
  });
  after(async () => {
    for (const d of devices) {
      d.messenger.stop();
      await d.client.close();
    }
    await s.stop();
  });

  async function signIn(user: string, device: string): Promise<Device> {
    const client = new ParleyClient({
      url: s.url,
      device,
      tokenProvider: () => mintToken(secret, { user, ttlSeconds: 600 }),
      WebSocket,
      requestTimeoutMs: 10_000,
    });
    const d: Device = {
      user,
      device,
      client,
      messenger: undefined as unknown as SecureMessenger,
      received: [],
    };
    client.on('message', (m) => d.received.push(m));
    await client.connect();
    d.messenger = new SecureMessenger({
      transport: parleyClientTransport(client, device),
      storage: new MemoryKeyStorage(),
      minOneTimePrekeys: 20,
      prekeyBatch: 20,
      // Short waits: the removed member's attempt to decrypt must give up in this test's time.
      keyWaitMs: 1000,
      keyRequestTimeoutMs: 2000,
    });
    await d.messenger.start();
    devices.push(d);
    return d;
  }

  /** Waits for `d` to receive the message `seq` of `conv`, and decrypts it there. */
  async function readOn(d: Device, conv: string, seq: number): Promise<string> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const m = d.received.find((x) => x.conv === conv && x.seq === seq);
      if (m) {
        const out = await d.messenger.decrypt(m);
        return out.text ?? JSON.stringify(out.content);
      }
      if (Date.now() > deadline) throw new Error(`${d.user}/${d.device} never got ${conv}#${seq}`);
      await sleep(20);
    }
  }

  async function sendText(d: Device, conv: string, text: string): Promise<number> {
    plaintexts.push(text);
    return (await d.messenger.sendText(conv, text)).seq;
  }

  test('1:1: every device of the recipient (and the sender’s other device) reads it', async () => {
    const aliceLaptop = await signIn('e2-alice', 'laptop');
    const alicePhone = await signIn('e2-alice', 'phone');
    const bobPhone = await signIn('e2-bob', 'phone');
    const bobTab = await signIn('e2-bob', 'tab');
    const conv = 'dm:e2-alice:e2-bob';
    const text = `secret 1:1 ${randomBytes(6).toString('hex')}`;
    const seq = await sendText(aliceLaptop, conv, text);
    for (const d of [bobPhone, bobTab, alicePhone]) assert.equal(await readOn(d, conv, seq), text);
    const raw = bobPhone.received.find((m) => m.seq === seq)!;
    assert.ok(!raw.body.includes(text), 'the server carries ciphertext');
    // Safety numbers agree on both sides.
    assert.equal(
      await aliceLaptop.messenger.safetyNumber('e2-bob'),
      await bobPhone.messenger.safetyNumber('e2-alice'),
    );
  });

  test('group: three users; an encrypted photo; a removed member reads nothing after', async () => {
    const [alice, , bob] = devices;
    const carol = await signIn('e2-carol', 'tab');
    const g = await alice!.client.createGroup('secret club', ['e2-bob', 'e2-carol']);
    const conv = g.conv;
    const hello = `group hello ${randomBytes(6).toString('hex')}`;
    const seq = await sendText(alice!, conv, hello);
    assert.equal(await readOn(bob!, conv, seq), hello);
    assert.equal(await readOn(carol, conv, seq), hello);

    photo = randomBytes(200_000);
    const { ciphertext, pointer } = encryptAttachment(photo);
    const media = await alice!.client.uploadMedia(ciphertext, 'application/octet-stream');
    const sent = await alice!.messenger.sendMessage(
      conv,
      attachmentDescriptor(media, pointer, 'image/jpeg'),
      {
        media: [media],
      },
    );
    for (const d of [bob!, carol]) {
      const content = JSON.parse(await readOn(d, conv, sent.seq));
      const descriptor = parseAttachmentDescriptor(content);
      const downloaded = await d.client.downloadMedia(descriptor.media);
      assert.ok(!Buffer.from(downloaded).equals(photo), 'the object is ciphertext');
      assert.deepEqual(Buffer.from(decryptAttachment(downloaded, descriptor)), photo);
    }

    await alice!.client.removeMembers(conv, ['e2-carol']);
    const after = `after carol left ${randomBytes(6).toString('hex')}`;
    const seqAfter = await sendText(alice!, conv, after);
    assert.equal(await readOn(bob!, conv, seqAfter), after);
    // Carol is not a member: the server sends her nothing; even given the ciphertext, she cannot open it.
    const raw = bob!.received.find((m) => m.conv === conv && m.seq === seqAfter)!;
    await assert.rejects(carol.messenger.decrypt({ ...raw }), 'a removed member cannot decrypt');
  });

  test('a new device of an existing user reads messages sent after it joined', async () => {
    const alice = devices[0]!;
    const bobLaptop = await signIn('e2-bob', 'laptop');
    const conv = 'dm:e2-alice:e2-bob';
    await bobLaptop.messenger.announce(conv);
    const text = `for the new laptop ${randomBytes(6).toString('hex')}`;
    const seq = await sendText(alice, conv, text);
    assert.equal(await readOn(bobLaptop, conv, seq), text);
  });

  test('the server’s store and media objects hold no plaintext', async () => {
    const needles = [...plaintexts.map((t) => Buffer.from(t)), photo.subarray(1000, 1064)];
    const found = await storedBytesContaining(s, needles);
    assert.deepEqual(found, [], `plaintext found in ${found.join(', ')}`);
    // The control: the group's name is not end-to-end encrypted, and the same scan finds it.
    const control = await storedBytesContaining(s, [Buffer.from('secret club')]);
    assert.ok(control.length > 0, 'the scan reads what the server stores');
  });
});

/**
 * Where the deployment's stored bytes contain any of `needles`: every file under the data
 * directory (embedded and workers: the SQLite database, its WAL, media files), or on the engines
 * every table of the deployment's keyspace and every object of the bucket.
 */
async function storedBytesContaining(s: TestServer, needles: Buffer[]): Promise<string[]> {
  const hits: string[] = [];
  const check = (where: string, bytes: Buffer) => {
    if (needles.some((n) => bytes.includes(n))) hits.push(where);
  };
  const mode = testMode();
  if (mode === 'embedded' || mode === 'workers') {
    for (const file of filesUnder(s.dataDir)) check(file, readFileSync(file));
    assert.ok(filesUnder(join(s.dataDir, 'media')).length > 0, 'the media files were read');
  } else if (mode === 'cluster') {
    for (const [where, bytes] of await engineBytes(s)) check(where, bytes);
  } else {
    // cluster-memory keeps its store in this process's memory: what the server holds is what
    // it serves, so history is the view of it.
    const c = await s.client('e2-alice', 'auditor');
    const { conversations } = await c.request({ type: 'conversations' });
    for (const { conv } of conversations) {
      const h = await c.request({ type: 'history', conv, limit: 200 });
      check(`history of ${conv}`, Buffer.from(JSON.stringify(h)));
    }
    c.close();
  }
  return hits;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

/** Every row of the keyspace (as JSON) and every object of the media bucket. */
async function engineBytes(s: TestServer): Promise<[string, Buffer][]> {
  const { Client } = await import('cassandra-driver');
  const { S3Client, ListObjectsV2Command, GetObjectCommand } = await import('@aws-sdk/client-s3');
  const config = s.server.config;
  const out: [string, Buffer][] = [];
  const cql = new Client({ contactPoints: config.cassandra!, localDataCenter: config.cassandraDc });
  try {
    const tables = await cql.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [
      config.keyspace,
    ]);
    for (const t of tables.rows) {
      const rows = await cql.execute(`SELECT * FROM ${config.keyspace}.${t.table_name as string}`, [], {
        fetchSize: 5000,
      });
      out.push([`cassandra ${t.table_name as string}`, Buffer.from(JSON.stringify(rows.rows))]);
    }
  } finally {
    await cql.shutdown();
  }
  const s3 = new S3Client({
    region: config.s3Region,
    endpoint: config.s3Endpoint!,
    forcePathStyle: true,
    credentials: { accessKeyId: config.s3AccessKeyId!, secretAccessKey: config.s3SecretAccessKey! },
  });
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: config.s3Bucket!, Prefix: 'media/' }));
  assert.ok((listed.Contents ?? []).length > 0, 'the bucket holds the media');
  for (const o of listed.Contents ?? []) {
    const got = await s3.send(new GetObjectCommand({ Bucket: config.s3Bucket!, Key: o.Key! }));
    out.push([`s3 ${o.Key}`, Buffer.from(await got.Body!.transformToByteArray())]);
  }
  s3.destroy();
  return out;
}
