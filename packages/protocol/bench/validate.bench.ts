/**
 * Micro-benchmark of the client frame validator, on a realistic mix of frames: mostly `send`
 * with ~100-byte bodies, plus receipts, pings and syncs.
 *
 *   node --import tsx packages/protocol/bench/validate.bench.ts [seconds per case, default 3]
 *
 * Prints frames/s for JSON.parse alone (the floor), parse + validate (`parseClientFrame`, what
 * the server runs per frame) and validate alone (`validateClientFrame` on parsed objects), then
 * the char-loop id checks against the equivalent regexes (why the validator uses loops).
 */

import { isConvId, isUserId, USER_ID_RE } from '../src/ids.js';
import { parseClientFrame, validateClientFrame } from '../src/index.js';

const seconds = Number(process.argv[2] ?? 3);
const WARMUP_MS = 1000;

// A deterministic PRNG so every run measures the same frames.
let seed = 0x2545f491;
function rand(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x100000000;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const USERS = Array.from({ length: 200 }, (_, i) => `user${i}.${pick(['a', 'bb', 'ccc'])}`);
const GROUPS = Array.from({ length: 50 }, (_, i) => `g:01HZ${String(i).padStart(22, 'X')}`);
const WORDS = 'the quick brown fox jumps over lazy dog hello world parley message climbing café 😀 ok'.split(
  ' ',
);

function conv(): string {
  if (rand() < 0.3) return pick(GROUPS);
  const a = pick(USERS);
  const b = pick(USERS);
  return a <= b ? `dm:${a}:${b}` : `dm:${b}:${a}`;
}

function text(bytes: number): string {
  let s = '';
  while (s.length < bytes) s += `${pick(WORDS)} `;
  return s.slice(0, bytes);
}

function cmid(): string {
  const h = () =>
    Math.floor(rand() * 0x10000)
      .toString(16)
      .padStart(4, '0');
  return `${h()}${h()}-${h()}-7${h().slice(1)}-${h()}-${h()}${h()}${h()}`;
}

let reqId = 0;
function frame(): object {
  const r = rand();
  const id = `c${++reqId}`;
  if (r < 0.8) {
    const f: Record<string, unknown> = {
      type: 'send',
      id,
      conv: conv(),
      cmid: cmid(),
      kind: 'text',
      body: text(80 + Math.floor(rand() * 40)),
    };
    if (rand() < 0.1) f.reply_to = 1 + Math.floor(rand() * 5000);
    return f;
  }
  if (r < 0.9)
    return {
      type: 'receipt',
      conv: conv(),
      kind: rand() < 0.5 ? 'delivered' : 'read',
      seq: 1 + Math.floor(rand() * 5000),
    };
  if (r < 0.95) return rand() < 0.5 ? { type: 'ping', id } : { type: 'ping' };
  return { type: 'sync', id, after: Math.floor(rand() * 100000), limit: 500 };
}

const N = 10_000;
const TEXTS = Array.from({ length: N }, () => JSON.stringify(frame()));
const OBJECTS = TEXTS.map((t) => JSON.parse(t) as unknown);
const avgBytes = TEXTS.reduce((n, t) => n + Buffer.byteLength(t), 0) / N;

// Every frame of the mix must be valid, or the benchmark measures the error path.
for (const t of TEXTS) {
  const r = parseClientFrame(t);
  if (!r.ok) throw new Error(`invalid frame in the mix: ${r.message}: ${t}`);
}

let sink = 0;

/**
 * Times `pass` (one pass over `count` items, with its own monomorphic loop, so the cases do not
 * share a megamorphic call site) for `ms` milliseconds; returns items per second.
 */
function time(pass: () => number, count: number, ms: number): number {
  let items = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    sink += pass();
    items += count;
    now = performance.now();
  }
  return (items / (now - start)) * 1000;
}

function report(name: string, perSec: number): void {
  const nsPer = 1e9 / perSec;
  console.log(
    `${name.padEnd(42)} ${(perSec / 1e6).toFixed(2).padStart(6)} M/s ${nsPer.toFixed(0).padStart(6)} ns each`,
  );
}

/** Warms every case up, then measures each for ms (in rounds, interleaved), reporting the best round. */
function suite(cases: [string, () => number, number][], ms: number, rounds: number): void {
  for (const [, pass, count] of cases) time(pass, count, WARMUP_MS / cases.length);
  const best = cases.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < cases.length; i++) {
      const [, pass, count] = cases[i]!;
      best[i] = Math.max(best[i]!, time(pass, count, ms / rounds));
    }
  }
  for (let i = 0; i < cases.length; i++) report(cases[i]![0], best[i]!);
}

console.log(
  `node ${process.version}, ${N} frames (80% send ~100 B body, 10% receipt, 5% ping, 5% sync), ` +
    `avg ${avgBytes.toFixed(0)} B/frame, ${seconds} s per case after ${WARMUP_MS} ms warm-up, best of 3 rounds\n`,
);

function passJsonParse(): number {
  let n = 0;
  for (let i = 0; i < TEXTS.length; i++) if (JSON.parse(TEXTS[i]!) !== null) n++;
  return n;
}
function passParseValidate(): number {
  let n = 0;
  for (let i = 0; i < TEXTS.length; i++) if (parseClientFrame(TEXTS[i]!).ok) n++;
  return n;
}
function passValidate(): number {
  let n = 0;
  for (let i = 0; i < OBJECTS.length; i++) if (validateClientFrame(OBJECTS[i]).ok) n++;
  return n;
}

const ms = seconds * 1000;
suite(
  [
    ['JSON.parse only (floor)', passJsonParse, N],
    ['parse + validate (parseClientFrame)', passParseValidate, N],
    ['validate only (validateClientFrame)', passValidate, N],
  ],
  ms,
  3,
);

console.log('\nid checks, char loop vs regex:');
// Through JSON, so the strings are flat like those of real frames (not concatenation ropes).
const IDS = JSON.parse(JSON.stringify(Array.from({ length: N }, () => pick(USERS)))) as string[];
const CONVS = JSON.parse(JSON.stringify(Array.from({ length: N }, conv))) as string[];
const DM_RE = /^dm:([A-Za-z0-9_.-]{1,64}):([A-Za-z0-9_.-]{1,64})$/;
const GROUP_RE = /^g:[A-Za-z0-9_-]{1,64}$/;

function passIdLoop(): number {
  let n = 0;
  for (let i = 0; i < IDS.length; i++) if (isUserId(IDS[i])) n++;
  return n;
}
function passIdRegex(): number {
  let n = 0;
  for (let i = 0; i < IDS.length; i++) if (USER_ID_RE.test(IDS[i]!)) n++;
  return n;
}
function passConvLoop(): number {
  let n = 0;
  for (let i = 0; i < CONVS.length; i++) if (isConvId(CONVS[i])) n++;
  return n;
}
function passConvRegex(): number {
  let n = 0;
  for (let i = 0; i < CONVS.length; i++) {
    const c = CONVS[i]!;
    if (GROUP_RE.test(c)) {
      n++;
      continue;
    }
    const m = DM_RE.exec(c);
    if (m !== null && m[1]! <= m[2]!) n++;
  }
  return n;
}

suite(
  [
    ['isUserId (char loop)', passIdLoop, N],
    ['USER_ID_RE.test (regex)', passIdRegex, N],
    ['isConvId (char loop, in-place sort check)', passConvLoop, N],
    ['conv id by regexes + capture compare', passConvRegex, N],
  ],
  Math.max(1500, ms / 2),
  3,
);

if (sink === -1) console.log('unreachable; keeps the results alive');
