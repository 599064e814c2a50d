/**
 * Sleeps for `ms`, waking at once when `signal` aborts (or has already aborted: an `abort` event
 * fires only once, so a sleep started after it would otherwise wait its whole time).
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
