import type { MessageBus } from '../../ports/message-bus.js';

/**
 * The message bus of one process (tests of the cluster stages; `--workers` has its own IPC).
 * Several instances may share one bus (`peer()`), as the processes of a deployment share Redis:
 * multi-node behaviour is tested that way in one process.
 */
export class MemoryBus implements MessageBus {
  private readonly channels: Map<string, Set<(m: string) => void>>;

  /** A new bus, or, given `shared`, another instance over `shared`'s channels. */
  constructor(shared?: MemoryBus) {
    this.channels = shared ? shared.channels : new Map();
  }

  /** Another instance over the same channels, as another process of the deployment has. */
  peer(): MemoryBus {
    return new MemoryBus(this);
  }

  async publish(channel: string, message: string): Promise<void> {
    const handlers = this.channels.get(channel);
    if (!handlers) return;
    // Delivered asynchronously, as a real bus does, but in order.
    queueMicrotask(() => {
      for (const h of handlers) h(message);
    });
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    let handlers = this.channels.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.channels.set(channel, handlers);
    }
    const wrapped = (m: string) => handler(m);
    handlers.add(wrapped);
    return async () => {
      handlers.delete(wrapped);
      if (handlers.size === 0) this.channels.delete(channel);
    };
  }
}
