/**
 * Matches answers to the requests waiting for them, by request id: the one request/reply
 * correlator of the server (the cluster's replies over the bus, the workers' calls over IPC).
 * A request may have a deadline, past which it is settled with the answer the caller chose.
 */
export class Correlator<Id, R> {
  private readonly waiting = new Map<
    Id,
    { resolve: (r: R) => void; reject: (err: unknown) => void; timer?: NodeJS.Timeout }
  >();

  /** Requests still waiting. */
  get size(): number {
    return this.waiting.size;
  }

  /** Waits for the answer to `id`; past `deadline.ms` it is `deadline.answer()` instead. */
  wait(id: Id, deadline?: { ms: number; answer: () => R }): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const entry: { resolve: (r: R) => void; reject: (err: unknown) => void; timer?: NodeJS.Timeout } = {
        resolve,
        reject,
      };
      if (deadline) {
        entry.timer = setTimeout(() => {
          this.waiting.delete(id);
          resolve(deadline.answer());
        }, deadline.ms);
      }
      this.waiting.set(id, entry);
    });
  }

  /** Answers `id`; false when nothing waits for it (answered, timed out, or unknown). */
  resolve(id: Id, answer: R): boolean {
    const w = this.take(id);
    w?.resolve(answer);
    return w !== undefined;
  }

  /** Fails `id`; false when nothing waits for it. */
  reject(id: Id, err: unknown): boolean {
    const w = this.take(id);
    w?.reject(err);
    return w !== undefined;
  }

  /** Settles everything still waiting: with `answer(id)` when given, else rejected with `err`. */
  settleAll(outcome: { answer: (id: Id) => R } | { err: unknown }): void {
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      if ('answer' in outcome) w.resolve(outcome.answer(id));
      else w.reject(outcome.err);
    }
    this.waiting.clear();
  }

  private take(id: Id) {
    const w = this.waiting.get(id);
    if (!w) return undefined;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    return w;
  }
}
