import { ParleyError } from '../domain/errors.js';
import { Correlator } from '../util/correlator.js';

/** Anything that can post a message to the other side (a cluster worker, or `process` in a worker). */
export interface IpcEnd {
  send(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
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
 * Errors cross as ParleyError (code, message, retry and close hints).
 */
export class IpcChannel {
  private out: Envelope[] = [];
  private scheduled = false;
  private nextId = 1;
  private readonly waiting = new Correlator<number, unknown>();

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
  }

  /** Calls a method on the other side. */
  call<T>(method: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    const answer = this.waiting.wait(id) as Promise<T>;
    this.post({ t: 'call', id, m: method, a: args });
    return answer;
  }

  /** Sends a one-way message. */
  message(kind: string, ...args: unknown[]): void {
    this.post({ t: 'msg', k: kind, a: args });
  }

  /** Fails every call in flight (the other side is gone). */
  failAll(reason: string): void {
    this.waiting.settleAll({ err: new ParleyError('unavailable', reason) });
  }

  private post(env: Envelope): void {
    this.out.push(env);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.out;
      this.out = [];
      try {
        this.end.send({ parley: batch });
      } catch {
        // The channel closed; pending calls fail when the exit is noticed.
      }
    });
  }

  private receive(env: Envelope): void {
    switch (env.t) {
      case 'call':
        Promise.resolve()
          .then(() => this.handlers.call?.(env.m, env.a))
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
