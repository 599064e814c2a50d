// The server API for app backends, in every mode: each call through gRPC, gRPC-Web and Connect
// (the generated client) and plain JSON over HTTP (as curl sends it); API keys missing, wrong,
// revoked, rotated without a restart, and short of a scope; calls authorized as the acting user;
// fields validated as the client protocol's frames; a per-key call budget and a request size cap.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Code, ConnectError } from '@connectrpc/connect';
import {
  createServerClient,
  Role,
  type ServerApiProtocol,
  type ServerClient,
  Visibility,
} from '@parley/server-client';
import { SOURCE_CLI } from './child-server.js';
import {
  eventually,
  type Frame,
  sleep,
  startServer,
  TestClient,
  type TestServer,
  tempDir,
} from './helpers.js';

const run = promisify(execFile);
const FULL_KEY = `full-${randomBytes(16).toString('base64url')}`;
const READ_KEY = `read-${randomBytes(16).toString('base64url')}`;

interface KeyLine {
  name: string;
  key: string;
  scopes: string[];
}

function writeKeys(path: string, keys: KeyLine[]): void {
  writeFileSync(path, JSON.stringify({ keys }));
}

/** Rejects unless `call` fails with `code` (and, given, Parley's own code in the metadata). */
async function refused(call: Promise<unknown>, code: Code, parley?: string): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    const e = ConnectError.from(err);
    assert.equal(Code[e.code], Code[code], e.message);
    if (parley !== undefined) assert.equal(e.metadata.get('parley-error'), parley);
    return e;
  }
  assert.fail(`expected ${Code[code]}`);
}

/** Waits until `pred` holds for a message event on `c`. */
const message = (c: TestClient, pred: (f: Frame) => boolean) =>
  c.nextEvent((f) => f.type === 'message' && pred(f));

describe('server API', () => {
  let s: TestServer;
  let keysFile: string;
  let tmp: { dir: string; remove: () => void };
  const client = (protocol: ServerApiProtocol, apiKey = FULL_KEY): ServerClient =>
    createServerClient({ baseUrl: s.serverApiUrl!, apiKey, protocol });

  before(async () => {
    tmp = tempDir('parley-api-keys-');
    keysFile = join(tmp.dir, 'api-keys.json');
    writeKeys(keysFile, [
      { name: 'backend', key: FULL_KEY, scopes: ['*'] },
      { name: 'reader', key: READ_KEY, scopes: ['read'] },
    ]);
    s = await startServer({ serverApiKeysFile: keysFile, serviceAccounts: ['api-helpbot'] });
    assert.ok(s.serverApiUrl, 'the server API listens when a keys file is configured');
  });
  after(async () => {
    await s.stop();
    tmp.remove();
  });

  for (const protocol of ['grpc', 'grpc-web', 'connect'] as const) {
    test(`every call over ${protocol}`, async () => {
      const api = client(protocol);
      const p = `api-${protocol.replace('-', '')}`;
      const [alice, bob, carol] = [`${p}-alice`, `${p}-bob`, `${p}-carol`];
      const bobPhone = await s.client(bob, 'phone');

      // A message from alice through the API reaches bob's device; the same cmid is stored once.
      const dm = `dm:${[alice, bob].sort().join(':')}`;
      const sent = await api.sendMessage({
        asUser: alice,
        conv: dm,
        cmid: 'c1',
        body: 'hello from the backend',
      });
      assert.equal(sent.seq, 1n);
      assert.equal(sent.dup, false);
      const got = await message(bobPhone, (f) => f.conv === dm);
      assert.equal(got.body, 'hello from the backend');
      assert.equal(got.from, alice);
      assert.equal(got.from_device, 'server-api');
      const again = await api.sendMessage({
        asUser: alice,
        conv: dm,
        cmid: 'c1',
        body: 'hello from the backend',
      });
      assert.deepEqual([again.seq, again.dup], [1n, true]);

      // Groups: create, add, role, rename, remove, leave, and what a member sees of it.
      const { conv } = await api.createGroup({ asUser: alice, name: 'Team', members: [bob] });
      await message(bobPhone, (f) => f.conv === conv && f.kind === 'system');
      const added = await api.addMembers({ asUser: alice, conv, users: [carol] });
      assert.equal(added.seq, 2n);
      assert.equal((await api.setRole({ asUser: alice, conv, user: bob, role: Role.ADMIN })).seq, 3n);
      assert.equal((await api.renameGroup({ asUser: bob, conv, name: 'Team 2' })).seq, 4n);
      const again2 = await api.renameGroup({ asUser: bob, conv, name: 'Team 2' });
      assert.equal(again2.seq, undefined, 'a change that changes nothing has no system message');
      await api.sendMessage({ asUser: carol, conv, cmid: 'g1', body: 'hi all' });
      assert.equal((await api.removeMembers({ asUser: bob, conv, users: [carol] })).seq, 6n);
      const info = await api.getGroup({ asUser: alice, conv });
      assert.equal(info.name, 'Team 2');
      assert.deepEqual(
        info.members.map((m) => [m.user, m.role]),
        [
          [alice, Role.ADMIN],
          [bob, Role.ADMIN],
        ],
      );
      assert.equal((await api.leaveGroup({ asUser: alice, conv })).seq, 7n);

      // Reads for moderation: history as a member sees it, and a user's chat list.
      const history = await api.getHistory({ asUser: bob, conv, limit: 10 });
      assert.deepEqual(
        history.messages.map((m) => Number(m.seq)),
        [1, 2, 3, 4, 5, 6, 7],
      );
      assert.equal(history.messages[4]!.body, 'hi all');
      const older = await api.getHistory({ asUser: bob, conv, before: 3n, limit: 1 });
      assert.deepEqual(
        older.messages.map((m) => Number(m.seq)),
        [2],
      );
      assert.equal(older.more, true);
      const list = await api.listConversations({ user: bob });
      assert.deepEqual(list.conversations.map((c) => c.conv).sort(), [conv, dm].sort());
      const group = list.conversations.find((c) => c.conv === conv)!;
      assert.equal(group.kind, 'group');
      assert.equal(group.name, 'Team 2');

      // Deleting a group: only an admin; every member is removed at once, and it stays ended.
      await refused(api.deleteGroup({ asUser: carol, conv }), Code.PermissionDenied, 'forbidden');
      const ended = await api.deleteGroup({ asUser: bob, conv });
      assert.equal(ended.seq, 8n);
      const endedNote = await message(bobPhone, (f) => f.conv === conv && f.seq === 8);
      assert.deepEqual(JSON.parse(endedNote.body), { event: 'group_deleted' });
      await refused(api.getGroup({ asUser: bob, conv }), Code.PermissionDenied, 'forbidden');
      await refused(
        api.addMembers({ asUser: bob, conv, users: [alice] }),
        Code.PermissionDenied,
        'forbidden',
      );
      await refused(
        api.sendMessage({ asUser: bob, conv, cmid: 'after', body: 'anyone?' }),
        Code.PermissionDenied,
        'forbidden',
      );

      // Settings and blocks.
      const settings = await api.updateSettings({
        user: bob,
        readReceipts: false,
        lastSeen: Visibility.NOBODY,
      });
      assert.deepEqual(
        [settings.readReceipts, settings.lastSeen, settings.groupAdd],
        [false, Visibility.NOBODY, Visibility.EVERYONE],
      );
      await api.block({ user: bob, other: alice });
      await refused(
        api.sendMessage({ asUser: alice, conv: dm, cmid: 'c2', body: 'blocked' }),
        Code.PermissionDenied,
        'forbidden',
      );
      await api.unblock({ user: bob, other: alice });
      assert.equal((await api.sendMessage({ asUser: alice, conv: dm, cmid: 'c3', body: 'again' })).seq, 2n);

      // Devices: bob's phone is listed; revoking it (a stolen phone) closes it and refuses its token.
      const { devices } = await api.listDevices({ user: bob });
      const phone = devices.find((d) => d.device === 'phone');
      assert.equal(phone?.online, true);
      const closed = bobPhone.closed();
      await api.revokeDevice({ user: bob, device: 'phone' });
      assert.equal(await closed, 4401);

      // A token minted by the server API signs a device in.
      const minted = await api.mintToken({ user: bob, device: 'tablet', ttlSeconds: 600n });
      assert.ok(minted.expiresAt > BigInt(Math.floor(Date.now() / 1000) + 590));
      const tablet = await TestClient.open(s.url);
      const signedIn = await tablet.request({ type: 'connect', token: minted.token, device: 'tablet' });
      assert.equal(signedIn.ok, true, JSON.stringify(signedIn));
      tablet.close();
    });
  }

  test('plain JSON over HTTP/1.1, as curl sends it (the protocol’s field names, both spellings read)', async () => {
    const post = (call: string, body: object, key = FULL_KEY) =>
      fetch(`${s.serverApiUrl}/parley.server.v1.ServerApiService/${call}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(body),
      });
    const res = await post('SendMessage', {
      as_user: 'api-json-a',
      conv: 'dm:api-json-a:api-json-b',
      cmid: 'x',
      body: 'hi',
    });
    assert.equal(res.status, 200);
    const sent = (await res.json()) as Record<string, unknown>;
    assert.deepEqual([sent.conv, sent.seq], ['dm:api-json-a:api-json-b', '1']);
    assert.match(String(sent.ts), /^\d{13}$/);
    const camel = await post('GetHistory', { asUser: 'api-json-b', conv: 'dm:api-json-a:api-json-b' });
    const page = (await camel.json()) as { messages: { from: string; from_device: string }[] };
    assert.deepEqual(
      page.messages.map((m) => [m.from, m.from_device]),
      [['api-json-a', 'server-api']],
    );
    const bad = await post('SendMessage', { as_user: 'api-json-a', conv: 'nope', cmid: 'y', body: 'hi' });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, 'invalid_argument');
    const noKey = await fetch(`${s.serverApiUrl}/parley.server.v1.ServerApiService/ListDevices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"user":"api-json-a"}',
    });
    assert.equal(noKey.status, 401);
  });

  test('a service account (a bot) sends marked from_device "bot", and signs in nowhere', async () => {
    const api = client('connect');
    const [bot, dana] = ['api-helpbot', 'api-dana'];
    const phone = await s.client(dana, 'phone');
    const dm = `dm:${[bot, dana].sort().join(':')}`;
    const sent = await api.sendMessage({ asUser: bot, conv: dm, cmid: 'b1', body: 'How can I help?' });
    const got = await message(phone, (f) => f.conv === dm && f.seq === Number(sent.seq));
    assert.deepEqual([got.from, got.from_device], [bot, 'bot']);
    const { conv } = await api.createGroup({ asUser: bot, name: 'Support', members: [dana] });
    const created = await message(phone, (f) => f.conv === conv);
    assert.equal(created.from_device, 'bot');
    // Dana's reply is an ordinary message; the bot reads it through the API (or a webhook).
    assert.equal(
      (await phone.request({ type: 'send', conv: dm, cmid: 'r1', kind: 'text', body: 'hi' })).ok,
      true,
    );
    const history = await api.getHistory({ asUser: bot, conv: dm });
    assert.deepEqual(
      history.messages.map((m) => [m.from, m.fromDevice]),
      [
        [bot, 'bot'],
        [dana, 'phone'],
      ],
    );
    // No device signs in as the bot, whatever the token; no token is minted for it.
    const c = await TestClient.open(s.url);
    const r = await c.request({ type: 'connect', token: await s.token(bot), device: 'laptop' });
    assert.equal(r.ok, false);
    assert.equal(r.error.code, 'unauthorized');
    c.close();
    await refused(api.mintToken({ user: bot, device: 'laptop' }), Code.PermissionDenied, 'forbidden');
    // Nor does any client connect as the reserved device.
    const d = await TestClient.open(s.url);
    const rd = await d.request({ type: 'connect', token: await s.token(dana), device: 'bot' });
    assert.equal(rd.error?.code, 'bad_request');
    d.close();
  });

  test('GetPresence sees anyone; DisconnectUser closes every connection of a user (4401)', async () => {
    const api = client('grpc');
    const phone = await s.client('api-p-bob', 'phone');
    const laptop = await s.client('api-p-bob', 'laptop');
    const seen = await api.getPresence({ users: ['api-p-bob', 'api-p-nobody'] });
    assert.deepEqual(
      seen.presence.map((p) => [p.user, p.online, p.lastSeen]),
      [
        ['api-p-bob', true, undefined],
        ['api-p-nobody', false, undefined],
      ],
    );
    const closed = [phone.closed(), laptop.closed()];
    assert.equal((await api.disconnectUser({ user: 'api-p-bob' })).connections, 2);
    assert.deepEqual(await Promise.all(closed), [4401, 4401]);
    await eventually(async () => {
      const [bob] = (await api.getPresence({ users: ['api-p-bob'] })).presence;
      assert.equal(bob!.online, false);
      assert.ok(bob!.lastSeen !== undefined && bob!.lastSeen > 0n, 'last seen once offline');
    });
    const reader = client('connect', READ_KEY);
    await reader.getPresence({ users: ['api-p-bob'] });
    await refused(reader.disconnectUser({ user: 'api-p-bob' }), Code.PermissionDenied);
    await refused(api.getPresence({ users: ['bad user'] }), Code.InvalidArgument, 'bad_request');
  });

  test('PublishEvent reaches every live device of the user, once, and is never stored', async () => {
    const api = client('connect');
    const phone = await s.client('api-e-bob', 'phone');
    const laptop = await s.client('api-e-bob', 'laptop');
    const other = await s.client('api-e-carol');
    const event = { name: 'order.shipped', data: '{"order":7}' };
    assert.equal((await api.publishEvent({ user: 'api-e-bob', ...event })).devices, 2);
    for (const c of [phone, laptop]) {
      const got = await c.nextEvent((f) => f.type === 'app_event');
      assert.deepEqual(got, { type: 'app_event', ...event });
    }
    assert.equal(other.events.filter((f) => f.type === 'app_event').length, 0);
    assert.equal((await api.publishEvent({ user: 'api-e-nobody', ...event })).devices, 0);
    const sync = await phone.request({ type: 'sync', after: 0 });
    assert.equal(sync.events.filter((f: Frame) => f.type === 'app_event').length, 0, 'not stored');
    await refused(api.publishEvent({ user: 'api-e-bob', name: 'bad name', data: '' }), Code.InvalidArgument);
    await refused(
      api.publishEvent({ user: 'api-e-bob', name: 'big', data: 'x'.repeat(70_000) }),
      Code.InvalidArgument,
      'too_large',
    );
  });

  test('`parley api` calls it from the command line', async () => {
    const env = {
      PATH: process.env.PATH ?? '',
      PARLEY_API_KEY: FULL_KEY,
      PARLEY_SERVER_API_URL: s.serverApiUrl!,
    };
    const api = (...args: string[]) => run(process.execPath, [...SOURCE_CLI, 'api', ...args], { env });
    const sent = await api('send', '--as', 'api-cli-a', '--conv', 'dm:api-cli-a:api-cli-b', '--body', 'hi');
    assert.deepEqual(JSON.parse(sent.stdout).seq, '1');
    const group = JSON.parse(
      (
        await api(
          'create-group',
          '--as',
          'api-cli-a',
          '--name',
          'T',
          '--members',
          'api-cli-b,api-cli-c',
          '--protocol',
          'connect',
        )
      ).stdout,
    ) as { conv: string };
    const role = await api(
      'set-role',
      '--as',
      'api-cli-a',
      '--conv',
      group.conv,
      '--user',
      'api-cli-b',
      '--role',
      'admin',
    );
    assert.equal(JSON.parse(role.stdout).seq, '2');
    const info = JSON.parse((await api('get-group', '--as', 'api-cli-b', '--conv', group.conv)).stdout);
    assert.deepEqual(
      info.members.map((m: Frame) => m.role),
      ['ROLE_ADMIN', 'ROLE_ADMIN', 'ROLE_MEMBER'],
    );
    await assert.rejects(
      api('send', '--as', 'api-cli-a', '--conv', 'nope', '--body', 'x'),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /invalid_argument|conv/);
        return true;
      },
    );
    await assert.rejects(api('no-such-call'), (err: { code: number }) => err.code === 2);
  });

  test('API keys: missing, wrong, short of a scope, revoked and rotated without a restart', async () => {
    await refused(client('grpc', '').listDevices({ user: 'api-k' }), Code.Unauthenticated);
    await refused(
      client('grpc', 'not-a-key-not-a-key-not-a-key').listDevices({ user: 'api-k' }),
      Code.Unauthenticated,
    );
    const reader = client('connect', READ_KEY);
    await reader.listConversations({ user: 'api-k' });
    await refused(
      reader.sendMessage({ asUser: 'api-k', conv: 'dm:api-k:api-l', cmid: 'a', body: 'x' }),
      Code.PermissionDenied,
    );
    await refused(reader.mintToken({ user: 'api-k', device: 'd' }), Code.PermissionDenied);

    // Rotation: a new key works and the old one stops, within the file's re-read interval.
    const rotated = `rot-${randomBytes(16).toString('base64url')}`;
    writeKeys(keysFile, [
      { name: 'backend', key: FULL_KEY, scopes: ['*'] },
      { name: 'reader-2', key: rotated, scopes: ['read'] },
    ]);
    await eventually(() => client('grpc', rotated).listConversations({ user: 'api-k' }));
    await refused(reader.listConversations({ user: 'api-k' }), Code.Unauthenticated);
    // A file that no longer parses keeps the keys that were loaded.
    writeFileSync(keysFile, '{"keys": [');
    await sleep(1_200);
    await client('grpc', rotated).listConversations({ user: 'api-k' });
    writeKeys(keysFile, [{ name: 'backend', key: FULL_KEY, scopes: ['*'] }]);
    await eventually(() =>
      refused(client('grpc', rotated).listConversations({ user: 'api-k' }), Code.Unauthenticated),
    );
  });

  test('each call is authorized as its acting user, and validated as the protocol’s frame', async () => {
    const api = client('grpc');
    // Nobody acts in a conversation the acting user is not in, nor beyond that user's rights.
    await refused(
      api.sendMessage({ asUser: 'api-z-mallory', conv: 'dm:api-z-alice:api-z-bob', cmid: 'm', body: 'x' }),
      Code.PermissionDenied,
      'forbidden',
    );
    const { conv } = await api.createGroup({ asUser: 'api-z-alice', name: 'G', members: ['api-z-bob'] });
    await refused(
      api.addMembers({ asUser: 'api-z-bob', conv, users: ['api-z-eve'] }),
      Code.PermissionDenied,
      'forbidden',
    );
    await refused(api.getHistory({ asUser: 'api-z-eve', conv }), Code.PermissionDenied, 'forbidden');
    // Fields: ids, sizes and reserved kinds as the client protocol checks them.
    await refused(
      api.sendMessage({ asUser: 'bad user!', conv, cmid: 'm', body: 'x' }),
      Code.InvalidArgument,
      'bad_request',
    );
    await refused(
      api.sendMessage({ asUser: 'api-z-alice', conv, cmid: 'm', body: 'x'.repeat(70_000) }),
      Code.InvalidArgument,
      'too_large',
    );
    await refused(
      api.sendMessage({ asUser: 'api-z-alice', conv, cmid: 'm', kind: 'system', body: 'forged' }),
      Code.InvalidArgument,
      'bad_request',
    );
    await refused(
      api.setRole({ asUser: 'api-z-alice', conv, user: 'api-z-bob' }),
      Code.InvalidArgument,
      'bad_request',
    );
    await refused(
      api.mintToken({ user: 'api-z-alice', device: 'd', ttlSeconds: 10n ** 9n }),
      Code.InvalidArgument,
    );
    // A request body past the cap is refused before it is read in full.
    await refused(
      api.sendMessage({ asUser: 'api-z-alice', conv, cmid: 'm', body: 'x'.repeat(2 * 1024 * 1024) }),
      Code.ResourceExhausted,
    );
  });
});

describe('server API budget per key', () => {
  let s: TestServer;
  let tmp: { dir: string; remove: () => void };
  before(async () => {
    tmp = tempDir('parley-api-keys-');
    const keysFile = join(tmp.dir, 'api-keys.json');
    writeKeys(keysFile, [
      { name: 'a', key: FULL_KEY, scopes: ['read'] },
      { name: 'b', key: READ_KEY, scopes: ['read'] },
    ]);
    s = await startServer({ serverApiKeysFile: keysFile, serverApiRate: 1, serverApiBurst: 5 });
  });
  after(async () => {
    await s.stop();
    tmp.remove();
  });

  test('a key past its call budget is refused (resource_exhausted, with when to retry); another key is not', async () => {
    const a = createServerClient({ baseUrl: s.serverApiUrl!, apiKey: FULL_KEY });
    for (let i = 0; i < 5; i++) await a.listConversations({ user: 'api-b' });
    const e = await refused(a.listConversations({ user: 'api-b' }), Code.ResourceExhausted, 'rate_limited');
    assert.ok(Number(e.metadata.get('retry-after-ms')) > 0);
    const b = createServerClient({ baseUrl: s.serverApiUrl!, apiKey: READ_KEY });
    await b.listConversations({ user: 'api-b' });
  });
});

describe('server API sockets', () => {
  test('a socket that sends nothing, or half a preface, is closed after headersTimeoutMs', async () => {
    const tmp = tempDir('parley-api-keys-');
    const keysFile = join(tmp.dir, 'api-keys.json');
    writeKeys(keysFile, [{ name: 'a', key: FULL_KEY, scopes: ['read'] }]);
    const s = await startServer({ serverApiKeysFile: keysFile, headersTimeoutMs: 500 });
    try {
      const { port } = new URL(s.serverApiUrl!);
      const silent = connect(Number(port), '127.0.0.1');
      const half = connect(Number(port), '127.0.0.1', () => half.write('PRI * HT'));
      const closed = Promise.all([once(silent, 'close'), once(half, 'close')]);
      await Promise.race([
        closed,
        sleep(3_000).then(() => assert.fail('a silent socket is still open after 3 s')),
      ]);
    } finally {
      await s.stop();
      tmp.remove();
    }
  });

  test('the listener holds at most 1,024 sockets; the next is closed at once, and a call works again after', async () => {
    const tmp = tempDir('parley-api-keys-');
    const keysFile = join(tmp.dir, 'api-keys.json');
    writeKeys(keysFile, [{ name: 'a', key: FULL_KEY, scopes: ['read'] }]);
    const s = await startServer({ serverApiKeysFile: keysFile });
    const { port } = new URL(s.serverApiUrl!);
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const sock = connect(Number(port), '127.0.0.1', () => resolve(sock));
        sock.once('error', reject);
      });
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 1024; i++) held.push(await open());
      const extra = await open();
      await Promise.race([
        once(extra, 'close'),
        sleep(2_000).then(() => assert.fail('the 1,025th socket is still open')),
      ]);
      for (const sock of held) sock.destroy();
      const api = createServerClient({ baseUrl: s.serverApiUrl!, apiKey: FULL_KEY, protocol: 'connect' });
      await eventually(async () => {
        await api.getPresence({ users: ['api-anyone'] });
      });
    } finally {
      for (const sock of held) sock.destroy();
      await s.stop();
      tmp.remove();
    }
  });
});

describe('server API off', () => {
  test('without a keys file nothing listens', async () => {
    const s = await startServer();
    try {
      assert.equal(s.serverApiUrl, null);
    } finally {
      await s.stop();
    }
  });
});
