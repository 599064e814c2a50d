// The IPC channel between the workers and the primary (`parley serve --workers N`): the seam the
// gateway workers call the backend through (`BackendApi` proxied by `remote()` in worker.ts).
// Replies reach their own callers however many calls are in flight, a ParleyError thrown on the
// far side arrives as a ParleyError with its code and hints, anything else as `internal`, an
// unknown method rejects, and when the channel closes the calls in flight reject (`unavailable`)
// and sending on it no longer raises an 'error' event (which, unhandled, ends the process). Run
// over a pair of in-memory ends that behave as Node's IPC pipe does, and over a real child process
// (this file, forked with PARLEY_IPC_PEER set, is the far side).
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ParleyError } from '../domain/errors.js';
import { IpcChannel, type IpcEnd } from './ipc.js';

const PEER_ENV = 'PARLEY_IPC_PEER';

/**
 * One end of an in-memory IPC pipe, behaving as Node's does: messages are JSON-serialized and
 * delivered asynchronously, in order; once closed, `send` returns false and reports
 * ERR_IPC_CHANNEL_CLOSED to its callback, or, without one, as an 'error' event (thrown when nobody
 * listens, as a child process's or a cluster worker's is), and both ends emit 'disconnect'.
 */
class MemoryEnd extends EventEmitter implements IpcEnd {
  peer!: MemoryEnd;
  connected = true;
  /** IPC messages sent (one per batch). */
  sent = 0;

  send(message: unknown, callback?: (error: Error | null) => void): boolean {
    if (!this.connected) {
      const err = Object.assign(new Error('Channel closed'), { code: 'ERR_IPC_CHANNEL_CLOSED' });
      if (callback) process.nextTick(callback, err);
      else process.nextTick(() => this.emit('error', err));
      return false;
    }
    this.sent++;
    const copy: unknown = JSON.parse(JSON.stringify(message));
    const peer = this.peer;
    setImmediate(() => {
      if (peer.connected) peer.emit('message', copy);
    });
    if (callback) process.nextTick(callback, null);
    return true;
  }

  /** Closes the pipe (the other process exited): both ends emit 'disconnect'. */
  disconnect(): void {
    for (const end of [this, this.peer]) {
      if (!end.connected) continue;
      end.connected = false;
      process.nextTick(() => end.emit('disconnect'));
    }
  }
}

function memoryPipe(): [MemoryEnd, MemoryEnd] {
  const a = new MemoryEnd();
  const b = new MemoryEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The far side's methods, as both the in-memory peer and the child process serve them. */
async function serve(method: string, args: unknown[]): Promise<unknown> {
  switch (method) {
    case 'echo':
      await sleep(args[1] as number);
      return args[0];
    case 'fail':
      throw new ParleyError(
        args[0] as ParleyError['code'],
        args[1] as string,
        args[2] as number | undefined,
        args[3] as number | undefined,
      );
    case 'boom':
      throw new TypeError('a bug with a secret detail');
    case 'hang':
      return new Promise(() => {});
    default:
      // As the primary and the worker answer a method they do not serve.
      throw new Error(`unknown method ${method}`);
  }
}

/** `p` rejects with a ParleyError (the class itself) of `code`; returns it. */
async function rejection(p: Promise<unknown>, code: ParleyError['code']): Promise<ParleyError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof ParleyError, `a ParleyError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  return caught;
}

/** Calls `echo` `n` times at once, each with its own value and delay; checks each gets its own. */
async function concurrentEchoes(channel: IpcChannel, n: number, label: string): Promise<void> {
  const sent = Array.from({ length: n }, (_, i) => ({ label, i, nested: { tag: `${label}-${i}` } }));
  const got = await Promise.all(sent.map((v, i) => channel.call('echo', v, (i * 7) % 11)));
  assert.deepEqual(got, sent);
}

if (process.env[PEER_ENV] === '1') {
  // The far side, in the child process: serves `serve`, exits when told to.
  new IpcChannel(process as unknown as IpcEnd, {
    call: serve,
    message: (kind) => {
      if (kind === 'exit') process.exit(0);
    },
  });
} else {
  test('replies reach their own callers, in both directions, however many calls are in flight', async () => {
    const [a, b] = memoryPipe();
    const left = new IpcChannel(a, { call: serve });
    const right = new IpcChannel(b, { call: serve });
    await Promise.all([concurrentEchoes(left, 300, 'left'), concurrentEchoes(right, 300, 'right')]);
    // Everything posted in one tick travels as one IPC message.
    const before = a.sent;
    await Promise.all(Array.from({ length: 50 }, (_, i) => left.call('echo', i, 0)));
    assert.equal(a.sent - before, 1, 'fifty calls made in one tick: one IPC message');
  });

  test('a ParleyError thrown on the far side arrives as a ParleyError with its code and hints', async () => {
    const [a, b] = memoryPipe();
    const caller = new IpcChannel(a, {});
    new IpcChannel(b, { call: serve });
    const err = await rejection(
      caller.call('fail', 'rate_limited', 'slow down', 1_500, 4008),
      'rate_limited',
    );
    assert.equal(err.message, 'slow down');
    assert.equal(err.retryAfterMs, 1_500);
    assert.equal(err.closeCode, 4008);
    for (const code of ['forbidden', 'not_found', 'conflict', 'too_large', 'bad_request'] as const) {
      const e = await rejection(caller.call('fail', code, `because ${code}`), code);
      assert.equal(e.message, `because ${code}`);
      assert.equal(e.retryAfterMs, undefined);
    }
  });

  test('anything else thrown on the far side arrives as internal, without its details', async () => {
    const [a, b] = memoryPipe();
    const caller = new IpcChannel(a, {});
    new IpcChannel(b, { call: serve });
    const err = await rejection(caller.call('boom'), 'internal');
    assert.doesNotMatch(err.message, /secret/);
  });

  test('an unknown method rejects, whether the far side refuses it or serves no calls at all', async () => {
    const [a, b] = memoryPipe();
    const caller = new IpcChannel(a, {});
    new IpcChannel(b, { call: serve });
    await rejection(caller.call('chat.nope', 1, 2), 'internal');
    const [c, d] = memoryPipe();
    const toNobody = new IpcChannel(c, {});
    new IpcChannel(d, { message: () => {} });
    await rejection(toNobody.call('chat.send', {}), 'internal');
    // The channel still works after refusals.
    assert.equal(await caller.call('echo', 'still here', 0), 'still here');
  });

  test('calls in flight when the channel closes reject with unavailable; later calls reject at once', async () => {
    const [a, b] = memoryPipe();
    const caller = new IpcChannel(a, { call: serve });
    const far = new IpcChannel(b, { call: serve });
    const pending = [caller.call('hang'), caller.call('echo', 'late', 50), far.call('hang')];
    const rejected = Promise.all(pending.map((p) => rejection(p, 'unavailable')));
    await sleep(5); // the calls have crossed
    a.disconnect();
    await rejected;
    // Posted on a closed channel: refused at once, and no 'error' event (this test would crash).
    await rejection(caller.call('echo', 'after', 0), 'unavailable');
    caller.message('d', 'user', 'frame');
    await sleep(5);
  });

  test('a batch that cannot be sent fails the calls in it instead of raising an error event', async () => {
    const [a, b] = memoryPipe();
    const caller = new IpcChannel(a, {});
    new IpcChannel(b, { call: serve });
    // The pipe closes between the call and the flush of its batch, before 'disconnect' is seen.
    const p = caller.call('echo', 'never sent', 0);
    a.connected = false;
    await rejection(p, 'unavailable');
  });

  test('a call whose arguments cannot be serialized rejects, and the channel keeps working', async () => {
    const [a, b] = memoryPipe();
    const caller = new IpcChannel(a, {});
    new IpcChannel(b, { call: serve });
    await rejection(caller.call('echo', { n: 1n }, 0), 'internal');
    assert.equal(await caller.call('echo', 'fine', 0), 'fine');
  });

  test('failAll rejects every call in flight, and the channel takes no more', async () => {
    const [a, b] = memoryPipe();
    const caller = new IpcChannel(a, {});
    new IpcChannel(b, { call: serve });
    const p = caller.call('hang');
    caller.failAll('worker exited');
    const err = await rejection(p, 'unavailable');
    assert.equal(err.message, 'worker exited');
    await rejection(caller.call('echo', 1, 0), 'unavailable');
  });

  test('over a real child process: concurrent replies, errors, and the child exiting', async (t) => {
    const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ['--import', 'tsx', ...process.execArgv.filter((a) => a.startsWith('--conditions'))],
      env: { ...process.env, [PEER_ENV]: '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const channel = new IpcChannel(child as unknown as IpcEnd, {});
    await concurrentEchoes(channel, 200, 'child');
    const err = await rejection(channel.call('fail', 'forbidden', 'not a member of g:x'), 'forbidden');
    assert.equal(err.message, 'not a member of g:x');
    await rejection(channel.call('boom'), 'internal');
    await rejection(channel.call('chat.nope'), 'internal');

    const pending = [channel.call('hang'), channel.call('hang')];
    const rejected = Promise.all(pending.map((p) => rejection(p, 'unavailable')));
    await sleep(20);
    const exited = once(child, 'exit');
    channel.message('exit');
    await rejected;
    await exited;
    // The child is gone: calls and messages are refused without an 'error' event on the child.
    await rejection(channel.call('echo', 'after exit', 0), 'unavailable');
    channel.message('d', 'user', 'frame');
    await sleep(20);
  });
}
