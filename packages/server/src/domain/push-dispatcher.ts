import type { PushPlatform } from '@parley/protocol';
import { monotonicFactory } from 'ulid';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { PresencePort } from '../ports/presence.js';
import type { PushProvider, PushRegistration, PushResult } from '../ports/push-provider.js';
import type {
  DeadLetter,
  PushDeadLetters,
  PushJob,
  PushQueue,
  PushQueueSubscription,
  SettledEarly,
} from '../ports/push-queue.js';
import type { UserStore } from '../ports/user-store.js';
import { abortableSleep } from './abortable-sleep.js';
import type { DeviceRegistry } from './devices.js';

/** What the dispatcher reports, for metrics (each call counts one notification). */
export interface PushObserver {
  sent(platform: PushPlatform): void;
  failed(platform: PushPlatform, reason: string): void;
  retried(platform: PushPlatform): void;
  deadLettered(platform: PushPlatform): void;
  /** A registration the provider reported dead was deleted. */
  removed(platform: PushPlatform): void;
  /** A job that needed no push: the device is online, unregistered, muted, or has no provider here. */
  skipped(reason: 'online' | 'unregistered' | 'muted' | 'no_provider'): void;
  /** From a message's storing to its notification's first send attempt, in seconds. */
  lag(seconds: number): void;
}

/** How the dispatcher paces, retries and shapes notifications; every field has a default. */
export interface PushDispatcherOptions {
  /**
   * One notification per device and conversation per window (ms, default 3,000): the first job of
   * a burst is sent at once, later ones wait for the window's end and go as one, with the newest
   * message (providers replace notifications with the same collapse id anyway).
   */
  burstMs?: number;
  /** Retries after the first attempt for `retry` results (default 4). */
  retries?: number;
  /** Backoff before retry n: up to base·2ⁿ (full jitter), at most `retryMaxMs` (defaults 500, 8,000). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A `Retry-After` longer than this dead-letters the job instead of holding it (default 30,000). */
  maxRetryWaitMs?: number;
  /** How long the provider keeps a notification for an unreachable device (default one day). */
  ttlSeconds?: number;
}

export interface PushDispatcherDeps {
  queue: PushQueue;
  deadLetters: PushDeadLetters;
  devices: DeviceRegistry;
  users: Pick<UserStore, 'mutes'>;
  presence: PresencePort;
  providers: readonly PushProvider[];
  /** The user's badge: their unread messages. */
  unread: (user: string) => Promise<number>;
  clock: Clock;
  log: Logger;
  observer: PushObserver;
}

/** Send-window entries remembered (per device and conversation): the oldest are forgotten first. */
const MAX_WINDOWS = 100_000;

/** Dead-letter ids: sortable, increasing within this process. */
const letterId = monotonicFactory();

/**
 * Takes jobs from the push queue and sends them: one notification per device and conversation
 * burst, never to a device that is live, unregistered or muted the conversation; retries with
 * backoff and jitter, deleting registrations a provider reports dead and dead-lettering what
 * cannot be sent. A batch leaves the queue only when every job in it is settled, so a crash sends
 * the unsettled ones again after restart (the collapse id makes a repeat replace the first).
 */
export class PushDispatcher {
  private readonly byPlatform = new Map<PushPlatform, PushProvider>();
  /** `user device conv` → when its last notification was sent. */
  private readonly lastSent = new Map<string, number>();
  /** `user device conv` → the job waiting for its window's end, and when it is settled. */
  private readonly waiting = new Map<string, { job: PushJob; done: Promise<void> }>();
  private readonly stopping = new AbortController();
  private subscription: PushQueueSubscription | null = null;
  private readonly o: Required<PushDispatcherOptions>;

  constructor(
    private readonly d: PushDispatcherDeps,
    options: PushDispatcherOptions = {},
  ) {
    for (const p of d.providers) for (const platform of p.platforms) this.byPlatform.set(platform, p);
    this.o = {
      burstMs: options.burstMs ?? 3_000,
      retries: options.retries ?? 4,
      retryBaseMs: options.retryBaseMs ?? 500,
      retryMaxMs: options.retryMaxMs ?? 8_000,
      maxRetryWaitMs: options.maxRetryWaitMs ?? 30_000,
      ttlSeconds: options.ttlSeconds ?? 86_400,
    };
  }

  async start(): Promise<void> {
    this.subscription = await this.d.queue.consume((jobs, settled) => this.handle(jobs, settled));
  }

  /** Stops taking jobs; retries waiting are abandoned (their jobs stay queued for the next start). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.subscription?.close();
    await Promise.all([...this.byPlatform.values()].map((p) => p.close()));
  }

  /**
   * Settles one batch: merges it per device and conversation (newest wins), then settles each in
   * parallel, reporting each group of jobs as soon as it is settled (`settled`).
   */
  async handle(jobs: readonly PushJob[], settled: SettledEarly = () => {}): Promise<void> {
    const groups = new Map<string, PushJob[]>();
    for (const j of jobs) {
      const key = `${j.user} ${j.device} ${j.conv}`;
      const group = groups.get(key);
      if (group) group.push(j);
      else groups.set(key, [j]);
    }
    const users = [...new Set(jobs.map((j) => j.user))];
    const [live, registrations] = await Promise.all([
      this.d.presence.connections(users),
      this.d.devices.registrations(users),
    ]);
    await Promise.all(
      [...groups].map(async ([key, group]) => {
        const job = group.reduce((a, b) => (b.inbox > a.inbox ? b : a));
        const registration = registrations.get(job.user)?.get(job.device);
        await this.settle(key, job, live.get(job.user)?.has(job.device) ?? false, registration);
        if (!this.stopping.signal.aborted) settled(group);
      }),
    );
    if (this.stopping.signal.aborted) throw new Error('push dispatcher stopped: batch left queued');
  }

  private async settle(key: string, job: PushJob, live: boolean, registration: PushRegistration | undefined) {
    if (live) return this.d.observer.skipped('online');
    if (!registration) return this.d.observer.skipped('unregistered');
    const provider = this.byPlatform.get(registration.platform);
    if (!provider) return this.d.observer.skipped('no_provider');
    const until = (await this.d.users.mutes(job.user, [job.conv])).get(job.conv);
    if (until !== undefined && until > this.d.clock.now()) return this.d.observer.skipped('muted');
    // A job of a burst already waiting for the window's end: this one rides with it (the newest wins).
    const waiting = this.waiting.get(key);
    if (waiting) {
      if (job.inbox > waiting.job.inbox) waiting.job = job;
      return waiting.done;
    }
    const wait = this.windowLeft(key);
    if (wait <= 0) return this.send(key, job, provider, registration);
    const entry = { job, done: Promise.resolve() };
    entry.done = this.sleep(wait).then(async () => {
      this.waiting.delete(key);
      if (!this.stopping.signal.aborted) await this.send(key, entry.job, provider, registration);
    });
    this.waiting.set(key, entry);
    return entry.done;
  }

  private async send(key: string, job: PushJob, provider: PushProvider, registration: PushRegistration) {
    // The window starts at the attempt, so jobs arriving while it is sent wait for its end.
    this.remember(key);
    this.d.observer.lag((this.d.clock.now() - job.ts) / 1000);
    const unread = await this.d.unread(job.user);
    const notification = {
      data: { conv: job.conv, seq: job.seq, from: job.from, kind: job.kind, inbox: job.inbox, unread },
      collapseKey: job.conv,
      ttlSeconds: this.o.ttlSeconds,
      urgency: 'high' as const,
    };
    await this.conclude(job, registration, await this.sendWithRetries(provider, registration, notification));
  }

  /** How long until the device's window for this conversation ends (≤ 0: it has). */
  private windowLeft(key: string): number {
    const last = this.lastSent.get(key);
    return last === undefined ? 0 : last + this.o.burstMs - this.d.clock.now();
  }

  private async sendWithRetries(
    provider: PushProvider,
    registration: PushRegistration,
    notification: Parameters<PushProvider['send']>[1],
  ): Promise<{ result: PushResult; attempts: number }> {
    for (let attempt = 0; ; attempt++) {
      const result = await provider.send(registration, notification);
      if (result.status !== 'retry' || this.stopping.signal.aborted) return { result, attempts: attempt + 1 };
      if (attempt >= this.o.retries) return { result, attempts: attempt + 1 };
      const backoff = Math.random() * Math.min(this.o.retryMaxMs, this.o.retryBaseMs * 2 ** attempt);
      const wait = Math.max(result.retryAfterMs ?? 0, backoff);
      if (wait > this.o.maxRetryWaitMs)
        return {
          result: { status: 'retry', reason: `${result.reason} (retry after ${wait} ms)` },
          attempts: attempt + 1,
        };
      this.d.observer.retried(registration.platform);
      await this.sleep(wait);
    }
  }

  private async conclude(
    job: PushJob,
    registration: PushRegistration,
    { result, attempts }: { result: PushResult; attempts: number },
  ): Promise<void> {
    const platform = registration.platform;
    switch (result.status) {
      case 'sent':
        return this.d.observer.sent(platform);
      case 'dead':
        this.d.observer.removed(platform);
        return this.d.devices.dropDeadPush(job.user, job.device, registration);
      case 'failed':
      case 'retry': {
        // A stop while retrying leaves the job queued (the batch fails), so it is not dead.
        if (this.stopping.signal.aborted) return;
        this.d.observer.failed(platform, result.reason);
        this.d.observer.deadLettered(platform);
        this.d.log.warn({ platform, reason: result.reason, attempts }, 'push dead-lettered');
        const letter: DeadLetter = {
          id: letterId(),
          job,
          platform,
          reason: result.reason,
          attempts,
          ts: this.d.clock.now(),
        };
        return this.d.deadLetters.add([letter]);
      }
    }
  }

  private remember(key: string): void {
    this.lastSent.delete(key);
    this.lastSent.set(key, this.d.clock.now());
    if (this.lastSent.size > MAX_WINDOWS) {
      const oldest = this.lastSent.keys().next().value;
      if (oldest !== undefined) this.lastSent.delete(oldest);
    }
  }

  /** Sleeps, waking early when the dispatcher stops. */
  private sleep(ms: number): Promise<void> {
    return abortableSleep(ms, this.stopping.signal);
  }
}
