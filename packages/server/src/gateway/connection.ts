import type WebSocket from 'ws';

type SocketHolder = { _socket?: { cork(): void; uncork(): void } };
let corked: SocketHolder['_socket'][] = [];

function uncorkAll(): void {
  const list = corked;
  corked = [];
  for (const s of list) s?.uncork();
}

/** Corks the socket under `ws` until the end of this tick. */
function cork(ws: WebSocket): void {
  const socket = (ws as unknown as SocketHolder)._socket;
  if (!socket || (socket as { writableCorked?: number }).writableCorked) return;
  socket.cork();
  if (corked.length === 0) process.nextTick(uncorkAll);
  corked.push(socket);
}

/** The gateway side a connection reports to (its socket listeners are shared functions). */
export interface ConnectionOwner {
  onFrame(conn: Connection, data: Buffer, isBinary: boolean): void;
  /** Writes a frame with the gateway's backpressure rules. */
  write(conn: Connection, frame: string): void;
  onClosed(conn: Connection): void;
  now(): number;
}

/**
 * One client socket's state. Plain fields only: no timers or closures per connection (a single
 * sweep in the gateway handles timeouts), so a connection costs little more than its socket.
 */
export class Connection {
  user: string | null = null;
  device: string | null = null;
  /** Set while a `connect` is being verified. */
  connecting = false;
  session = '';
  readonly openedAt: number;
  lastSeen: number;
  expiresAt = Number.POSITIVE_INFINITY;
  badFrames = 0;
  badWindowStart: number;
  closed = false;

  constructor(
    readonly ws: WebSocket,
    now: number,
    readonly remote: string,
    readonly owner: ConnectionOwner,
  ) {
    this.openedAt = now;
    this.lastSeen = now;
    this.badWindowStart = now;
  }

  get authenticated(): boolean {
    return this.user !== null;
  }

  /** Sends an event through the gateway (backpressure applies); what presence subscribers call. */
  send(frame: string): boolean {
    this.owner.write(this, frame);
    return !this.closed;
  }

  /**
   * Writes a frame to the socket unless it is closing. Returns false when it was not sent. Frames
   * written in the same tick are corked together into one writev (a commit answers many sends at once).
   */
  sendRaw(frame: string): boolean {
    if (this.closed || this.ws.readyState !== 1) return false;
    cork(this.ws);
    this.ws.send(frame);
    return true;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
  }
}
