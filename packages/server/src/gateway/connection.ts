import type { Socket } from 'node:net';
import type { ClientFrame } from '@parley/protocol';
import type WebSocket from 'ws';
import type { OutboundFrame, SharedTailFrame } from '../ports/router.js';

/**
 * Output is corked per event-loop turn: every frame written in one turn leaves in one writev when
 * the turn ends (a commit answers many sends at once). `turn` numbers those turns, so a
 * connection can tell what it wrote in this turn from what earlier turns left unsent.
 */
let turn = 0;
let corked: Socket[] = [];

function endTurn(): void {
  const list = corked;
  corked = [];
  turn++;
  for (const s of list) s.uncork();
}

/** Corks `socket` until the end of this turn. */
function cork(socket: Socket): void {
  if (socket.writableCorked) return;
  socket.cork();
  if (corked.length === 0) process.nextTick(endTurn);
  corked.push(socket);
}

/** The gateway side a connection reports to (its socket listeners are shared functions). */
export interface ConnectionOwner {
  onFrame(conn: Connection, data: Buffer, isBinary: boolean): void;
  /** Writes a frame with the gateway's backpressure rules. */
  write(conn: Connection, frame: OutboundFrame): void;
  onClosed(conn: Connection): void;
  /** The socket flushed everything it held: waiting reads may start. */
  onDrained(conn: Connection): void;
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
  /** When the socket is dropped if the client never completes the close handshake. */
  terminateAt = Number.POSITIVE_INFINITY;
  /** Counted among its address's unauthenticated sockets until `connect` succeeds or it closes. */
  unauthenticated = true;

  /** Requests being processed, and of those, reads. */
  inFlight = 0;
  readsInFlight = 0;
  /** Frames received while the connection was at its limits, in arrival order. */
  readonly waiting: { frame: ClientFrame; bytes: number }[] = [];
  waitingBytes = 0;
  /** Since when the unsent backlog has stayed above the slow-reader mark (null: it is not). */
  backlogSince: number | null = null;
  /** The last `to_device` qid sent on this connection (the device acknowledges on its own). */
  toDeviceCursor = 0;
  /** Set while queued `to_device` messages are being read; `toDeviceAgain` asks for one more look. */
  toDevicePulling = false;
  toDeviceAgain = false;

  /** What was unsent when this connection first wrote in turn `backlogTurn`. */
  private turnStartBacklog = 0;
  private backlogTurn = -1;

  constructor(
    readonly ws: WebSocket,
    readonly socket: Socket,
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

  /** Bytes written to this connection and not yet taken by the kernel. */
  get backlog(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * What earlier turns left unsent: the measure of a reader that does not keep up. What this turn
   * wrote is excluded (it has not had a chance to leave yet), so a burst the client reads at full
   * speed never counts against it. Output stays corked until the turn ends, so nothing leaves
   * during a turn: what earlier turns left is the backlog before this turn's first write.
   */
  get backlogFromEarlierTurns(): number {
    return this.backlogTurn === turn ? this.turnStartBacklog : this.ws.bufferedAmount;
  }

  /** Sends an event through the gateway (backpressure applies); what presence subscribers call. */
  send(frame: string): boolean {
    this.owner.write(this, frame);
    return !this.closed;
  }

  /**
   * Writes a frame to the socket unless it is closing. Returns false when it was not sent. Frames
   * written in the same turn are corked together into one writev.
   */
  sendRaw(frame: string): boolean {
    if (this.closed || this.ws.readyState !== 1) return false;
    this.markTurn();
    cork(this.socket);
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
    this.markTurn();
    cork(this.socket);
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
    this.socket.write(start);
    this.socket.write(frame.tail);
    return true;
  }

  /** Notes the backlog before this turn's first write (see `backlogFromEarlierTurns`). */
  private markTurn(): void {
    if (this.backlogTurn === turn) return;
    this.backlogTurn = turn;
    this.turnStartBacklog = this.ws.bufferedAmount;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
  }
}
