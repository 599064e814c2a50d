import type { MessageBus } from '@parley/server/ports/message-bus';
import { Redis } from 'ioredis';
import type { RedisClientOptions } from './redis-presence.js';

/**
 * The message bus on Redis pub/sub: one connection publishes, one subscribes (a subscribed Redis
 * connection can do nothing else). Redis delivers one publisher's messages in order, at most once.
 */
export class RedisBus implements MessageBus {
  private readonly handlers = new Map<string, Set<(m: string) => void>>();

  private constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly prefix: string,
  ) {
    sub.on('message', (channel: string, message: string) => {
      for (const h of this.handlers.get(channel) ?? []) h(message);
    });
  }

  static async open(
    url: string,
    options: { prefix?: string; redis?: RedisClientOptions } = {},
  ): Promise<RedisBus> {
    const base = { lazyConnect: true, maxRetriesPerRequest: 2, ...options.redis };
    // Publishes issued in the same turn of the event loop go out in one write.
    const pub = new Redis(url, { ...base, commandTimeout: 2_000, enableAutoPipelining: true });
    const sub = new Redis(url, base);
    await Promise.all([pub.connect(), sub.connect()]);
    return new RedisBus(pub, sub, options.prefix ?? 'parley:');
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.pub.publish(this.prefix + channel, message);
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<() => Promise<void>> {
    const name = this.prefix + channel;
    let set = this.handlers.get(name);
    if (!set) {
      set = new Set();
      this.handlers.set(name, set);
      await this.sub.subscribe(name);
    }
    const wrapped = (m: string) => handler(m);
    set.add(wrapped);
    return async () => {
      const s = this.handlers.get(name);
      if (!s?.delete(wrapped) || s.size > 0) return;
      this.handlers.delete(name);
      await this.sub.unsubscribe(name);
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
  }
}
