#!/usr/bin/env node
// Which of Parley's source files one 1:1 send runs through, measured rather than read: starts the
// built server (`parley serve`) under the V8 inspector, sends a few warm-up messages from alice to
// bob, resets V8's precise coverage, sends one more, waits for bob's delivery and alice's reply,
// and lists every file of packages/*/ with a function that ran in between, in any process.
//
//   npm run message-path                      embedded mode (one process, SQLite)
//   npm run message-path -- --mode cluster    two cluster processes on the engines (npm run
//                                             engines:up): alice on one, bob on the other
//   --root DIR                                measure another checkout's build (same method)
//   --functions                               name the functions that ran in each file
//
// The SQLite writer thread is a worker thread the inspector session does not see: its files are
// named by the main thread's side of it. An idle window of the same length, a second after the
// send, marks the files that also run with no message at all (timers, fetch loops).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'embedded' },
    root: { type: 'string' },
    functions: { type: 'boolean', default: false },
    port: { type: 'string', default: '9400' },
  },
});
const root = resolve(values.root ?? new URL('..', import.meta.url).pathname);
const cli = join(root, 'packages/server/dist/cli.js');
const secret = 'message-path-secret-0123456789abcdef';
const base = Number(values.port);
const dataDir = mkdtempSync(join(tmpdir(), 'parley-path-'));

/** The engines' addresses, as `npm run engines:up` wrote them. */
function enginesEnv() {
  const text = readFileSync(join(new URL('..', import.meta.url).pathname, 'engines/.run/env'), 'utf8');
  return Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^[A-Z0-9_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** The server processes to start: one embedded, or two cluster members on fresh topics. */
function processEnvs() {
  const common = { PARLEY_JWT_SECRET: secret, PARLEY_LOG_LEVEL: 'warn', PARLEY_DATA_DIR: dataDir };
  if (values.mode === 'embedded')
    return [{ ...common, PARLEY_PORT: String(base), PARLEY_ADMIN_PORT: String(base + 100) }];
  const e = enginesEnv();
  const tag = `path${Date.now().toString(36)}`;
  execFileSync(
    process.execPath,
    [
      cli,
      'migrate-cluster',
      '--cassandra',
      e.PARLEY_TEST_CASSANDRA,
      '--cassandra-dc',
      e.PARLEY_TEST_CASSANDRA_DC,
      '--keyspace',
      tag,
      '--replication-factor',
      '1',
      '--kafka',
      e.PARLEY_TEST_KAFKA,
      '--partitions',
      '4',
      '--topic-prefix',
      `${tag}.`,
    ],
    { stdio: 'inherit' },
  );
  return [1, 2].map((i) => ({
    ...common,
    PARLEY_PORT: String(base + i),
    PARLEY_ADMIN_PORT: String(base + 100 + i),
    PARLEY_CASSANDRA: e.PARLEY_TEST_CASSANDRA,
    PARLEY_CASSANDRA_DC: e.PARLEY_TEST_CASSANDRA_DC,
    PARLEY_KEYSPACE: tag,
    PARLEY_KAFKA: e.PARLEY_TEST_KAFKA,
    PARLEY_TOPIC_PREFIX: `${tag}.`,
    PARLEY_REDIS_URL: e.PARLEY_TEST_REDIS,
  }));
}

/** Starts one server under the inspector; resolves with its process, port and inspector URL. */
function startServer(env) {
  const child = spawn(process.execPath, ['--inspect=127.0.0.1:0', cli, 'serve'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((ok, fail) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const m = /Debugger listening on (ws:\/\/\S+)/.exec(err);
      if (m)
        ok({ child, port: Number(env.PARLEY_PORT), admin: Number(env.PARLEY_ADMIN_PORT), inspector: m[1] });
    });
    child.on('exit', (code) => fail(new Error(`server exited (${code}): ${err}`)));
  });
}

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
async function inspect(url) {
  const ws = new WebSocket(url);
  await new Promise((ok, fail) => ws.once('open', ok).once('error', fail));
  let next = 0;
  const waiting = new Map();
  ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    if (m.id !== undefined) waiting.get(m.id)?.(m);
  });
  const call = (method, params = {}) =>
    new Promise((ok, fail) => {
      const id = ++next;
      waiting.set(id, (m) => (m.error ? fail(new Error(m.error.message)) : ok(m.result)));
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { call, close: () => ws.close() };
}

async function waitReady(admin) {
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`http://127.0.0.1:${admin}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server on admin port ${admin} never ready`);
}

/** A connected client: `expect(pred)` resolves with the next frame matching `pred`. */
async function client(port, user) {
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
    .sign(new TextEncoder().encode(secret));
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`);
  const waiters = [];
  ws.on('message', (data) => {
    const f = JSON.parse(String(data));
    const i = waiters.findIndex((w) => w.pred(f));
    if (i >= 0) waiters.splice(i, 1)[0].ok(f);
  });
  await new Promise((ok, fail) => ws.once('open', ok).once('error', fail));
  const expect = (pred) => new Promise((ok) => waiters.push({ pred, ok }));
  const connected = expect((f) => f.type === 'reply' && f.id === 'c');
  ws.send(JSON.stringify({ type: 'connect', id: 'c', token, device: `${user}-1`, client: 'message-path' }));
  const reply = await connected;
  if (!reply.ok) throw new Error(`${user} not connected: ${JSON.stringify(reply)}`);
  return { ws, expect };
}

/** Sends one message from alice to bob; resolves once bob has it and alice has her reply. */
async function sendOne(alice, bob, n) {
  const body = `message ${n}`;
  const delivered = bob.expect((f) => f.type === 'message' && f.body === body);
  const replied = alice.expect((f) => f.type === 'reply' && f.id === `s${n}`);
  alice.ws.send(
    JSON.stringify({
      type: 'send',
      id: `s${n}`,
      conv: 'dm:alice:bob',
      cmid: `cmid-${n}`,
      kind: 'text',
      body,
    }),
  );
  const [reply] = await Promise.all([replied, delivered]);
  if (!reply.ok) throw new Error(`send ${n} refused: ${JSON.stringify(reply)}`);
}

/** The project's files with a function that ran since the last take (any process), and those functions. */
async function takeFiles(sessions) {
  const files = new Map();
  for (const s of sessions) {
    const { result } = await s.call('Profiler.takePreciseCoverage');
    for (const script of result) {
      if (!script.url.startsWith('file://')) continue;
      const path = relative(root, new URL(script.url).pathname);
      if (!path.startsWith('packages/') || path.includes('node_modules')) continue;
      const ran = script.functions
        .filter((f) => f.ranges[0].count > 0)
        .map((f) => f.functionName || '(anonymous)');
      if (ran.length === 0) continue;
      const file = path.replace('/dist/', '/src/').replace(/\.js$/, '.ts');
      files.set(file, [...(files.get(file) ?? []), ...ran]);
    }
  }
  return files;
}

const servers = [];
try {
  for (const env of processEnvs()) servers.push(await startServer(env));
  const sessions = await Promise.all(servers.map((s) => inspect(s.inspector)));
  for (const s of sessions) {
    await s.call('Runtime.runIfWaitingForDebugger');
    await s.call('Profiler.enable');
    await s.call('Profiler.startPreciseCoverage', { callCount: true, detailed: false });
  }
  await Promise.all(servers.map((s) => waitReady(s.admin)));
  const alice = await client(servers[0].port, 'alice');
  const bob = await client(servers.at(-1).port, 'bob');
  for (let n = 1; n <= 5; n++) await sendOne(alice, bob, n);
  await new Promise((r) => setTimeout(r, 500));
  await takeFiles(sessions);
  const started = performance.now();
  await sendOne(alice, bob, 6);
  const ms = performance.now() - started;
  const onPath = await takeFiles(sessions);
  await new Promise((r) => setTimeout(r, 1000));
  await takeFiles(sessions);
  await new Promise((r) => setTimeout(r, Math.max(ms, 50)));
  const idle = await takeFiles(sessions);
  const sorted = [...onPath.keys()].sort();
  console.log(
    `# one 1:1 send, ${values.mode} mode (${servers.length} process${servers.length > 1 ? 'es' : ''}), ${ms.toFixed(1)} ms`,
  );
  for (const f of sorted) {
    console.log(`${f}${idle.has(f) ? '   (also runs idle)' : ''}`);
    if (values.functions) console.log(`    ${[...new Set(onPath.get(f))].join(', ')}`);
  }
  const quiet = sorted.filter((f) => !idle.has(f));
  console.log(`files: ${sorted.length} (${quiet.length} not running idle)`);
  alice.ws.close();
  bob.ws.close();
  for (const s of sessions) s.close();
} finally {
  for (const s of servers) s.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  rmSync(dataDir, { recursive: true, force: true });
}
