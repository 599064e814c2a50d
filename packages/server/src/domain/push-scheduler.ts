import type { Logger } from '../ports/logger.js';
import type { PresencePort } from '../ports/presence.js';
import type { PushJob, PushQueue } from '../ports/push-queue.js';
import type { DeviceRegistry } from './devices.js';

/** A message whose inbox entries are stored: what may need a push for its offline recipients. */
export interface StoredMessageNotice {
  conv: string;
  seq: number;
  from: string;
  kind: string;
  /** The message's time (when it was sequenced). */
  ts: number;
  /** Recipient `users[i]` got it as inbox number `inboxes[i]`. */
  users: readonly string[];
  inboxes: readonly number[];
  /** The body, where the writer had it at hand (embedded mode); webhooks read it otherwise. */
  body?: string | undefined;
}

/**
 * Hears the messages whose inbox entries are stored (the push scheduler, the webhook publisher);
 * a promise returned holds the inbox writer's batch completion until it settles.
 */
export interface MessagesStoredListener {
  messagesStored(notices: readonly StoredMessageNotice[]): Promise<void> | undefined;
}

/** Recipients waiting to be looked at; past it new ones are skipped (and counted), not queued in memory. */
const MAX_PENDING_RECIPIENTS = 100_000;

/**
 * Decides which stored messages need a push, off the delivery path: for each recipient other than
 * the sender with a push-registered device that has no live connection, one job per device goes to
 * the durable push queue. The dispatcher checks again (liveness, registration, mute) before
 * sending, so a device that came online meanwhile gets nothing.
 *
 * A crash between the inbox commit and the queue's commit loses those pushes (never the messages:
 * the device syncs them when the app opens); a backlog past `MAX_PENDING_RECIPIENTS` is skipped
 * the same way and counted in `skipped`.
 */
export class PushScheduler implements MessagesStoredListener {
  private pending: StoredMessageNotice[] = [];
  private pendingRecipients = 0;
  private running: Promise<void> | null = null;

  constructor(
    private readonly devices: DeviceRegistry,
    private readonly presence: PresencePort,
    private readonly queue: PushQueue,
    private readonly log: Logger,
    /** Counts recipients skipped because the scheduler was too far behind. */
    private readonly skipped: (recipients: number) => void = () => {},
  ) {}

  /** Called once a batch of message entries is durable; never blocks the caller. */
  messagesStored(notices: readonly StoredMessageNotice[]): undefined {
    for (const n of notices) {
      if (this.pendingRecipients + n.users.length > MAX_PENDING_RECIPIENTS) {
        this.skipped(n.users.length);
        continue;
      }
      this.pending.push(n);
      this.pendingRecipients += n.users.length;
    }
    this.running ??= this.drain();
  }

  /** Resolves once everything handed in so far is queued (or given up). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      this.pendingRecipients = 0;
      try {
        const jobs = await this.jobsFor(batch);
        if (jobs.length > 0) await this.queue.enqueue(jobs);
      } catch (err) {
        this.log.warn({ err: String(err), messages: batch.length }, 'push jobs not queued');
      }
    }
    this.running = null;
  }

  private async jobsFor(notices: readonly StoredMessageNotice[]): Promise<PushJob[]> {
    const recipients = new Set<string>();
    for (const n of notices) for (const u of n.users) if (u !== n.from) recipients.add(u);
    if (recipients.size === 0) return [];
    const registered = await this.devices.pushDevices([...recipients]);
    if (registered.size === 0) return [];
    const live = await this.presence.connections([...registered.keys()]);
    const jobs: PushJob[] = [];
    for (const n of notices) {
      for (let i = 0; i < n.users.length; i++) {
        const user = n.users[i]!;
        if (user === n.from) continue;
        for (const device of registered.get(user) ?? []) {
          if (live.get(user)?.has(device)) continue;
          const { conv, seq, from, kind, ts } = n;
          jobs.push({ user, device, conv, seq, from, kind, inbox: n.inboxes[i]!, ts });
        }
      }
    }
    return jobs;
  }
}
