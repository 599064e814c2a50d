import { ParleyError } from '../domain/errors.js';
import { Correlator } from '../util/correlator.js';

/** Anything that can post a message to the other side (a cluster worker, or `process` in a worker). */
export interface IpcEnd {
  /**
   * Posts a message. On a closed channel Node reports the failure to `callback` (without one, as an
   * 'error' event, which nobody listens to: it would end the process).
   */
  send(message: unknown, callback: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  /** The channel closed (the other process exited or disconnected). */
  on(event: 'disconnect', listener: () => void): unknown;
}

/** One RPC call or its result, or a one-way message. */
export type Envelope =
  | { t: 'call'; id: number; m: string; a: unknown[] }
  | {
      t: 'ret';
      id: number;
      v?: unknown;
      e?: { code: string; message: string; retryAfterMs?: number; closeCode?: number };
    }
  | { t: 'msg'; k: string; a: unknown[] };

/**
 * A batching message channel over Node's IPC pipe: everything posted during one tick travels as
 * one IPC message (IPC costs per message, not per byte), with request/response calls on top.
 * Errors cross as ParleyError (code, message, retry and close hints). Once the pipe closes (or
 * `failAll` says the other side is gone), calls in flight and later calls fail with `unavailable`
 * and nothing more is sent.
 */
export class IpcChannel {
  private out: Envelope[] = [];
  private scheduled = false;
  private nextId = 1;
  private readonly waiting = new Correlator<number, unknown>();
  /** Why the channel is closed; null while open. */
  private closedBecause: string | null = null;

  constructor(
    private readonly end: IpcEnd,
    private readonly handlers: {
      /** Answers a call from the other side. */
      call?: (method: string, args: unknown[]) => unknown | Promise<unknown>;
      /** Takes a one-way message. */
      message?: (kind: string, args: unknown[]) => void;
    },
  ) {
    end.on('message', (raw) => {
      const batch = raw as { parley?: Envelope[] };
      if (!Array.isArray(batch?.parley)) return;
      for (const env of batch.parley) this.receive(env);
    });
    end.on('disconnect', () => this.failAll('the other side of the IPC channel is gone'));
  }

  /** Calls a method on the other side. */
  call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (this.closedBecause !== null)
      return Promise.reject(new ParleyError('unavailable', this.closedBecause));
    const id = this.nextId++;
    const answer = this.waiting.wait(id) as Promise<T>;
    this.post({ t: 'call', id, m: method, a: args });
    return answer;
  }

  /** Sends a one-way message. */
  message(kind: string, ...args: unknown[]): void {
    this.post({ t: 'msg', k: kind, a: args });
  }

  /** Fails every call in flight, and every later one (the other side is gone). */
  failAll(reason: string): void {
    this.closedBecause ??= reason;
    this.out = [];
    this.waiting.settleAll({ err: new ParleyError('unavailable', reason) });
  }

  private post(env: Envelope): void {
    if (this.closedBecause !== null) return;
    this.out.push(env);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.out;
      this.out = [];
      if (batch.length === 0) return;
      try {
        // With a callback, a closed channel fails the calls instead of emitting an 'error' event
        // that nobody handles (in the primary, for a worker that just died: the whole server).
        this.end.send({ parley: batch }, (err) => {
          if (err) this.failAll(`the IPC channel is closed (${err.message})`);
        });
      } catch {
        // Not serializable (a value JSON cannot carry): this batch's calls fail; the channel stays.
        const err = new ParleyError('internal', 'internal error');
        for (const env of batch) if (env.t === 'call') this.waiting.reject(env.id, err);
      }
    });
  }

  private receive(env: Envelope): void {
    switch (env.t) {
      case 'call':
        Promise.resolve()
          .then(() => {
            // A side that serves no calls refuses them all, as a side refuses a method it lacks.
            if (!this.handlers.call) throw new Error(`no method ${env.m} on this side`);
            return this.handlers.call(env.m, env.a);
          })
          .then(
            (v) => this.post({ t: 'ret', id: env.id, v }),
            (err: unknown) => {
              const e = ParleyError.from(err);
              const out: Extract<Envelope, { t: 'ret' }>['e'] = { code: e.code, message: e.message };
              if (e.retryAfterMs !== undefined) out.retryAfterMs = e.retryAfterMs;
              if (e.closeCode !== undefined) out.closeCode = e.closeCode;
              this.post({ t: 'ret', id: env.id, e: out });
            },
          );
        return;
      case 'ret':
        if (env.e) {
          const { code, message, retryAfterMs, closeCode } = env.e;
          this.waiting.reject(
            env.id,
            new ParleyError(code as ParleyError['code'], message, retryAfterMs, closeCode),
          );
        } else {
          this.waiting.resolve(env.id, env.v);
        }
        return;
      case 'msg':
        this.handlers.message?.(env.k, env.a);
        return;
    }
  }
}
