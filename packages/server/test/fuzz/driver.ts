/**
 * Drives fuzzed frames ({@link fuzzFrame}) into a running server over real WebSockets and checks
 * that every frame gets the answer the protocol promises: one reply with the frame's id when the
 * id is readable, an id-less error when it is not, nothing for a valid id-less frame, or a close
 * with a protocol close code. Used by the fuzz tests (100,000 frames) and `npm run fuzz` (millions).
 *
 * @module
 */

import { isUtf8 } from 'node:buffer';
import { CloseCode, DEFAULT_LIMITS, ERROR_CODES, type Limits, parseClientFrame } from '@parley/protocol';
import WebSocket from 'ws';
import { type FuzzContext, type FuzzFrame, fuzzFrame } from './frames.js';

/** What the server must do with one frame, as the protocol and Parley's decisions say. */
export type Expectation =
  | { kind: 'reply'; id: string; invalid: boolean; revokes?: string }
  | { kind: 'idless-error' }
  | { kind: 'none'; revokes?: string }
  | { kind: 'close' };

/**
 * The oracle: what the server must answer to a frame. It runs the frame through the same steps as
 * the gateway (size, binary, UTF-8, then `parseClientFrame`), on the text the server will decode.
 */
export function expectationOf(frame: FuzzFrame, limits: Limits): Expectation {
  // Over the limit: 1008; over twice the limit the WebSocket layer cuts it off with 1009.
  if (frame.bytes.length > limits.maxFrameBytes) return { kind: 'close' };
  if (frame.binary) return { kind: 'idless-error' };
  if (!isUtf8(frame.bytes)) return { kind: 'close' }; // 1007
  const r = parseClientFrame(Buffer.from(frame.bytes).toString('utf8'), limits);
  if (!r.ok)
    return r.id === undefined ? { kind: 'idless-error' } : { kind: 'reply', id: r.id, invalid: true };
  // A valid `revoke_device` may name the sender's own device (mutations pick it): the server
  // then closes that connection with 4401 and refuses its token, as it must.
  const revokes = r.frame.type === 'revoke_device' ? { revokes: r.frame.device } : {};
  return r.frame.id === undefined
    ? { kind: 'none', ...revokes }
    : { kind: 'reply', id: r.frame.id, invalid: false, ...revokes };
}

/** Close codes a fuzzing client may be closed with; anything else (1006, 1011, …) is a failure. */
export const PROTOCOL_CLOSES: ReadonlySet<number> = new Set([
  1007,
  CloseCode.Policy,
  CloseCode.MessageTooBig,
  CloseCode.TryAgainLater,
  CloseCode.ProtocolAbuse,
]);

/** Further closes a lane that never authenticated may get (its `connect` frames are fuzzed too). */
const ANONYMOUS_CLOSES: ReadonlySet<number> = new Set([
  CloseCode.TokenInvalid,
  CloseCode.ConnectTimeout,
  CloseCode.Replaced,
  CloseCode.TooManyConnections,
]);

export interface FuzzOptions {
  url: string;
  seed: number;
  frames: number;
  /** Authenticated connections, each as its own user (`fuzz-<n>`), plus `anonymous` unauthenticated ones. */
  lanes: number;
  anonymousLanes?: number;
  /** Frames in flight per connection. Default 64. */
  window?: number;
  limits?: Limits;
  /** A group id the lanes' frames name (any id works; a real one reaches deeper into the server). */
  group?: string;
  token(user: string, device: string): Promise<string>;
  /** Called every `progressMs` (default 5 s) with the frames sent so far. */
  onProgress?(sent: number, report: FuzzReport): void;
  progressMs?: number;
  /** How long to wait for the last answers. Default 15 s. */
  drainMs?: number;
}

/** The result of a run: answers counted by outcome, and every broken promise found. */
export interface FuzzReport {
  seed: number;
  sent: number;
  outcomes: Record<string, number>;
  closes: Record<string, number>;
  /** At most 50 are kept; `violationCount` counts them all. */
  violations: string[];
  violationCount: number;
  /** Handshakes the server refused (it limits new sockets per address); they were retried. */
  refusedHandshakes: number;
  elapsedMs: number;
}

interface Pending {
  frame: FuzzFrame;
  invalid: boolean;
}

/** One WebSocket connection of a lane, with what it still owes. */
class Conn {
  readonly byId = new Map<string, Pending>();
  readonly idless: FuzzFrame[] = [];
  closeCode: number | null = null;
  /** Set when the driver itself closes the connection at the end of a run. */
  closingByUs = false;
  /** Set once this connection sent a valid `revoke_device` naming its own device: 4401 is due. */
  revokedOwnDevice = false;
  private waiters: (() => void)[] = [];

  constructor(
    readonly ws: WebSocket,
    private readonly run: Run,
    private readonly allowedCloses: (code: number) => boolean,
  ) {
    ws.on('message', (data) => this.onMessage(data.toString()));
    ws.on('close', (code) => this.onClose(code));
    ws.on('error', () => {}); // a close follows; its code is what is checked
  }

  get inFlight(): number {
    return this.byId.size + this.idless.length;
  }

  /** Resolves on the next reply or close. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private onMessage(text: string): void {
    let f: { type?: unknown; id?: unknown; ok?: unknown; error?: { code?: unknown } };
    try {
      f = JSON.parse(text);
    } catch {
      this.run.violation(`server sent invalid JSON: ${text.slice(0, 200)}`);
      return;
    }
    if (f.type !== 'reply') return; // events (messages to self, receipts, presence) are not checked
    if (f.ok !== true && !(f.ok === false && ERROR_CODES.includes(f.error?.code as never))) {
      this.run.violation(`malformed reply: ${text.slice(0, 200)}`);
    }
    const outcome = f.ok === true ? 'reply ok' : `reply ${String(f.error?.code)}`;
    if (typeof f.id === 'string') {
      const p = this.byId.get(f.id);
      if (p === undefined) this.run.violation(`reply to an id with nothing pending: ${text.slice(0, 200)}`);
      else {
        this.byId.delete(f.id);
        if (p.invalid && f.ok === true)
          this.run.violation(`${this.run.where(p.frame)}: invalid frame accepted`);
        this.run.count(outcome);
      }
    } else {
      const frame = this.idless.shift();
      if (frame === undefined)
        this.run.violation(`id-less reply with nothing pending: ${text.slice(0, 200)}`);
      else if (f.ok !== false) this.run.violation(`${this.run.where(frame)}: id-less reply is not an error`);
      else this.run.count('id-less error');
    }
    this.notify();
  }

  private onClose(code: number): void {
    this.closeCode = code;
    this.run.closes[code] = (this.run.closes[code] ?? 0) + 1;
    const owed = [...this.byId.values()].map((p) => p.frame).concat(this.idless);
    const revoked = this.revokedOwnDevice && code === CloseCode.TokenInvalid;
    if (!this.closingByUs && !revoked && !this.allowedCloses(code)) {
      const last = owed.at(-1);
      this.run.violation(`closed with ${code}${last ? ` after ${this.run.where(last)}` : ''}`);
    }
    for (let i = 0; i < owed.length; i++) this.run.count(`closed (${code})`);
    this.byId.clear();
    this.idless.length = 0;
    this.notify();
  }
}

/** The shared state of one fuzzing run. */
class Run {
  next = 0;
  readonly outcomes: Record<string, number> = {};
  readonly closes: Record<string, number> = {};
  readonly violations: string[] = [];
  violationCount = 0;
  refusedHandshakes = 0;

  constructor(readonly o: FuzzOptions) {}

  count(outcome: string): void {
    this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + 1;
  }

  violation(what: string): void {
    this.violationCount++;
    if (this.violations.length < 50) this.violations.push(what);
  }

  /** How to find a frame again: the seed, its index and what was done to it. */
  where(f: FuzzFrame): string {
    const shown = Buffer.from(f.bytes).toString('utf8').slice(0, 160);
    return `seed ${this.o.seed} frame ${f.index} [${f.mutations.join('; ')}] ${JSON.stringify(shown)}`;
  }
}

/**
 * Opens a connection and, for an authenticated lane, completes `connect` as ctx.user/ctx.device.
 * A refused handshake (the server limits new sockets per address) is retried with backoff. After
 * the lane revoked its own device, it signs in again as a user would: a token issued after the
 * revocation (tokens carry whole seconds, so from the next second on).
 */
async function open(run: Run, ctx: FuzzContext, anonymous: boolean, signInAgain = false): Promise<Conn> {
  const allowed = (code: number) => PROTOCOL_CLOSES.has(code) || (anonymous && ANONYMOUS_CLOSES.has(code));
  for (let attempt = 0; ; attempt++) {
    try {
      if (signInAgain) {
        await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 10));
        ctx.token = await run.o.token(ctx.user, ctx.device);
        signInAgain = false;
      }
      const ws = await handshake(run.o.url);
      if (!anonymous) await connect(ws, ctx);
      return new Conn(ws, run, allowed);
    } catch (err) {
      if (attempt >= 20) throw err;
      if (String(err).includes('revoked')) signInAgain = true;
      else run.refusedHandshakes++;
      await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
    }
  }
}

function handshake(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url, ['parley.v1.json']);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Sends `connect` and waits for its successful reply (the first frame the server sends). */
async function connect(ws: WebSocket, ctx: FuzzContext): Promise<void> {
  const reply = new Promise<string>((resolve, reject) => {
    ws.once('message', (d) => resolve(d.toString()));
    ws.once('close', (code) => reject(new Error(`closed with ${code} during connect`)));
  });
  ws.send(JSON.stringify({ type: 'connect', id: 'connect', token: ctx.token, device: ctx.device }));
  const text = await reply;
  if (!text.includes('"ok":true')) throw new Error(`connect failed: ${text}`);
}

/** Sends frames from the shared counter until none are left, keeping `window` in flight. */
async function lane(run: Run, ctx: FuzzContext, anonymous: boolean): Promise<void> {
  const window = run.o.window ?? 64;
  const limits = run.o.limits ?? DEFAULT_LIMITS;
  let conn = await open(run, ctx, anonymous);
  while (run.next < run.o.frames) {
    const frame = fuzzFrame(run.o.seed, run.next++, ctx);
    const exp = expectationOf(frame, limits);
    // Wait for a free slot and for an earlier frame with the same id (mutations can collide).
    while (
      conn.closeCode === null &&
      (conn.inFlight >= window || (exp.kind === 'reply' && conn.byId.has(exp.id)))
    ) {
      await conn.changed();
    }
    if (conn.closeCode !== null) conn = await open(run, ctx, anonymous, conn.revokedOwnDevice);
    if ((exp.kind === 'reply' || exp.kind === 'none') && exp.revokes === ctx.device)
      conn.revokedOwnDevice = true;
    if (exp.kind === 'reply') conn.byId.set(exp.id, { frame, invalid: exp.invalid });
    else if (exp.kind === 'idless-error') conn.idless.push(frame);
    else run.count(exp.kind === 'none' ? 'no reply due' : 'close due');
    conn.ws.send(frame.bytes, { binary: frame.binary }, () => {});
    if (exp.kind === 'close') await closeOf(run, conn, frame);
  }
  await drain(run, conn);
}

/** Waits for the close a frame must cause; a connection left open is a violation. */
async function closeOf(run: Run, conn: Conn, frame: FuzzFrame): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (conn.closeCode === null && Date.now() < deadline) {
    await Promise.race([conn.changed(), new Promise((r) => setTimeout(r, 100))]);
  }
  if (conn.closeCode === null) {
    run.violation(`${run.where(frame)}: connection not closed`);
    conn.ws.terminate();
  }
}

/** Waits for a connection's last answers; whatever is still owed then is unanswered. */
async function drain(run: Run, conn: Conn): Promise<void> {
  const deadline = Date.now() + (run.o.drainMs ?? 15_000);
  while (conn.closeCode === null && conn.inFlight > 0 && Date.now() < deadline) {
    await Promise.race([conn.changed(), new Promise((r) => setTimeout(r, 100))]);
  }
  for (const p of conn.byId.values()) run.violation(`${run.where(p.frame)}: no reply`);
  for (const f of conn.idless) run.violation(`${run.where(f)}: no id-less error reply`);
  conn.closingByUs = true;
  conn.ws.close(1000);
}

/** Runs a fuzzing session against `o.url` and reports every outcome and violation. */
export async function fuzzServer(o: FuzzOptions): Promise<FuzzReport> {
  const run = new Run(o);
  const started = Date.now();
  const limits = o.limits ?? DEFAULT_LIMITS;
  const report = (): FuzzReport => ({
    seed: o.seed,
    sent: run.next,
    outcomes: { ...run.outcomes },
    closes: { ...run.closes },
    violations: [...run.violations],
    violationCount: run.violationCount,
    refusedHandshakes: run.refusedHandshakes,
    elapsedMs: Date.now() - started,
  });
  const ticker = o.onProgress && setInterval(() => o.onProgress!(run.next, report()), o.progressMs ?? 5000);
  const context = async (user: string, anonymous: boolean): Promise<FuzzContext> => ({
    user,
    device: 'fuzz',
    peer: 'fuzz-peer',
    group: o.group ?? 'g:fuzz',
    token: anonymous ? 'not.a.token' : await o.token(user, 'fuzz'),
    maxFrameBytes: limits.maxFrameBytes,
  });
  try {
    const lanes: Promise<void>[] = [];
    for (let i = 0; i < o.lanes; i++)
      lanes.push(context(`fuzz-${i}`, false).then((c) => lane(run, c, false)));
    for (let i = 0; i < (o.anonymousLanes ?? 0); i++) {
      lanes.push(context(`fuzz-anon-${i}`, true).then((c) => lane(run, c, true)));
    }
    await Promise.all(lanes);
  } finally {
    if (ticker) clearInterval(ticker);
  }
  return report();
}

/**
 * After a run: a fresh pair of clients can still connect, send and receive live. Throws with
 * what failed otherwise.
 */
export async function checkHealth(url: string, token: FuzzOptions['token']): Promise<void> {
  const users = ['health-a', 'health-b'];
  const socks = await Promise.all(
    users.map(async (u) => {
      const ws = new WebSocket(url, ['parley.v1.json']);
      const frames: Record<string, unknown>[] = [];
      ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      ws.send(JSON.stringify({ type: 'connect', id: 'c', token: await token(u, 'h'), device: 'h' }));
      return { ws, frames };
    }),
  );
  const [a, b] = socks as [(typeof socks)[0], (typeof socks)[0]];
  const body = `healthy ${Date.now()}`;
  const waitFor = async (
    frames: Record<string, unknown>[],
    pred: (f: Record<string, unknown>) => boolean,
  ) => {
    const deadline = Date.now() + 10_000;
    while (!frames.some(pred)) {
      if (Date.now() > deadline)
        throw new Error(`server unhealthy: no answer; got ${JSON.stringify(frames)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await waitFor(a.frames, (f) => f.id === 'c' && f.ok === true);
  await waitFor(b.frames, (f) => f.id === 'c' && f.ok === true);
  a.ws.send(
    JSON.stringify({ type: 'send', id: 's', conv: 'dm:health-a:health-b', cmid: body, kind: 'text', body }),
  );
  await waitFor(a.frames, (f) => f.id === 's' && f.ok === true);
  await waitFor(b.frames, (f) => f.type === 'message' && f.body === body);
  for (const s of socks) s.ws.close();
}
