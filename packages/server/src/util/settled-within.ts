/** How long stop waits for `last_seen` writes of the sessions it ends before closing the store. */
export const LAST_SEEN_SAVE_MS = 5000;

/** Waits for `work`, at most `ms`; calls `onLate` when it took longer. */
export async function settledWithin(work: Promise<void>, ms: number, onLate: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  if ((await Promise.race([work, late])) === 'late') onLate();
  clearTimeout(timer);
}
