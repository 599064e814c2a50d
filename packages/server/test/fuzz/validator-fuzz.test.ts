// The frame validator under 100,000 mutated frames: it never throws, and it either accepts a frame
// that passes validation again unchanged, or refuses it with one of the protocol's error codes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLIENT_OPS, ERROR_CODES, parseClientFrame, validateClientFrame } from '@parley/protocol';
import { type FuzzContext, fuzzFrame } from './frames.js';

const FRAMES = 100_000;
const SEED = Number(process.env.PARLEY_FUZZ_SEED ?? 0x5eed);

const ctx: FuzzContext = {
  user: 'fuzz-0',
  device: 'fuzz',
  peer: 'fuzz-peer',
  group: 'g:fuzz',
  token: 'eyJ.eyJ.sig',
  maxFrameBytes: 131_072,
};

/** Node 20 has String.prototype.isWellFormed; the ES2023 lib the project compiles with does not declare it. */
const isWellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** Every string in a value, at any depth. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (typeof v !== 'object' || v === null) return [];
  return Object.values(v).flatMap(strings);
}

test(`parseClientFrame on ${FRAMES} mutated frames (seed ${SEED}): never throws, always a valid answer`, () => {
  const decoder = new TextDecoder();
  const seen = { ok: 0, bad_request: 0, too_large: 0 };
  for (let i = 0; i < FRAMES; i++) {
    const frame = fuzzFrame(SEED, i, ctx);
    const where = `seed ${SEED} frame ${i} [${frame.mutations.join('; ')}]`;
    let r: ReturnType<typeof parseClientFrame>;
    try {
      r = parseClientFrame(decoder.decode(frame.bytes));
    } catch (err) {
      assert.fail(`${where}: threw ${String(err)}`);
    }
    if (r.ok) {
      seen.ok++;
      assert.ok(CLIENT_OPS.includes(r.frame.type), where);
      // The accepted frame is a fixed point of the validator, and holds well-formed strings only.
      assert.deepEqual(validateClientFrame(r.frame), r, where);
      for (const s of strings(r.frame))
        assert.ok(isWellFormed(s), `${where}: lone surrogate in ${JSON.stringify(s)}`);
    } else {
      seen[r.code]++;
      assert.ok(ERROR_CODES.includes(r.code), where);
      assert.ok(r.message.length > 0 && r.message.length < 300, `${where}: ${r.message}`);
      if (r.id !== undefined) assert.ok(r.id.length >= 1 && r.id.length <= 64, where);
    }
  }
  // The generator reaches every outcome: valid frames, malformed ones and over-limit ones.
  assert.ok(seen.ok > FRAMES / 50, JSON.stringify(seen));
  assert.ok(seen.bad_request > FRAMES / 2, JSON.stringify(seen));
  assert.ok(seen.too_large > 0, JSON.stringify(seen));
});

test('the generator is deterministic per (seed, index) and varied across indexes', () => {
  for (const i of [0, 1, 999, 54_321]) assert.deepEqual(fuzzFrame(SEED, i, ctx), fuzzFrame(SEED, i, ctx));
  const texts = new Set(
    Array.from({ length: 1000 }, (_, i) => Buffer.from(fuzzFrame(SEED, i, ctx).bytes).toString()),
  );
  assert.ok(texts.size > 900, `${texts.size} distinct frames of 1000`);
  assert.notDeepEqual(fuzzFrame(1, 7, ctx), fuzzFrame(2, 7, ctx));
});
