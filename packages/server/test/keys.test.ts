// The key directory and device-to-device messages, in every mode: keys are published and claimed
// (each one-time prekey once, then the signed prekey alone, even under concurrent claims spread
// over the deployment's processes), claims are budgeted per claimer and per target, `to_device`
// messages queue per device, arrive live or on reconnect in qid order until acknowledged, are
// bounded per device, a revoked device's keys and queue are gone, and every request kind has
// its budget.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Frame, sleep, startServer, TestClient, type TestServer } from './helpers.js';

const b64 = (n: number) => Buffer.from(`key-${n}`.padEnd(32, '.')).toString('base64');

/** A device's full bundle with `n` one-time prekeys numbered from `from`. */
function bundle(n: number, from = 1): Frame {
  return {
    type: 'keys_upload',
    identity_key: b64(0),
    signed_prekey: { key_id: 1, key: b64(1), signature: b64(2) },
    one_time_prekeys: Array.from({ length: n }, (_, i) => ({ key_id: from + i, key: b64(from + i) })),
  };
}

/**
 * Signs a device in and out, and waits until the server has stored it (its first sighting is
 * written in the background; a fresh server's first write takes a while).
 */
async function signedInOnce(s: TestServer, user: string, device: string): Promise<void> {
  (await s.client(user, device)).close();
  const other = await s.client(user, 'observer');
  const deadline = Date.now() + 5000;
  for (;;) {
    const devices = (await other.request({ type: 'devices' })).devices as Frame[];
    if (devices.some((d) => d.device === device && d.online === false)) break;
    if (Date.now() > deadline) throw new Error(`${user}/${device} never stored`);
    await sleep(50);
  }
  other.close();
}

describe('key directory', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ maxToDeviceQueue: 5, keysClaimedBurst: 60 });
  });
  after(() => s.stop());

  test('keys_upload, keys_count and keys_claim: each one-time prekey once, then the signed prekey alone', async () => {
    const bob = await s.client('kd-bob', 'phone');
    const up = await bob.request(bundle(3));
    assert.equal(up.ok, true, JSON.stringify(up));
    assert.equal(up.one_time_prekeys, 3);
    assert.equal((await bob.request({ type: 'keys_count' })).one_time_prekeys, 3);
    const alice = await s.client('kd-alice');
    const seen = new Set<number>();
    for (let i = 0; i < 3; i++) {
      const r = await alice.request({ type: 'keys_claim', user: 'kd-bob' });
      assert.equal(r.ok, true, JSON.stringify(r));
      assert.equal(r.devices.length, 1);
      const d = r.devices[0];
      assert.equal(d.device, 'phone');
      assert.equal(d.identity_key, b64(0));
      assert.deepEqual(d.signed_prekey, { key_id: 1, key: b64(1), signature: b64(2) });
      assert.ok(!seen.has(d.one_time_prekey.key_id), 'a one-time prekey handed out twice');
      seen.add(d.one_time_prekey.key_id);
    }
    const last = await alice.request({ type: 'keys_claim', user: 'kd-bob' });
    assert.equal(last.devices[0].one_time_prekey, undefined, 'none left: the signed prekey alone');
    assert.equal((await bob.request({ type: 'keys_count' })).one_time_prekeys, 0);
    const nobody = await alice.request({ type: 'keys_claim', user: 'kd-nobody' });
    assert.deepEqual(nobody.devices, []);
  });

  test('50 concurrent claims on 50 one-time prekeys, over every process, get 50 distinct keys', async () => {
    const target = await s.client('kd-target', 'laptop');
    assert.equal((await target.request(bundle(50, 100))).one_time_prekeys, 50);
    // Claimers on every process of the deployment (clients are spread over them).
    const claimers = await Promise.all(Array.from({ length: 5 }, (_, i) => s.client(`kd-claimer-${i}`)));
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        claimers[i % claimers.length]!.request({ type: 'keys_claim', user: 'kd-target' }, 15_000),
      ),
    );
    for (const r of replies) assert.equal(r.ok, true, JSON.stringify(r));
    const ids = replies.map((r) => r.devices[0].one_time_prekey?.key_id);
    assert.equal(new Set(ids).size, 50, `distinct keys: ${JSON.stringify(ids)}`);
    assert.ok(ids.every((id) => typeof id === 'number' && id >= 100 && id < 150));
    const next = await claimers[0]!.request({ type: 'keys_claim', user: 'kd-target' });
    assert.equal(next.devices[0].one_time_prekey, undefined, 'then the signed prekey alone');
  });

  test("nobody can drain someone's prekeys: claims of one target are budgeted (rate_limited)", async () => {
    const victim = await s.client('kd-victim');
    await victim.request(bundle(100, 1000));
    const attacker = await s.client('kd-attacker');
    const started = Date.now();
    let refused: Frame | undefined;
    for (let i = 0; i < 80 && !refused; i++) {
      const r = await attacker.request({ type: 'keys_claim', user: 'kd-victim' });
      if (!r.ok) refused = r;
    }
    assert.equal(refused?.error.code, 'rate_limited', JSON.stringify(refused));
    assert.ok(refused.error.retry_after_ms > 0);
    // At most the burst (60) and what refilled meanwhile (1/s) were handed out.
    const refilled = Math.ceil((Date.now() - started) / 1000);
    const left = (await victim.request({ type: 'keys_count' })).one_time_prekeys;
    assert.ok(left >= 40 - refilled, `${left} one-time prekeys left of 100 (burst 60, ${refilled} refilled)`);
  });

  test('a new identity key replaces the bundle; devices lists which devices have keys', async () => {
    const u = await s.client('kd-rotate', 'tab');
    await u.request(bundle(5));
    const r = await u.request({
      type: 'keys_upload',
      identity_key: b64(9),
      signed_prekey: { key_id: 2, key: b64(3), signature: b64(4) },
    });
    assert.equal(r.one_time_prekeys, 0, 'one-time prekeys of the old identity are gone');
    const other = await s.client('kd-rotate', 'nokeys');
    const devices = (await other.request({ type: 'devices' })).devices as Frame[];
    const keys = Object.fromEntries(devices.map((d) => [d.device, d.keys]));
    assert.deepEqual(keys, { tab: true, nokeys: false });
  });
});

describe('to_device', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ maxToDeviceQueue: 5 });
  });
  after(() => s.stop());

  test('live delivery, then on reconnect in qid order until acknowledged', async () => {
    const bobPhone = await s.client('td-bob', 'phone');
    const alice = await s.client('td-alice', 'laptop');
    const r = await alice.request({ type: 'to_device', user: 'td-bob', device: 'phone', body: 'b3BhcXVl' });
    assert.equal(r.ok, true, JSON.stringify(r));
    const live = await bobPhone.nextEvent((f) => f.type === 'to_device');
    assert.equal(live.from, 'td-alice');
    assert.equal(live.from_device, 'laptop');
    assert.equal(live.body, 'b3BhcXVl');
    assert.equal(typeof live.qid, 'number');
    for (const body of ['two', 'three'])
      assert.equal(
        (await alice.request({ type: 'to_device', user: 'td-bob', device: 'phone', body })).ok,
        true,
      );
    await bobPhone.nextEvent((f) => f.type === 'to_device' && f.body === 'three');
    bobPhone.close();
    // Not acknowledged: all three again, in order, after the connect reply.
    const again = await TestClient.open(s.url);
    const connected = await again.request({
      type: 'connect',
      token: await s.token('td-bob'),
      device: 'phone',
    });
    assert.equal(connected.ok, true);
    const first = await again.nextEvent((f) => f.type === 'to_device');
    const second = await again.nextEvent((f) => f.type === 'to_device');
    const third = await again.nextEvent((f) => f.type === 'to_device');
    assert.deepEqual([first.body, second.body, third.body], ['b3BhcXVl', 'two', 'three']);
    assert.ok(first.qid < second.qid && second.qid < third.qid);
    // Acknowledge the first two: only the third comes back.
    assert.equal((await again.request({ type: 'to_device_ack', upto: second.qid })).ok, true);
    again.close();
    const third2 = await s.client('td-bob', 'phone');
    const only = await third2.nextEvent((f) => f.type === 'to_device');
    assert.equal(only.body, 'three');
    await third2.request({ type: 'to_device_ack', upto: only.qid });
    await assert.rejects(third2.nextEvent((f) => f.type === 'to_device', 500));
  });

  test('a device queue is bounded: past it to_device is refused (too_large), nothing dropped', async () => {
    await signedInOnce(s, 'td-full', 'phone');
    const sender = await s.client('td-sender');
    for (let i = 0; i < 5; i++) {
      const r = await sender.request({ type: 'to_device', user: 'td-full', device: 'phone', body: `m${i}` });
      assert.equal(r.ok, true, JSON.stringify(r));
    }
    const refused = await sender.request({ type: 'to_device', user: 'td-full', device: 'phone', body: 'm5' });
    assert.equal(refused.error?.code, 'too_large', JSON.stringify(refused));
    const phone = await s.client('td-full', 'phone');
    const bodies: string[] = [];
    for (let i = 0; i < 5; i++) bodies.push((await phone.nextEvent((f) => f.type === 'to_device')).body);
    assert.deepEqual(bodies, ['m0', 'm1', 'm2', 'm3', 'm4'], 'the oldest kept, in order');
  });

  test('unknown devices are not_found; a blocked sender is refused', async () => {
    await signedInOnce(s, 'td-target', 'phone');
    const a = await s.client('td-a');
    const unknown = await a.request({ type: 'to_device', user: 'td-target', device: 'nope', body: 'x' });
    assert.equal(unknown.error?.code, 'not_found');
    const t = await s.client('td-target', 'tab');
    await t.request({ type: 'block', user: 'td-a' });
    const blocked = await a.request({ type: 'to_device', user: 'td-target', device: 'phone', body: 'x' });
    assert.equal(blocked.error?.code, 'forbidden');
  });

  test("a revoked device's keys and queue are deleted", async () => {
    const old = await s.client('td-rev', 'old');
    await old.request(bundle(3));
    const other = await s.client('td-sender2');
    await other.request({ type: 'to_device', user: 'td-rev', device: 'old', body: 'queued' });
    const current = await s.client('td-rev', 'current');
    assert.equal((await current.request({ type: 'revoke_device', device: 'old' })).ok, true);
    const claim = await other.request({ type: 'keys_claim', user: 'td-rev' });
    assert.deepEqual(claim.devices, [], 'a revoked device is not in keys_claim');
    await sleep(1100); // a token issued in the revocation's second counts as before it
    const back = await s.client('td-rev', 'old');
    await assert.rejects(
      back.nextEvent((f) => f.type === 'to_device', 700),
      'its queue is gone',
    );
  });
});

describe('to_device budget', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ toDeviceBurst: 10, toDeviceRatePerSecond: 1 });
  });
  after(() => s.stop());

  test('a sender past its to_device budget is refused (rate_limited); others are not', async () => {
    await signedInOnce(s, 'tb-target', 'phone');
    const flooder = await s.client('tb-flooder');
    const codes: string[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await flooder.request({
        type: 'to_device',
        user: 'tb-target',
        device: 'phone',
        body: `f${i}`,
      });
      codes.push(r.ok ? 'ok' : r.error.code);
    }
    assert.deepEqual(codes.slice(0, 10), Array(10).fill('ok'));
    assert.equal(codes[11], 'rate_limited');
    const other = await s.client('tb-other');
    const r = await other.request({ type: 'to_device', user: 'tb-target', device: 'phone', body: 'hi' });
    assert.equal(r.ok, true, 'another sender is unaffected');
  });
});

describe('keys and media request budgets', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ keysBurst: 5, keysRatePerSecond: 1, mediaBurst: 3, mediaRatePerSecond: 1 });
  });
  after(() => s.stop());

  test('keys_count, keys_upload and to_device_ack past the keys budget are rate_limited', async () => {
    const a = await s.client('kb-a');
    const codes: string[] = [];
    for (const frame of [
      { type: 'keys_count' },
      bundle(2),
      { type: 'to_device_ack', upto: 1 },
      { type: 'keys_count' },
      { type: 'keys_count' },
      { type: 'keys_count' },
      { type: 'keys_count' },
      { type: 'keys_count' },
    ]) {
      const r = await a.request(frame);
      codes.push(r.ok ? 'ok' : r.error.code);
    }
    // The burst of 5, then refusals (one unit refills per second, so a slow run may see one more ok).
    assert.deepEqual(codes.slice(0, 5), ['ok', 'ok', 'ok', 'ok', 'ok']);
    assert.ok(codes.slice(5).includes('rate_limited'), codes.join(' '));
    const other = await s.client('kb-b');
    assert.equal((await other.request({ type: 'keys_count' })).ok, true, 'another user is unaffected');
  });

  test('media_upload and media_download past the media budget are rate_limited', async () => {
    const a = await s.client('kb-media');
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await a.request(
        i % 2 === 0
          ? { type: 'media_upload', size: 10, content_type: 'text/plain' }
          : { type: 'media_download', media: 'm_doesnotexist00000000000000' },
      );
      codes.push(r.ok ? 'ok' : r.error.code);
    }
    assert.deepEqual(codes.slice(0, 3), ['ok', 'not_found', 'ok'], 'the burst of 3');
    assert.ok(codes.slice(3).includes('rate_limited'), codes.join(' '));
  });
});
