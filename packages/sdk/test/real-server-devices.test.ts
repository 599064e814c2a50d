// The SDK's device, push and mute helpers against a real server over real sockets: a device
// registers for push (visible in `devices`), a conversation is muted and unmuted, and revoking a
// device closes it; the connect result carries the server's VAPID key.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { mintToken } from '../../server/src/gateway/auth.js';
import { startServer, TEST_SECRET, type TestServer } from '../../server/test/helpers.js';
import { ParleyClient, ParleyError } from '../src/index.js';
import { waitUntil } from './fake-server.js';

const secret = new TextEncoder().encode(TEST_SECRET);
let srv: TestServer;
const clients: ParleyClient[] = [];

before(async () => {
  srv = await startServer();
});

after(async () => {
  for (const c of clients.splice(0)) await c.close();
  await srv.stop();
});

/** A connected client; with `oneToken`, every (re)connect uses the same token, minted once. */
async function connected(user: string, device: string, oneToken = false): Promise<ParleyClient> {
  const once = oneToken ? mintToken(secret, { user, ttlSeconds: 600 }) : undefined;
  const client = new ParleyClient({
    url: srv.url,
    device,
    tokenProvider: () => once ?? mintToken(secret, { user, ttlSeconds: 600 }),
    WebSocket,
    requestTimeoutMs: 5000,
  });
  clients.push(client);
  await client.connect();
  return client;
}

test('registerPush, devices, mute/unmute, revokeDevice, and the VAPID key', async () => {
  const laptop = await connected('sdk-dev-bob', 'laptop');
  // The phone keeps its one token: after the revocation its reconnects are refused.
  const phone = await connected('sdk-dev-bob', 'phone', true);
  assert.match(laptop.connectResult?.vapid_public_key ?? '', /^[A-Za-z0-9_-]{80,}$/);

  await phone.registerPush({ platform: 'fcm', token: 'fcm-token-1' });
  const devices = await laptop.devices();
  assert.deepEqual(devices.map((d) => [d.device, d.online, d.push]).sort(), [
    ['laptop', true, undefined],
    ['phone', true, 'fcm'],
  ]);
  await phone.unregisterPush();
  assert.equal((await laptop.devices()).find((d) => d.device === 'phone')?.push, undefined);

  await laptop.mute('dm:sdk-dev-alice:sdk-dev-bob', Date.now() + 60_000);
  await laptop.unmute('dm:sdk-dev-alice:sdk-dev-bob');
  await assert.rejects(laptop.mute('dm:sdk-x:sdk-y'), (err: unknown) => {
    assert.ok(err instanceof ParleyError);
    assert.equal(err.code, 'forbidden');
    return true;
  });

  await laptop.revokeDevice('phone');
  await waitUntil(() => phone.state !== 'connected');
  assert.deepEqual(
    (await laptop.devices()).map((d) => d.device),
    ['laptop'],
  );
});
