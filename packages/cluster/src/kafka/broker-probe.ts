import { Kafka, logLevel } from 'kafkajs';

/** Failed probes in a row after which the brokers count as unreachable. */
const FAILURES_TO_DOWN = 2;

/**
 * Whether any broker answers: a metadata request every `intervalMs`, while publishes wait or the
 * brokers are away, over a fresh connection with short time-outs and no retries. Two failures in a row make the brokers unreachable, one success
 * reachable again. The producer's own retries take 20 s or more to give up; the probe lets a
 * publish fail at once instead, so a send answers `unavailable` promptly while Kafka is away.
 */
export class BrokerProbe {
  private readonly kafka: Kafka;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();
  /** Called once when the brokers turn unreachable (publishes waiting on them). */
  private readonly onLost = new Set<() => void>();

  constructor(
    brokers: string[],
    clientId: string,
    private readonly intervalMs = 500,
  ) {
    this.kafka = new Kafka({
      clientId: `${clientId}-probe`,
      brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1_000,
      requestTimeout: 2_000,
      retry: { retries: 0 },
    });
  }

  /** False once the last probes failed; true until then (and before the first probe). */
  get reachable(): boolean {
    return this.failures < FAILURES_TO_DOWN;
  }

  /**
   * Runs `work` unless the brokers are unreachable, and rejects with `error()` as soon as they turn
   * so if it has not settled by then (the work itself may still complete later).
   */
  async guard<T>(work: () => Promise<T>, error: () => Error): Promise<T> {
    if (!this.reachable) throw error();
    let lost!: () => void;
    const unreachable = new Promise<never>((_, reject) => {
      lost = () => reject(error());
    });
    this.onLost.add(lost);
    try {
      return await Promise.race([work(), unreachable]);
    } finally {
      this.onLost.delete(lost);
    }
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => {
      // Only while it matters: publishes are waiting, or the brokers are away (to see them back).
      // An idle process opens no connections; a publish made while the brokers are gone waits for
      // two probe periods at most.
      if (this.onLost.size === 0 && this.reachable) return;
      this.running = this.running.then(() => this.probe());
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  private async probe(): Promise<void> {
    const admin = this.kafka.admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      await admin.describeCluster();
      this.failures = 0;
    } catch {
      this.failures++;
      if (this.failures === FAILURES_TO_DOWN) for (const lost of [...this.onLost]) lost();
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
}
