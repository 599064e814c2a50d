import type WebSocket from 'ws';
import type { OutboundFrame, SharedTailFrame } from '../ports/router.js';

type SocketHolder = { _socket?: { cork(): void; uncork(): void; write(data: Uint8Array): boolean } };
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
  write(conn: Connection, frame: OutboundFrame): void;
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

  /**
   * Writes a shared-tail frame: the WebSocket header and the short head are built here, the tail
   * buffer is written as is (no copy, no re-encoding), so a group message's body is encoded once
   * for all members. Written straight to the socket: with compression off, `ws` writes each of its
   * own frames synchronously and whole, so frames never interleave.
   */
  sendShared(frame: SharedTailFrame): boolean {
    if (this.closed || this.ws.readyState !== 1) return false;
    const socket = (this.ws as unknown as SocketHolder)._socket;
    if (!socket) return false;
    cork(this.ws);
    const headLength = frame.head.length; // ASCII
    const length = headLength + frame.tail.length;
    const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
    const start = Buffer.allocUnsafe(headerLength + headLength);
    start[0] = 0x81; // FIN, text frame; server frames are not masked
    if (length < 126) {
      start[1] = length;
    } else if (length < 65536) {
      start[1] = 126;
      start.writeUInt16BE(length, 2);
    } else {
      start[1] = 127;
      start.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
      start.writeUInt32BE(length >>> 0, 6);
    }
    start.write(frame.head, headerLength, 'latin1');
    socket.write(start);
    socket.write(frame.tail);
    return true;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
  }
}
