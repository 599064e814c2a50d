// The gateway under 100,000 mutated frames over real WebSockets, from authenticated connections
// and one that never authenticated: the server never crashes, every frame gets the answer the
// protocol promises (a reply with its id, an id-less error, or a protocol close), and a fresh
// client can still connect, send and receive afterwards.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer, type TestServer } from '../helpers.js';
import { checkHealth, type FuzzReport, fuzzServer } from './driver.js';

const SEED = Number(process.env.PARLEY_FUZZ_SEED ?? 0x5eed);

let s: TestServer;
let group: string;
before(async () => {
  // Malformed frames are the point here: the abuse close would otherwise end each connection
  // after 20 of them (the default is exercised by its own test below).
  s = await startServer({ maxBadFramesPerMinute: 1_000_000_000 });
  const admin = await s.client('fuzz-0', 'setup');
  const r = await admin.request({ type: 'create_group', name: 'fuzz', members: ['fuzz-1', 'fuzz-peer'] });
  assert.equal(r.ok, true, JSON.stringify(r));
  group = r.conv;
});
after(() => s.stop());

function assertClean(report: FuzzReport): void {
  const summary = JSON.stringify({ ...report, violations: report.violations.slice(0, 10) }, null, 1);
  assert.equal(report.violationCount, 0, summary);
  const answered = Object.values(report.outcomes).reduce((a, b) => a + b, 0);
  assert.equal(answered, report.sent, `every frame is accounted for: ${summary}`);
}

test(`100,000 mutated frames (seed ${SEED}): no crash, every frame answered, server healthy`, async () => {
  const report = await fuzzServer({
    url: s.url,
    seed: SEED,
    frames: 100_000,
    lanes: 3,
    anonymousLanes: 1,
    group,
    token: (user, device) => s.token(user, { device }),
  });
  console.log(
    `fuzz: ${report.sent} frames in ${report.elapsedMs} ms, closes ${JSON.stringify(report.closes)}`,
  );
  assertClean(report);
  assert.ok((report.outcomes['reply bad_request'] ?? 0) > 30_000, JSON.stringify(report.outcomes));
  assert.ok((report.outcomes['reply ok'] ?? 0) > 1000, JSON.stringify(report.outcomes));
  assert.ok((report.outcomes['id-less error'] ?? 0) > 1000, JSON.stringify(report.outcomes));
  await checkHealth(s.url, (user, device) => s.token(user, { device }));
});

test('with the default abuse limit (20 malformed frames a minute), connections are closed cleanly with 4400', async () => {
  const strict = await startServer();
  try {
    const report = await fuzzServer({
      url: strict.url,
      seed: SEED + 1,
      frames: 2_000,
      lanes: 2,
      token: (user, device) => strict.token(user, { device }),
    });
    assertClean(report);
    assert.ok((report.closes[4400] ?? 0) > 10, JSON.stringify(report.closes));
    await checkHealth(strict.url, (user, device) => strict.token(user, { device }));
  } finally {
    await strict.stop();
  }
});
