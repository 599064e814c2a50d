import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type ClientFrame,
  CloseCode,
  type ConnectFrame,
  encodeEvent,
  type Limits,
  parseClientFrame,
  SUBPROTOCOL_JSON,
} from '@parley/protocol';
import { type WebSocket, WebSocketServer } from 'ws';
import type { BackendApi } from '../backend/api.js';
import { protocolLimits } from '../config/protocol-limits.js';
import type { Config } from '../config/schema.js';
import { ParleyError } from '../domain/errors.js';
import type { Metrics } from '../metrics.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { OutboundFrame } from '../ports/router.js';
import type { ConnectionRef, GatewayLink } from '../ports/sessions.js';
import type { TokenVerifier } from './auth.js';
import { Connection } from './connection.js';
import { type DispatchContext, dispatch, errorReply } from './dispatch.js';
import { addressKey } from './listener.js';

const CONN = Symbol('parley.connection');
type TaggedSocket = WebSocket & { [CONN]: Connection };
type TaggedNetSocket = Socket & { [CONN]: Connection };

/** Protocol ops that may be sent before `connect` succeeds. */
const PRE_CONNECT_OPS = new Set(['connect']);

/**
 * Ops whose replies carry data read from the store (up to the reply byte budget): a connection
 * runs only a few at a time, and starts one only when its socket has room for the reply.
 */
const READ_OPS = new Set([
  'sync',
  'history',
  'conversations',
  'receipts',
  'group_info',
  'presence_sub',
  'keys_claim',
]);

/**
 * Bytes of frames a connection may have waiting: the socket is paused as soon as one waits, so
 * only what one read already brought can pile up; past this the client is abusing the protocol.
 */
const MAX_WAITING_BYTES = 1024 * 1024;

/** A backlog above this that does not clear within `slowReaderMs` marks a slow reader. */
const SLOW_READER_BYTES = 256 * 1024;

/** How long a closed socket has to finish the close handshake before it is dropped. */
const CLOSE_GRACE_MS = 5000;

export interface GatewayOptions {
  config: Config;
  /** This gateway's id, unique in the deployment (connections are addressed as gateway/conn). */
  id: string;
  backend: BackendApi;
  verifier: TokenVerifier;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
}

/**
 * The WebSocket edge at /v1/ws: validates every frame, authenticates with `connect`, dispatches
 * ops to the domain, and holds the table of live devices that live delivery (the Router port)
 * writes to. Timeouts (connect, heartbeat, token expiry) are enforced by one sweep over all
 * connections, not by per-connection timers.
 */
export class Gateway implements GatewayLink {
  private readonly wss: WebSocketServer;
  private readonly conns = new Set<Connection>();
  /** Authenticated connections on this gateway, by user and by connection id (its session). */
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly byId = new Map<string, Connection>();
  private vapid: Promise<{ vapid_public_key?: string }> | undefined;
  private readonly limits: Limits;
  private readonly ctx: DispatchContext;
  private readonly sweepTimer: NodeJS.Timeout;
  private draining = false;
  /** Sockets per remote address that have not completed `connect`. */
  private readonly unauthenticated = new Map<string, number>();

  constructor(private readonly o: GatewayOptions) {
    const { config } = o;
    this.limits = protocolLimits(config);
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      // Frames up to twice the limit are read and refused with 1008; beyond that ws cuts them off (1009).
      maxPayload: config.maxFrameBytes * 2,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL_JSON) ? SUBPROTOCOL_JSON : false),
    });
    this.ctx = {
      chat: o.backend.chat,
      sessions: o.backend.sessions,
      account: o.backend.account,
      keys: o.backend.keys,
      media: o.backend.media,
      clock: o.clock,
      connect: (conn, frame) => this.connect(conn, frame),
      ref: (conn) => this.ref(conn),
      observeSend: (s) => o.metrics.sendLatency.observe(s),
    };
    const sweepEvery = Math.max(
      50,
      Math.min(1000, Math.floor(Math.min(config.heartbeatMs, config.connectTimeoutMs) / 4)),
    );
    this.sweepTimer = setInterval(() => this.sweep(), sweepEvery);
    this.sweepTimer.unref();
  }

  /** Number of open sockets. */
  get size(): number {
    return this.conns.size;
  }

  /** Takes an HTTP upgrade for /v1/ws. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.draining) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const origin = req.headers.origin;
      const allowed = this.o.config.origins;
      if (allowed.length > 0 && (origin === undefined || !allowed.includes(origin))) {
        this.o.metrics.closes.inc({ code: String(CloseCode.Policy) });
        ws.close(CloseCode.Policy, 'origin not allowed');
        return;
      }
      this.accept(ws, socket as Socket, addressKey(req.socket.remoteAddress ?? ''));
    });
  }

  /** Sends a frame to every live device of `user` on this gateway. */
  deliver(user: string, frame: OutboundFrame): void {
    const conns = this.byUser.get(user);
    if (!conns) return;
    for (const conn of conns) this.write(conn, frame);
  }

  /** Sends a frame to one connection. */
  send(id: string, frame: string): void {
    const conn = this.byId.get(id);
    if (conn) this.write(conn, frame);
  }

  /** Tells one connection that `to_device` messages wait for its device. */
  toDeviceWaiting(id: string): void {
    const conn = this.byId.get(id);
    if (conn?.authenticated) void this.sendQueuedToDevice(conn);
  }

  /**
   * Sends the device's queued `to_device` messages after the last one this connection was sent,
   * in qid order, a batch at a time; a notice arriving meanwhile makes it look once more. It waits
   * for room in the socket between batches (resumed by `onDrained`), so a long queue never sits in
   * the server's memory. Messages stay queued until the device acknowledges them.
   */
  private async sendQueuedToDevice(conn: Connection): Promise<void> {
    if (conn.toDevicePulling) {
      conn.toDeviceAgain = true;
      return;
    }
    conn.toDevicePulling = true;
    try {
      do {
        conn.toDeviceAgain = false;
        if (conn.backlog > this.o.config.maxReplyBytes) {
          conn.toDeviceAgain = true; // looked at again once the socket drains
          return;
        }
        const batch = await this.o.backend.keys.pendingToDevice(
          conn.user!,
          conn.device!,
          conn.toDeviceCursor,
        );
        if (conn.closed) return;
        for (const e of batch.events) this.write(conn, encodeEvent(e));
        conn.toDeviceCursor = batch.events.at(-1)?.qid ?? conn.toDeviceCursor;
        if (batch.more) conn.toDeviceAgain = true;
      } while (conn.toDeviceAgain && !conn.closed);
    } catch (err) {
      this.o.log.warn({ err: String(err) }, 'queued to_device messages not sent');
    } finally {
      conn.toDevicePulling = false;
    }
  }

  /** Closes one connection (the backend replaces devices and refuses connections this way). */
  close(id: string, code: number, reason: string): void {
    const conn = this.byId.get(id);
    if (conn) this.closeConn(conn, code, reason);
  }

  /**
   * Drain: refuse new sockets, tell every client when to reconnect (spread over the window), and
   * close what is left with 1012 when the window ends.
   */
  async drain(windowMs: number): Promise<void> {
    this.draining = true;
    for (const conn of this.conns) {
      if (!conn.authenticated) continue;
      const afterMs = Math.floor(Math.random() * windowMs);
      this.write(conn, JSON.stringify({ type: 'reconnect', after_ms: afterMs, reason: 'drain' }));
    }
    const deadline = Date.now() + windowMs;
    while (this.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.closeAll(CloseCode.ServiceRestart, 'server restart');
  }

  /** Closes every socket with `code` and stops the sweep. */
  closeAll(code: number, reason: string): void {
    this.draining = true;
    clearInterval(this.sweepTimer);
    for (const conn of this.conns) this.closeConn(conn, code, reason);
  }

  private accept(ws: WebSocket, socket: Socket, remote: string): void {
    const pending = this.unauthenticated.get(remote) ?? 0;
    if (pending >= this.o.config.maxUnauthenticatedPerAddress) {
      this.o.metrics.closes.inc({ code: String(CloseCode.Policy) });
      ws.close(CloseCode.Policy, 'too many unauthenticated connections from this address');
      return;
    }
    this.unauthenticated.set(remote, pending + 1);
    const conn = new Connection(ws, socket, this.o.clock.now(), remote, this);
    (ws as TaggedSocket)[CONN] = conn;
    (socket as TaggedNetSocket)[CONN] = conn;
    this.conns.add(conn);
    this.o.metrics.connections.inc();
    ws.on('message', onMessage);
    ws.on('ping', onPing);
    ws.on('close', onClose);
    ws.on('error', onError);
    socket.on('drain', onSocketDrain);
  }

  /** Stops counting a connection among its address's unauthenticated sockets. */
  private authenticatedOrGone(conn: Connection): void {
    if (!conn.unauthenticated) return;
    conn.unauthenticated = false;
    const n = (this.unauthenticated.get(conn.remote) ?? 1) - 1;
    if (n <= 0) this.unauthenticated.delete(conn.remote);
    else this.unauthenticated.set(conn.remote, n);
  }

  /** @internal Called by the shared socket listeners. */
  onFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    conn.lastSeen = this.o.clock.now();
    if (data.length > this.limits.maxFrameBytes) {
      this.closeConn(conn, CloseCode.Policy, 'frame too large');
      return;
    }
    if (isBinary) {
      this.reject(
        conn,
        undefined,
        new ParleyError('bad_request', 'binary frames are not supported; send JSON text'),
      );
      return;
    }
    const parsed = parseClientFrame(data.toString('utf8'), this.limits);
    if (!parsed.ok) {
      this.o.metrics.badFrames.inc({ code: parsed.code });
      this.reject(conn, parsed.id, new ParleyError(parsed.code, parsed.message));
      return;
    }
    const frame = parsed.frame;
    this.o.metrics.framesIn.inc({ type: frame.type });
    if (!conn.authenticated && !PRE_CONNECT_OPS.has(frame.type)) {
      this.replyError(conn, frame, new ParleyError('unauthorized', 'send connect first'));
      return;
    }
    if (frame.type === 'connect' && (conn.authenticated || conn.connecting)) {
      this.replyError(conn, frame, new ParleyError('bad_request', 'already connected'));
      return;
    }
    this.enqueue(conn, frame, data.length);
  }

  /**
   * Runs a frame now when the connection is within its limits and nothing waits before it; else
   * queues it (in arrival order, so one connection's sends still reach their writers in order)
   * and stops reading the socket until the queue empties: a client that pipelines faster than it
   * is served is held back by TCP, not by the server's memory.
   */
  private enqueue(conn: Connection, frame: ClientFrame, bytes: number): void {
    if (conn.waiting.length === 0 && this.canStart(conn, frame)) {
      this.run(conn, frame);
      return;
    }
    conn.waiting.push({ frame, bytes });
    conn.waitingBytes += bytes;
    if (!conn.ws.isPaused) conn.ws.pause();
    if (conn.waitingBytes > MAX_WAITING_BYTES) {
      this.closeConn(conn, CloseCode.ProtocolAbuse, 'too many requests pipelined');
    }
  }

  /**
   * Whether `frame` may start: fewer than `maxPipelinedRequests` in progress, and for a read,
   * fewer than `maxConcurrentReads` reads and room in the socket for a whole reply (the server
   * never builds a reply it could not send).
   */
  private canStart(conn: Connection, frame: ClientFrame): boolean {
    const { maxPipelinedRequests, maxConcurrentReads, maxReplyBytes } = this.o.config;
    if (conn.inFlight >= maxPipelinedRequests) return false;
    if (!READ_OPS.has(frame.type)) return true;
    return conn.readsInFlight < maxConcurrentReads && conn.backlog <= maxReplyBytes;
  }

  /** Starts what waits, in order, as far as the limits allow; reads the socket again once none waits. */
  private pump(conn: Connection): void {
    while (conn.waiting.length > 0 && !conn.closed) {
      const next = conn.waiting[0]!;
      if (!this.canStart(conn, next.frame)) return;
      conn.waiting.shift();
      conn.waitingBytes -= next.bytes;
      this.run(conn, next.frame);
    }
    if (conn.ws.isPaused && !conn.closed) conn.ws.resume();
  }

  private run(conn: Connection, frame: ClientFrame): void {
    const read = READ_OPS.has(frame.type);
    conn.inFlight++;
    if (read) conn.readsInFlight++;
    dispatch(this.ctx, conn, frame)
      .then(
        (reply) => {
          if (reply !== undefined) this.write(conn, reply);
          // Messages that waited for the device follow the connect reply.
          if (frame.type === 'connect' && conn.authenticated) void this.sendQueuedToDevice(conn);
        },
        (err: unknown) => {
          const e = ParleyError.from(err);
          if (e.code === 'internal') this.o.log.error({ err: String(err), op: frame.type }, 'op failed');
          this.replyError(conn, frame, e);
          if (frame.type === 'connect')
            this.closeConn(conn, e.closeCode ?? CloseCode.TokenInvalid, e.message);
        },
      )
      .finally(() => {
        conn.inFlight--;
        if (read) conn.readsInFlight--;
        if (conn.waiting.length > 0) this.pump(conn);
      });
  }

  /** @internal The socket flushed everything: its reader kept up, and waiting reads may start. */
  onDrained(conn: Connection): void {
    conn.backlogSince = null;
    if (conn.toDeviceAgain && !conn.toDevicePulling && conn.authenticated) void this.sendQueuedToDevice(conn);
    if (conn.waiting.length > 0) this.pump(conn);
  }

  /** @internal The gateway's clock, for the shared listeners. */
  now(): number {
    return this.o.clock.now();
  }

  /** @internal */
  onClosed(conn: Connection): void {
    conn.closed = true;
    conn.waiting.length = 0;
    this.authenticatedOrGone(conn);
    if (!this.conns.delete(conn)) return;
    this.o.metrics.connections.dec();
    this.unregister(conn);
  }

  /** Forgets an authenticated connection here and in the backend. */
  private unregister(conn: Connection): void {
    if (conn.user === null || this.byId.get(conn.session) !== conn) return;
    this.byId.delete(conn.session);
    const conns = this.byUser.get(conn.user);
    conns?.delete(conn);
    if (conns?.size === 0) this.byUser.delete(conn.user);
    this.o.backend.sessions
      .close(this.ref(conn))
      .catch((err) => this.o.log.warn({ err: String(err) }, 'session close failed'));
  }

  /** The connect reply's `vapid_public_key` (asked of the backend once: it never changes). */
  private vapidKey(): Promise<{ vapid_public_key?: string }> {
    this.vapid ??= this.o.backend.account
      .vapidPublicKey()
      .then((key) => (key === undefined ? {} : { vapid_public_key: key }));
    return this.vapid;
  }

  /** How the backend addresses a connection of this gateway. */
  ref(conn: Connection): ConnectionRef {
    return { gateway: this.o.id, conn: conn.session, user: conn.user!, device: conn.device! };
  }

  private async connect(conn: Connection, f: ConnectFrame): Promise<Record<string, unknown>> {
    conn.connecting = true;
    try {
      const claims = await this.o.verifier.verify(f.token);
      if (claims.device !== undefined && claims.device !== f.device) {
        throw new ParleyError('unauthorized', 'token is bound to another device');
      }
      if (conn.closed) throw new ParleyError('unauthorized', 'connection closed');
      conn.session = randomBytes(12).toString('base64url');
      const ref: ConnectionRef = {
        gateway: this.o.id,
        conn: conn.session,
        user: claims.user,
        device: f.device,
      };
      // Registered before the backend answers: a replacement of this device elsewhere finds it.
      this.byId.set(conn.session, conn);
      let opened: { inboxHead: number };
      try {
        opened = await this.o.backend.sessions.open(ref, claims.issuedAt);
      } catch (err) {
        this.byId.delete(conn.session);
        throw err;
      }
      conn.user = claims.user;
      conn.device = f.device;
      conn.expiresAt = claims.expiresAt;
      this.authenticatedOrGone(conn);
      let conns = this.byUser.get(claims.user);
      if (!conns) {
        conns = new Set();
        this.byUser.set(claims.user, conns);
      }
      conns.add(conn);
      if (conn.closed) {
        this.unregister(conn);
        throw new ParleyError('unauthorized', 'connection closed');
      }
      return {
        user: claims.user,
        device: f.device,
        session: conn.session,
        heartbeat_ms: this.o.config.heartbeatMs,
        inbox_head: opened.inboxHead,
        server_time: this.o.clock.now(),
        ...(await this.vapidKey()),
      };
    } finally {
      conn.connecting = false;
    }
  }

  /**
   * @internal Writes a frame to a connection; closes it (1013) when what earlier turns wrote is
   * still unsent past `maxOutboundBytes` (it stopped reading). This turn's own writes do not count:
   * a burst that a reader takes at full speed is never held against it.
   */
  write(conn: Connection, frame: OutboundFrame): void {
    if (conn.closed) return;
    if (conn.backlogFromEarlierTurns > this.o.config.maxOutboundBytes) {
      this.closeSlow(conn, 'client too slow: outbound queue full');
      return;
    }
    if (typeof frame === 'string' ? conn.sendRaw(frame) : conn.sendShared(frame))
      this.o.metrics.framesOut.inc();
  }

  private replyError(conn: Connection, frame: ClientFrame, err: ParleyError): void {
    if (frame.id !== undefined) this.write(conn, errorReply(frame.id, err));
  }

  /** Answers a malformed frame, and closes the connection once it sends too many. */
  private reject(conn: Connection, id: string | undefined, err: ParleyError): void {
    this.write(conn, errorReply(id, err));
    const now = this.o.clock.now();
    if (now - conn.badWindowStart > 60_000) {
      conn.badWindowStart = now;
      conn.badFrames = 0;
    }
    if (++conn.badFrames > this.o.config.maxBadFramesPerMinute) {
      this.closeConn(conn, CloseCode.ProtocolAbuse, 'too many malformed frames');
    }
  }

  private closeConn(conn: Connection, code: number, reason: string): void {
    if (conn.closed) return;
    this.o.metrics.closes.inc({ code: String(code) });
    conn.terminateAt = this.o.clock.now() + CLOSE_GRACE_MS;
    conn.close(code, reason);
  }

  /** Closes a reader that does not keep up (1013); what it was sent waits in its inbox. */
  private closeSlow(conn: Connection, reason: string): void {
    this.closeConn(conn, CloseCode.TryAgainLater, reason);
  }

  /** Tracks a connection's backlog over time; one that stays high for `slowReaderMs` is cut off. */
  private checkSlowReader(conn: Connection, now: number): void {
    if (conn.backlog <= SLOW_READER_BYTES) {
      conn.backlogSince = null;
    } else if (conn.backlogSince === null) {
      conn.backlogSince = now;
    } else if (now - conn.backlogSince > this.o.config.slowReaderMs) {
      this.closeSlow(conn, 'client too slow: backlog not read');
    }
  }

  /** One pass over every connection: connect timeout, heartbeat timeout, token expiry. */
  private sweep(): void {
    const now = this.o.clock.now();
    const { connectTimeoutMs, heartbeatMs } = this.o.config;
    for (const conn of this.conns) {
      if (conn.closed) {
        // A close handshake that never completes: drop the socket.
        if (now > conn.terminateAt) conn.ws.terminate();
        continue;
      }
      this.checkSlowReader(conn, now);
      if (conn.waiting.length > 0) this.pump(conn);
      if (!conn.authenticated) {
        if (!conn.connecting && now - conn.openedAt > connectTimeoutMs) {
          this.closeConn(conn, CloseCode.ConnectTimeout, 'connect timeout');
        }
        continue;
      }
      if (now - conn.lastSeen > heartbeatMs * 2) {
        this.o.metrics.closes.inc({ code: 'heartbeat' });
        conn.closed = true;
        conn.ws.terminate();
      } else if (now >= conn.expiresAt) {
        this.closeConn(conn, CloseCode.TokenInvalid, 'token expired');
      }
    }
  }
}

// Shared listeners (one function for all sockets, `this` is the socket), so a connection
// carries no closures of its own.
function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const conn = (this as TaggedSocket)[CONN];
  conn.owner.onFrame(conn, data, isBinary);
}
function onPing(this: WebSocket): void {
  const conn = (this as TaggedSocket)[CONN];
  conn.lastSeen = conn.owner.now();
}
function onClose(this: WebSocket): void {
  const conn = (this as TaggedSocket)[CONN];
  conn.owner.onClosed(conn);
}
function onError(this: WebSocket): void {
  // The socket closes after an error; 'close' does the cleanup.
}
function onSocketDrain(this: Socket): void {
  const conn = (this as TaggedNetSocket)[CONN];
  conn.owner.onDrained(conn);
}
