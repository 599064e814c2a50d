import type { PresenceChange, PresencePort } from '@parley/server/ports/presence';
import { Redis, type RedisOptions } from 'ioredis';

/**
 * ioredis's options, less `replyMapping`: the library declares it twice with types that disagree
 * under `exactOptionalPropertyTypes`, and Parley does not use it.
 */
export type RedisClientOptions = Omit<RedisOptions, 'replyMapping'>;

/** Options of the Redis presence adapter. */
export interface RedisPresenceOptions {
  /** Prefix of every key and of the change channel (several deployments may share one Redis). */
  prefix?: string;
  /** How long a device stays online without a refresh from the process holding it, in ms. */
  ttlMs?: number;
  /** How often this process refreshes its devices and sweeps expired ones, in ms (≤ ttlMs / 3). */
  refreshMs?: number;
  /** Wall clock in ms (injectable for tests). */
  now?: () => number;
  /** ioredis options (time-outs, TLS, password, …). */
  redis?: RedisClientOptions;
  /** Told when a background refresh or sweep fails (Redis down); presence is soft state, so it only logs. */
  onError?: (err: unknown) => void;
}

// A device's field in its user's hash holds `<connection>|<expires at>|<last refresh>` (ms).
// Liveness is `expires at > now`: Redis 7.0 has no per-field TTL, so dead fields are pruned by the
// scripts themselves. The `online` flag key marks a user announced online: only the script that
// sets it announces `online`, only the one that deletes it announces `offline`, so every
// transition is published exactly once even with many processes.
const PRUNE = `
local function prune(pd, now)
  local all = redis.call('HGETALL', pd)
  local live, maxexp, lastseen = 0, 0, 0
  for i = 1, #all, 2 do
    local exp, seen = string.match(all[i + 1], '|(%d+)|(%d+)$')
    exp = tonumber(exp); seen = tonumber(seen)
    if seen > lastseen then lastseen = seen end
    if exp <= now then redis.call('HDEL', pd, all[i])
    else live = live + 1; if exp > maxexp then maxexp = exp end end
  end
  return live, maxexp, lastseen
end
local function announce(chan, user, status, ts)
  redis.call('PUBLISH', chan, '{"user":' .. cjson.encode(user) .. ',"status":"' .. status .. '","ts":' .. ts .. '}')
end
`;

/** KEYS: devices hash, online flag, expiry index. ARGV: user, device, conn, now, ttl, ts, channel, refresh. */
const CONNECT = `${PRUNE}
local pd, po, zs = KEYS[1], KEYS[2], KEYS[3]
local user, device, conn, now, ttl, ts, chan, refresh =
  ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8] == '1'
if refresh then
  local cur = redis.call('HGET', pd, device)
  if cur and string.match(cur, '^(.*)|%d+|%d+$') ~= conn then return -1 end
end
redis.call('HSET', pd, device, conn .. '|' .. (now + ttl) .. '|' .. now)
local live, maxexp = prune(pd, now)
redis.call('PEXPIRE', pd, maxexp - now + ttl)
redis.call('ZADD', zs, maxexp, user)
if redis.call('SET', po, '1', 'NX') then
  announce(chan, user, 'online', ts)
  return 1
end
return 0
`;

/** KEYS: devices hash, online flag, expiry index. ARGV: user, device, conn, now, ts, channel. */
const DISCONNECT = `${PRUNE}
local pd, po, zs = KEYS[1], KEYS[2], KEYS[3]
local user, device, conn, now, ts, chan = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local cur = redis.call('HGET', pd, device)
if not cur or string.match(cur, '^(.*)|%d+|%d+$') ~= conn then return 0 end
redis.call('HDEL', pd, device)
local live, maxexp = prune(pd, now)
if live > 0 then redis.call('ZADD', zs, maxexp, user); return 0 end
redis.call('ZREM', zs, user)
if redis.call('DEL', po) == 1 then announce(chan, user, 'offline', ts); return 1 end
return 0
`;

/** KEYS: devices hash, online flag, expiry index. ARGV: user, now, channel. Offline at the last refresh. */
const EXPIRE = `${PRUNE}
local pd, po, zs = KEYS[1], KEYS[2], KEYS[3]
local user, now, chan = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local live, maxexp, lastseen = prune(pd, now)
if live > 0 then redis.call('ZADD', zs, maxexp, user); return 0 end
redis.call('ZREM', zs, user)
if lastseen == 0 then lastseen = now end
if redis.call('DEL', po) == 1 then announce(chan, user, 'offline', lastseen); return 1 end
return 0
`;

interface PresenceCommands {
  presenceConnect(...args: (string | number)[]): Promise<number>;
  presenceDisconnect(...args: (string | number)[]): Promise<number>;
  presenceExpire(...args: (string | number)[]): Promise<number>;
}

type ScriptedRedis = Redis & PresenceCommands;

/** Users swept per round trip. */
const SWEEP_BATCH = 200;

/**
 * Deployment-wide presence in Redis (soft state: losing Redis loses no message). Each device is a
 * field with an expiry in its user's hash; the process holding the connection refreshes it every
 * `refreshMs`, so the devices of a process that died go offline within `ttlMs`: every process
 * sweeps the expiry index (a sorted set of users by their latest device expiry) and the first to
 * find a user with no live device announces it offline, with the last refresh as the last-seen
 * time. Transitions are decided by Lua scripts (atomic on the server) and published on one
 * channel that every process subscribes to, so all listeners see each user's changes once and in
 * the same order.
 *
 * Keys carry the user in a hash tag (`{user}`), so one user's keys share a Cluster slot; the
 * expiry index and the channel are one key each (a single Redis, or a Cluster's one slot for them).
 */
export class RedisPresence implements PresencePort {
  private readonly listeners: ((c: PresenceChange) => void)[] = [];
  /** Devices connected through this process: user → device → connection. */
  private readonly local = new Map<string, Map<string, string>>();
  private readonly timer: NodeJS.Timeout;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly onError: (err: unknown) => void;
  private closed = false;

  private constructor(
    private readonly redis: ScriptedRedis,
    private readonly subscriber: Redis,
    options: RedisPresenceOptions,
  ) {
    this.prefix = options.prefix ?? 'parley:';
    this.ttlMs = options.ttlMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? (() => {});
    const refreshMs = Math.min(options.refreshMs ?? 20_000, Math.floor(this.ttlMs / 3));
    this.timer = setInterval(() => void this.tick(), refreshMs);
    this.timer.unref();
  }

  /** Connects to Redis (one connection for commands, one for the change channel) and subscribes. */
  static async open(url: string, options: RedisPresenceOptions = {}): Promise<RedisPresence> {
    const redisOptions: RedisClientOptions = {
      lazyConnect: true,
      // Presence must not hold up a connect for long when Redis is away: fail the call instead.
      commandTimeout: 2_000,
      maxRetriesPerRequest: 2,
      ...options.redis,
    };
    // Commands issued in the same turn of the event loop go out in one write.
    const redis = new Redis(url, { ...redisOptions, enableAutoPipelining: true }) as ScriptedRedis;
    redis.defineCommand('presenceConnect', { numberOfKeys: 3, lua: CONNECT });
    redis.defineCommand('presenceDisconnect', { numberOfKeys: 3, lua: DISCONNECT });
    redis.defineCommand('presenceExpire', { numberOfKeys: 3, lua: EXPIRE });
    const subscriber = new Redis(url, { ...redisOptions, commandTimeout: undefined });
    await Promise.all([redis.connect(), subscriber.connect()]);
    const presence = new RedisPresence(redis, subscriber, options);
    subscriber.on('message', (_channel: string, message: string) => presence.received(message));
    await subscriber.subscribe(presence.channel);
    return presence;
  }

  async connected(user: string, device: string, connection: string, ts: number): Promise<boolean> {
    let devices = this.local.get(user);
    if (!devices) {
      devices = new Map();
      this.local.set(user, devices);
    }
    devices.set(device, connection);
    return (await this.connect(user, device, connection, ts, false)) === 1;
  }

  async disconnected(user: string, device: string, connection: string, ts: number): Promise<boolean> {
    const devices = this.local.get(user);
    if (devices?.get(device) === connection) {
      devices.delete(device);
      if (devices.size === 0) this.local.delete(user);
    }
    const k = this.keys(user);
    const r = await this.redis.presenceDisconnect(
      k.devices,
      k.online,
      k.expiry,
      user,
      device,
      connection,
      this.now(),
      ts,
      this.channel,
    );
    return r === 1;
  }

  async online(users: readonly string[]): Promise<Set<string>> {
    if (users.length === 0) return new Set();
    const pipeline = this.redis.pipeline();
    for (const u of users) pipeline.hvals(this.keys(u).devices);
    const replies = (await pipeline.exec()) ?? [];
    const now = this.now();
    const out = new Set<string>();
    replies.forEach(([err, values], i) => {
      if (err) throw err;
      if ((values as string[]).some((v) => expiresAt(v) > now)) out.add(users[i]!);
    });
    return out;
  }

  async connections(users: readonly string[]): Promise<Map<string, Map<string, string>>> {
    const out = new Map<string, Map<string, string>>();
    if (users.length === 0) return out;
    const pipeline = this.redis.pipeline();
    for (const u of users) pipeline.hgetall(this.keys(u).devices);
    const replies = (await pipeline.exec()) ?? [];
    const now = this.now();
    replies.forEach(([err, fields], i) => {
      if (err) throw err;
      const live = new Map<string, string>();
      for (const [device, value] of Object.entries(fields as Record<string, string>)) {
        if (expiresAt(value) > now)
          live.set(device, value.slice(0, value.lastIndexOf('|', value.lastIndexOf('|') - 1)));
      }
      if (live.size > 0) out.set(users[i]!, live);
    });
    return out;
  }

  onChange(listener: (change: PresenceChange) => void): void {
    this.listeners.push(listener);
  }

  /** Refreshes this process's devices and sweeps expired users once (the timer does it periodically). */
  async tick(): Promise<void> {
    if (this.closed) return;
    try {
      await this.refresh();
      await this.sweep();
    } catch (err) {
      this.onError(err);
    }
  }

  /** Stops the timer and closes both connections (the devices expire after `ttlMs`, like a crash's). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await Promise.allSettled([this.redis.quit(), this.subscriber.quit()]);
  }

  private get channel(): string {
    return `${this.prefix}presence`;
  }

  private keys(user: string): { devices: string; online: string; expiry: string } {
    return {
      devices: `${this.prefix}pd:{${user}}`,
      online: `${this.prefix}po:{${user}}`,
      expiry: `${this.prefix}presence-expiry`,
    };
  }

  private connect(user: string, device: string, conn: string, ts: number, refresh: boolean): Promise<number> {
    const k = this.keys(user);
    const now = this.now();
    return this.redis.presenceConnect(
      k.devices,
      k.online,
      k.expiry,
      user,
      device,
      conn,
      now,
      this.ttlMs,
      ts,
      this.channel,
      refresh ? '1' : '0',
    );
  }

  /**
   * Extends every local device's expiry. A device found offline (this process was stalled past the
   * TTL and swept) comes back online; one taken over by a newer connection elsewhere is dropped.
   */
  private async refresh(): Promise<void> {
    const work: Promise<void>[] = [];
    for (const [user, devices] of this.local) {
      for (const [device, conn] of devices) {
        work.push(
          this.connect(user, device, conn, this.now(), true).then((r) => {
            if (r === -1 && devices.get(device) === conn) devices.delete(device);
          }),
        );
      }
    }
    // ioredis pipelines commands written in the same tick: one round trip for all of them.
    await Promise.all(work);
  }

  private async sweep(): Promise<void> {
    const expiry = this.keys('').expiry;
    for (;;) {
      const now = this.now();
      const due = await this.redis.zrangebyscore(expiry, '-inf', now, 'LIMIT', 0, SWEEP_BATCH);
      await Promise.all(
        due.map((user) => {
          const k = this.keys(user);
          return this.redis.presenceExpire(k.devices, k.online, k.expiry, user, now, this.channel);
        }),
      );
      if (due.length < SWEEP_BATCH) return;
    }
  }

  private received(message: string): void {
    let change: PresenceChange;
    try {
      change = JSON.parse(message) as PresenceChange;
    } catch (err) {
      this.onError(err);
      return;
    }
    for (const l of this.listeners) l(change);
  }
}

/** The expiry time (ms) in a device field's value. */
function expiresAt(value: string): number {
  const parts = value.split('|');
  return Number(parts[parts.length - 2]);
}
