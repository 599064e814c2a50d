/**
 * The open-loop scheduler. Message i is due at `startAt + i / rate`, fixed before the run starts:
 * a slow reply, a stalled socket or a busy event loop never delays the schedule, it only makes the
 * next tick send a burst of overdue messages, each still stamped with its own intended time. So
 * latency measured against the intended time includes any queueing the system caused, which is
 * what avoids coordinated omission (a closed-loop client would quietly send less when the server
 * is slow, and its latencies would look better than what users see).
 * @module
 */
import { epochNow } from './clock.js';

/** Timing of an open-loop run. */
export interface Schedule {
  /** Messages per second (this process's share). */
  rate: number;
  /** Clock time of message 0. */
  startAt: number;
  /** Clock time after which nothing more is sent. */
  endAt: number;
}

/**
 * Calls `send(i, intendedTime)` for every message of the schedule when it falls due, and reports
 * how late each call was against its intended time (the generator's own lag, a health check of
 * the load process). Resolves when the schedule is over.
 */
export function runSchedule(
  s: Schedule,
  send: (i: number, intended: number) => void,
  onLag: (ms: number) => void,
): Promise<void> {
  const interval = 1000 / s.rate;
  return new Promise((resolve) => {
    if (!(s.rate > 0) || s.endAt <= s.startAt) {
      resolve();
      return;
    }
    let i = 0;
    const tick = (): void => {
      const now = epochNow();
      let intended = s.startAt + i * interval;
      while (intended <= now && intended < s.endAt) {
        onLag(now - intended);
        // Rounded to the microsecond, as it is written into the message: sender and receivers
        // then agree exactly on which side of the window's edge a message falls.
        send(i, Math.round(intended * 1000) / 1000);
        i++;
        intended = s.startAt + i * interval;
      }
      if (intended >= s.endAt) {
        resolve();
        return;
      }
      // Timers fire no earlier than 1 ms; overdue messages go out in one burst on the next tick.
      setTimeout(tick, Math.max(0, intended - epochNow()));
    };
    setTimeout(tick, Math.max(0, s.startAt - epochNow()));
  });
}
