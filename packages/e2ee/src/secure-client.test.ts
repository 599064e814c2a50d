import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeServer, type StoredMessage } from '../test/fake-server.js';
import { parseAttachmentDescriptor } from './attachments.js';
import { fromBase64, toBase64 } from './bytes.js';
import { E2eeError } from './errors.js';
import { verifySignedPrekey } from './identity.js';
import { type KeyStorage, MemoryKeyStorage } from './key-storage.js';
import { SecureMessenger, type SecureMessengerOptions } from './secure-client.js';
import { decodeSenderKeyEnvelope, encodeSenderKeyEnvelope } from './sender-keys.js';

/** One device in a test: its messenger, storage and user. */
interface Device {
  user: string;
  device: string;
  messenger: SecureMessenger;
  storage: KeyStorage;
  errors: E2eeError[];
}

async function startDevice(
  server: FakeServer,
  user: string,
  device: string,
  options: Partial<SecureMessengerOptions> = {},
): Promise<Device> {
  const storage = options.storage ?? new MemoryKeyStorage();
  const errors: E2eeError[] = [];
  const messenger = new SecureMessenger({
    transport: server.transport(user, device),
    storage,
    minOneTimePrekeys: 10,
    // Short: in these tests a key in flight is delivered before decrypt is called. Long for the
    // answer to a key request, which resolves as soon as it arrives.
    keyWaitMs: 30,
    keyRequestTimeoutMs: 5000,
    onError: (e) => errors.push(e),
    ...options,
  });
  await messenger.start();
  return { user, device, messenger, storage, errors };
}

/** Runs until every to_device event is delivered, handled and acknowledged. */
async function settle(server: FakeServer, devices: Device[]): Promise<void> {
  for (let round = 0; round < 200; round++) {
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all(devices.map((d) => d.messenger.settled()));
    if (server.quiet) return;
  }
  throw new Error('to_device traffic did not settle');
}

/** Sends `text` from `sender` and returns the message the server stored. */
async function send(server: FakeServer, sender: Device, conv: string, text: string): Promise<StoredMessage> {
  await sender.messenger.sendText(conv, text);
  return server.log.at(-1)!;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof E2eeError && err.code === code);
}

/** Asserts that each device reads `message` as `text`. */
async function assertReads(devices: Device[], message: StoredMessage, text: string): Promise<void> {
  for (const d of devices) {
    const decrypted = await d.messenger.decrypt(message);
    assert.equal(decrypted.text, text, `${d.user}/${d.device}`);
    assert.equal(decrypted.from, message.from);
    assert.equal(decrypted.from_device, message.from_device);
  }
}

async function world(spec: Record<string, string[]>, options: Partial<SecureMessengerOptions> = {}) {
  const server = new FakeServer();
  const devices: Record<string, Device> = {};
  for (const [user, ids] of Object.entries(spec)) {
    for (const device of ids) devices[device] = await startDevice(server, user, device, options);
  }
  return { server, devices, all: Object.values(devices) };
}

describe('SecureMessenger', () => {
  test('a direct message decrypts on every device of both users, and the sending device refuses its own', async () => {
    const { server, devices, all } = await world({ alice: ['a1', 'a2'], bob: ['b1', 'b2'] });
    const { a1, a2, b1, b2 } = devices as Record<string, Device>;
    server.setMembers('dm:alice:bob', ['alice', 'bob']);

    const hello = await send(server, a1!, 'dm:alice:bob', 'hi bob');
    assert.equal(hello.kind, 'e2ee');
    assert.ok(!hello.body.includes('hi bob'));
    await settle(server, all);
    await assertReads([a2!, b1!, b2!], hello, 'hi bob');
    await expectCode(a1!.messenger.decrypt(hello), 'own_device');

    const reply = await send(server, b2!, 'dm:alice:bob', 'hi alice');
    await settle(server, all);
    await assertReads([a1!, a2!, b1!], reply, 'hi alice');
    assert.deepEqual(
      all.flatMap((d) => d.errors),
      [],
    );
  });

  test('group messages from three users with several devices decrypt on every member device', async () => {
    const { server, all } = await world({ alice: ['a1', 'a2'], bob: ['b1', 'b2', 'b3'], carol: ['c1'] });
    server.setMembers('g:1', ['alice', 'bob', 'carol']);
    for (const sender of all) {
      const message = await send(server, sender, 'g:1', `from ${sender.device}`);
      await settle(server, all);
      await assertReads(
        all.filter((d) => d !== sender),
        message,
        `from ${sender.device}`,
      );
    }
    // Second round: no new distributions are needed.
    const before = server.stats.toDevice;
    const again = await send(server, all[0]!, 'g:1', 'again');
    await settle(server, all);
    assert.equal(server.stats.toDevice, before);
    await assertReads(all.slice(1), again, 'again');
  });

  test('messages arriving out of order, and a replayed message, are handled', async () => {
    const { server, devices, all } = await world({ alice: ['a1'], bob: ['b1'] });
    server.setMembers('dm:alice:bob', ['alice', 'bob']);
    const first = await send(server, devices.a1!, 'dm:alice:bob', 'one');
    const second = await send(server, devices.a1!, 'dm:alice:bob', 'two');
    await settle(server, all);
    await assertReads([devices.b1!], second, 'two');
    await assertReads([devices.b1!], first, 'one');
    await expectCode(devices.b1!.messenger.decrypt(first), 'replay');
  });

  test('a removed member cannot decrypt messages sent after the rotation', async () => {
    const { server, devices, all } = await world(
      { alice: ['a1'], bob: ['b1'], carol: ['c1', 'c2'] },
      { keyRequestTimeoutMs: 100 }, // a removed member's request is never answered
    );
    const { a1, b1, c1 } = devices as Record<string, Device>;
    server.setMembers('g:1', ['alice', 'bob', 'carol']);
    for (const sender of [a1!, b1!, c1!]) await send(server, sender, 'g:1', 'before');
    await settle(server, all);
    const keyBefore = decodeSenderKeyEnvelope(server.log[0]!.body).k;

    server.removeMember('g:1', 'carol');
    await b1!.messenger.memberRemoved('g:1'); // explicit for bob; alice's send notices by itself
    const fromAlice = await send(server, a1!, 'g:1', 'after (alice)');
    const fromBob = await send(server, b1!, 'g:1', 'after (bob)');
    await settle(server, all);
    assert.notEqual(decodeSenderKeyEnvelope(fromAlice.body).k, keyBefore);
    await assertReads([b1!], fromAlice, 'after (alice)');
    await assertReads([a1!], fromBob, 'after (bob)');
    // Carol gets the bodies anyway (a hostile server): she has no key, and asking for it gets nothing.
    for (const message of [fromAlice, fromBob]) {
      for (const d of [devices.c1!, devices.c2!])
        await expectCode(d.messenger.decrypt(message), 'missing_sender_key');
    }
    await settle(server, all);
    await expectCode(devices.c1!.messenger.decrypt(fromAlice), 'missing_sender_key');
  });

  test('a revoked device gets no later key', async () => {
    const { server, devices, all } = await world(
      { alice: ['a1'], bob: ['b1', 'b2'] },
      { keyRequestTimeoutMs: 100 },
    );
    server.setMembers('dm:alice:bob', ['alice', 'bob']);
    await send(server, devices.a1!, 'dm:alice:bob', 'before');
    await settle(server, all);
    server.revokeDevice('bob', 'b2');
    await devices.a1!.messenger.deviceRevoked('bob', 'b2');
    const after = await send(server, devices.a1!, 'dm:alice:bob', 'after');
    await settle(server, all);
    await assertReads([devices.b1!], after, 'after');
    await expectCode(devices.b2!.messenger.decrypt(after), 'missing_sender_key');
  });

  test('a new device that announces itself reads the messages sent after it joined', async () => {
    const { server, all } = await world({ alice: ['a1', 'a2'], bob: ['b1'], carol: ['c1'] });
    server.setMembers('g:1', ['alice', 'bob', 'carol']);
    for (const sender of all) await send(server, sender, 'g:1', 'before');
    await settle(server, all);

    // a1 restarts (same storage) with a listener for devices added.
    const added: string[] = [];
    all[0]!.messenger.stop();
    const a1 = await startDevice(server, 'alice', 'a1', {
      storage: all[0]!.storage,
      onDeviceAdded: (d) => added.push(`${d.user}/${d.device}`),
    });
    all[0] = a1;
    const b2 = await startDevice(server, 'bob', 'b2');
    await b2.messenger.announce('g:1');
    const everyone = [...all, b2];
    await settle(server, everyone);
    for (const sender of all) {
      const message = await send(server, sender, 'g:1', `after from ${sender.device}`);
      await settle(server, everyone);
      await assertReads([b2], message, `after from ${sender.device}`);
    }
    assert.deepEqual(added, ['bob/b2']);
    const fromNew = await send(server, b2, 'g:1', 'from b2');
    await settle(server, everyone);
    await assertReads(all, fromNew, 'from b2');
  });

  test('a reinstalled device (new identity, same id) is reported, and reads again once it announces', async () => {
    const server = new FakeServer();
    const changes: string[] = [];
    const a1 = await startDevice(server, 'alice', 'a1', {
      onIdentityChange: (c) => changes.push(`${c.user}/${c.device}`),
    });
    let b1 = await startDevice(server, 'bob', 'b1');
    server.setMembers('dm:alice:bob', ['alice', 'bob']);
    await send(server, a1, 'dm:alice:bob', 'before');
    await settle(server, [a1, b1]);
    const before = await a1.messenger.safetyNumber('bob');

    b1.messenger.stop();
    b1 = await startDevice(server, 'bob', 'b1'); // fresh storage: a new identity
    await b1.messenger.announce('dm:alice:bob');
    await settle(server, [a1, b1]);
    assert.deepEqual(changes, ['bob/b1']);
    assert.notEqual(await a1.messenger.safetyNumber('bob'), before);
    const after = await send(server, a1, 'dm:alice:bob', 'after');
    await settle(server, [a1, b1]);
    await assertReads([b1], after, 'after');
  });

  test('a device unknown to the sender asks for the key and reads the next messages', async () => {
    const { server, devices, all } = await world({ alice: ['a1'], bob: ['b1'] });
    server.setMembers('dm:alice:bob', ['alice', 'bob']);
    await send(server, devices.a1!, 'dm:alice:bob', 'before');
    await settle(server, all);
    const b2 = await startDevice(server, 'bob', 'b2');
    const everyone = [...all, b2];
    const missed = await send(server, devices.a1!, 'dm:alice:bob', 'sent before alice knew b2');
    // b2 asks a1 (a to_device key request); a1 answers with its key from the next message on.
    await expectCode(b2.messenger.decrypt(missed), 'key_not_shared');
    await settle(server, everyone);
    const next = await send(server, devices.a1!, 'dm:alice:bob', 'next');
    await settle(server, everyone);
    await assertReads([b2, devices.b1!], next, 'next');
  });

  test('a tampered ciphertext or signature, a forged device, or a message moved to another conversation is refused', async () => {
    const { server, devices, all } = await world(
      { alice: ['a1'], bob: ['b1'] },
      { keyRequestTimeoutMs: 100 },
    );
    server.setMembers('dm:alice:bob', ['alice', 'bob']);
    server.setMembers('g:other', ['alice', 'bob']);
    const message = await send(server, devices.a1!, 'dm:alice:bob', 'original');
    await send(server, devices.a1!, 'g:other', 'make a key in the other conversation too');
    await settle(server, all);
    const envelope = decodeSenderKeyEnvelope(message.body);
    const flip = (b64: string) => {
      const bytes = fromBase64(b64);
      bytes[0]! ^= 1;
      return toBase64(bytes);
    };
    const b1 = devices.b1!.messenger;
    const tampered = (change: object) => ({
      ...message,
      body: encodeSenderKeyEnvelope({ ...envelope, ...change }),
    });
    await expectCode(b1.decrypt(tampered({ c: flip(envelope.c) })), 'bad_signature');
    await expectCode(b1.decrypt(tampered({ sg: flip(envelope.sg) })), 'bad_signature');
    await expectCode(b1.decrypt(tampered({ i: envelope.i + 1 })), 'bad_signature');
    await expectCode(b1.decrypt({ ...message, from_device: 'other' }), 'bad_input');
    await expectCode(b1.decrypt({ ...message, conv: 'g:other' }), 'missing_sender_key');
    await expectCode(b1.decrypt({ ...message, body: 'not json' }), 'bad_input');
    // The genuine message still decrypts after all that.
    await assertReads([devices.b1!], message, 'original');
  });

  test('an attachment round trip, with the digest checked before decryption', async () => {
    const { server, devices, all } = await world({ alice: ['a1'], bob: ['b1'] });
    server.setMembers('dm:alice:bob', ['alice', 'bob']);
    const photo = crypto.getRandomValues(new Uint8Array(50_000));
    const { ciphertext, pointer } = devices.a1!.messenger.encryptAttachment(photo);
    server.media.set('m_1', ciphertext);
    const descriptor = devices.a1!.messenger.attachmentDescriptor(
      'm_1',
      pointer,
      'image/jpeg',
      Uint8Array.of(1, 2, 3),
    );
    await devices.a1!.messenger.sendMessage(
      'dm:alice:bob',
      { text: 'a photo', attachments: [descriptor] },
      {
        media: ['m_1'],
      },
    );
    const message = server.log.at(-1)!;
    assert.deepEqual(message.media, ['m_1']);
    await settle(server, all);

    const { content } = await devices.b1!.messenger.decrypt(message);
    const received = parseAttachmentDescriptor((content as { attachments: unknown[] }).attachments[0]);
    assert.equal(received.thumbnail, toBase64(Uint8Array.of(1, 2, 3)));
    const downloaded = server.media.get(received.media)!;
    assert.deepEqual(devices.b1!.messenger.decryptAttachment(downloaded, received), photo);
    const swapped = downloaded.slice();
    swapped[10]! ^= 1;
    assert.throws(
      () => devices.b1!.messenger.decryptAttachment(swapped, received),
      (e: unknown) => e instanceof E2eeError && e.code === 'digest_mismatch',
    );
  });

  test('a restarted client keeps its identity, sessions and sender keys', async () => {
    const server = new FakeServer();
    let a1 = await startDevice(server, 'alice', 'a1');
    let b1 = await startDevice(server, 'bob', 'b1');
    server.setMembers('dm:alice:bob', ['alice', 'bob']);
    await send(server, a1, 'dm:alice:bob', 'before restart');
    await send(server, b1, 'dm:alice:bob', 'hello from bob');
    await settle(server, [a1, b1]);
    const identity = a1.messenger.identityKey;

    a1.messenger.stop();
    b1.messenger.stop();
    a1 = await startDevice(server, 'alice', 'a1', { storage: a1.storage });
    b1 = await startDevice(server, 'bob', 'b1', { storage: b1.storage });
    assert.equal(a1.messenger.identityKey, identity);
    const toDeviceBefore = server.stats.toDevice;
    const claimsBefore = server.stats.claims;
    const after = await send(server, a1, 'dm:alice:bob', 'after restart');
    const reply = await send(server, b1, 'dm:alice:bob', 'reply after restart');
    await settle(server, [a1, b1]);
    assert.equal(server.stats.toDevice, toDeviceBefore, 'no key was distributed again');
    assert.equal(server.stats.claims, claimsBefore, 'no keys were claimed again');
    await assertReads([b1], after, 'after restart');
    await assertReads([a1], reply, 'reply after restart');
  });

  test('start keeps one-time prekeys topped up, in batches of at most 100', async () => {
    const server = new FakeServer();
    const a1 = await startDevice(server, 'alice', 'a1', { minOneTimePrekeys: 250 });
    assert.deepEqual(server.stats.uploads, [100, 100, 50]);
    assert.equal(server.oneTimeCount('alice', 'a1'), 250);
    const b1 = await startDevice(server, 'bob', 'b1');
    server.setMembers('dm:alice:bob', ['alice', 'bob']);
    await b1.messenger.sendText('dm:alice:bob', 'claims one of alice’s prekeys');
    assert.equal(server.oneTimeCount('alice', 'a1'), 249);
    assert.equal(await a1.messenger.replenishPrekeys(), 1);
    assert.equal(server.oneTimeCount('alice', 'a1'), 250);
  });

  test('after a signed prekey rotation, new sessions use the new prekey', async () => {
    const { server, devices, all } = await world({ alice: ['a1'], bob: ['b1'] });
    server.setMembers('dm:alice:bob', ['alice', 'bob']);
    await devices.a1!.messenger.rotateSignedPrekey();
    const [bundle] = await server.transport('observer', 'o1').claimKeys('alice');
    assert.equal(bundle!.signed_prekey.key_id, 2);
    assert.ok(verifySignedPrekey(bundle!.identity_key, bundle!.signed_prekey));
    const first = await send(server, devices.b1!, 'dm:alice:bob', 'to the rotated prekey');
    await settle(server, all);
    await assertReads([devices.a1!], first, 'to the rotated prekey');
    assert.deepEqual(
      all.flatMap((d) => d.errors),
      [],
    );
  });

  test('a forged signed prekey is refused: no session is started with it, no key sent to it', async () => {
    const { server, devices, all } = await world({ alice: ['a1'], bob: ['b1', 'b2'] });
    server.setMembers('dm:alice:bob', ['alice', 'bob']);
    server.forgeSignedPrekey('bob', 'b2', toBase64(new Uint8Array(32).fill(9)));
    const message = await send(server, devices.a1!, 'dm:alice:bob', 'only for honest devices');
    await settle(server, all);
    assert.deepEqual(
      devices.a1!.errors.map((e) => e.code),
      ['bad_signature'],
    );
    await assertReads([devices.b1!], message, 'only for honest devices');
    // b2 itself is genuine (only the server's copy of its prekey was forged): it asks a1 for the
    // key over a session it starts, and gets it from the next message on.
    await expectCode(devices.b2!.messenger.decrypt(message), 'key_not_shared');
  });

  test('an undecryptable to_device payload is reported and acknowledged', async () => {
    const { server, devices, all } = await world({ alice: ['a1'], bob: ['b1'] });
    await server
      .transport('mallory', 'm1')
      .sendToDevice('alice', 'a1', toBase64(new TextEncoder().encode('{"v":1}')));
    await settle(server, all);
    assert.equal(devices.a1!.errors[0]?.code, 'bad_input');
    assert.ok(server.quiet);
  });

  test('the safety number matches on both sides and changes when a device is added', async () => {
    const { server, devices } = await world({ alice: ['a1', 'a2'], bob: ['b1'] });
    const fromAlice = await devices.a1!.messenger.safetyNumber('bob');
    const fromBob = await devices.b1!.messenger.safetyNumber('alice');
    assert.match(fromAlice, /^\d{60}$/);
    assert.equal(fromAlice, fromBob);
    await startDevice(server, 'bob', 'b2');
    await devices.a1!.messenger.refreshDevices('bob');
    assert.notEqual(await devices.a1!.messenger.safetyNumber('bob'), fromAlice);
  });
});
