#!/usr/bin/env node
// The protocol fuzzer at scale: `npm run fuzz -- --frames 10000000 [--seed N] [--lanes 4]
// [--url ws://host:port/v1/ws --secret <HS256 secret>]`. Without --url it starts `parley serve`
// from the built dist (temporary data directory, random secret, abuse close raised so that
// connections live long). It prints progress every 5 s, then the counts by outcome and the seed,
// and exits non-zero on a server crash, an unanswered frame or any other broken promise; then it
// checks that a fresh client can still connect, send and receive, and that the server stops cleanly.
// `--show N` prints frame N of the seed (and what the server must answer) instead of running.
// Run through tsx (the root package.json does), as the driver is the TypeScript of the fuzz tests.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_LIMITS } from '@parley/protocol';
import { mintToken } from '../packages/server/src/gateway/auth.ts';
import { checkHealth, expectationOf, fuzzServer } from '../packages/server/test/fuzz/driver.ts';
import { fuzzFrame } from '../packages/server/test/fuzz/frames.ts';

const { values: args } = parseArgs({
  options: {
    frames: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    lanes: { type: 'string', default: '4' },
    window: { type: 'string', default: '64' },
    url: { type: 'string' },
    secret: { type: 'string' },
    show: { type: 'string' },
  },
});
const seed = Number(args.seed);
const root = new URL('..', import.meta.url).pathname;

if (args.show !== undefined) {
  const ctx = { user: 'fuzz-0', device: 'fuzz', peer: 'fuzz-peer', group: 'g:fuzz', token: '<token>' };
  const frame = fuzzFrame(seed, Number(args.show), { ...ctx, maxFrameBytes: DEFAULT_LIMITS.maxFrameBytes });
  console.log(JSON.stringify({ ...frame, bytes: Buffer.from(frame.bytes).toString('base64') }, null, 1));
  console.log('as text:', JSON.stringify(Buffer.from(frame.bytes).toString('utf8').slice(0, 2000)));
  console.log('expected:', expectationOf(frame, DEFAULT_LIMITS));
  process.exit(0);
}

const secret = args.secret ?? randomBytes(32).toString('hex');
if (args.url && !args.secret) {
  console.error('--url needs --secret (the HS256 secret of that server, to mint test tokens)');
  process.exit(2);
}
const server = args.url ? null : await startServer(secret);
const url = args.url ?? server.url;
const key = new TextEncoder().encode(secret);
const token = (user, device) => mintToken(key, { user, device, ttlSeconds: 24 * 3600 });

console.log(`fuzzing ${url} with ${args.frames} frames, seed ${seed}`);
let crashed = false;
server?.exited.then((code) => {
  if (server.stopping) return;
  crashed = true;
  console.error(`SERVER EXITED (${code}) during the run; its last output:\n${server.tail().join('\n')}`);
});
let last = { at: Date.now(), sent: 0 };
const report = await fuzzServer({
  url,
  seed,
  frames: Number(args.frames),
  lanes: Number(args.lanes),
  anonymousLanes: 1,
  window: Number(args.window),
  token,
  progressMs: 5000,
  onProgress(sent, r) {
    const now = Date.now();
    const rate = Math.round(((sent - last.sent) * 1000) / (now - last.at));
    last = { at: now, sent };
    console.log(`${sent} frames sent, ${rate} frames/s, ${r.violationCount} violations`);
  },
});
let healthy = !crashed;
if (!crashed) {
  try {
    await checkHealth(url, token);
  } catch (err) {
    healthy = false;
    console.error(String(err));
  }
}
const stopCode = server ? await server.stop() : 0;
console.log(
  JSON.stringify(
    { ...report, framesPerSecond: Math.round((report.sent * 1000) / report.elapsedMs) },
    null,
    1,
  ),
);
console.log(`seed ${seed}: reproduce one frame with \`npm run fuzz -- --seed ${seed} --show <index>\``);
const failed = crashed || !healthy || report.violationCount > 0 || stopCode !== 0;
console.log(failed ? 'FUZZ FAILED' : 'fuzz passed: no crash, every frame answered, server healthy');
process.exit(failed ? 1 : 0);

/** Starts `parley serve` from the built dist and waits until it listens. */
async function startServer(secret) {
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-fuzz-'));
  const proc = spawn(process.execPath, [join(root, 'packages/server/dist/cli.js'), 'serve'], {
    env: {
      ...process.env,
      PARLEY_PORT: '0',
      PARLEY_DATA_DIR: dataDir,
      PARLEY_JWT_SECRET: secret,
      PARLEY_LOG_LEVEL: 'info',
      PARLEY_DRAIN_MS: '0',
      PARLEY_MAX_BAD_FRAMES_PER_MINUTE: '1000000000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = [];
  let port = 0;
  const listening = new Promise((resolve, reject) => {
    const feed = (chunk) => {
      for (const line of chunk.toString().split('\n')) {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        const m = /"port":(\d+)[^\n]*"msg":"parley listening"/.exec(line);
        if (m && port === 0) {
          port = Number(m[1]);
          resolve();
        }
      }
    };
    proc.stdout.on('data', feed);
    proc.stderr.on('data', feed);
    proc.once('exit', (code) =>
      reject(new Error(`server exited (${code}) before listening:\n${tail.join('\n')}`)),
    );
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal)));
  await listening;
  return {
    url: `ws://127.0.0.1:${port}/v1/ws`,
    exited,
    tail: () => tail,
    stopping: false,
    async stop() {
      this.stopping = true;
      proc.kill('SIGTERM');
      const code = await exited;
      rmSync(dataDir, { recursive: true, force: true });
      if (code !== 0) console.error(`server stopped with ${code}:\n${tail.join('\n')}`);
      return code;
    },
  };
}
