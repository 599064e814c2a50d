/**
 * One simulated device: a `ws` socket (bound to one of the source addresses so that 10,000s of
 * sockets do not exhaust one address's ephemeral ports) that has completed `connect`. Plain
 * fields only; the load process runs one heartbeat sweep and one frame handler for all of them.
 * @module
 */
import WebSocket from 'ws';
import { epochNow } from './clock.js';
import { frameType, numberField, stringField } from './frames.js';

/** The subprotocol Parley speaks (the relay accepts it too). */
export const SUBPROTOCOL = 'parley.v1.json';

/** An authenticated connection of the load. */
export class BenchConn {
  /** Last time a frame was written (heartbeats go to sockets silent for `heartbeatMs`). */
  lastSent: number;
  /** Sends awaiting a reply. */
  outstanding = 0;
  /** Stamped messages this user received from itself (its own sends' copies). */
  echoes = 0;
  /** Highest seq per conversation waiting for a batched `delivered` receipt. */
  pendingReceipts: Map<string, number> | null = null;
  /** Set by the load process when it closes the socket on purpose. */
  closing = false;
  /** Resync state: sync cursor, events seen, pages. */
  syncAfter = 0;

  constructor(
    readonly ws: WebSocket,
    readonly user: string,
    readonly heartbeatMs: number,
    readonly inboxHead: number,
  ) {
    this.lastSent = epochNow();
  }

  /** Writes a frame; false when the socket is not open. */
  send(frame: string): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(frame);
    this.lastSent = epochNow();
    return true;
  }
}

/** Why opening a connection failed, for the error counters. */
export class OpenError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Opens a socket, sends `connect` with `token`, and resolves once the server accepted it.
 * Rejects with an OpenError whose code names the failure (`socket`, `close:<code>`, `timeout`,
 * or the protocol error code).
 */
export function openConnection(
  url: string,
  user: string,
  token: string,
  localAddress: string | undefined,
  timeoutMs: number,
): Promise<BenchConn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, SUBPROTOCOL, {
      perMessageDeflate: false,
      // The generator only looks for a few ASCII markers in each frame; validating every
      // frame's UTF-8 would spend its CPU on work the measurement does not need.
      skipUTF8Validation: true,
      handshakeTimeout: timeoutMs,
      ...(localAddress ? { localAddress } : {}),
    });
    let settled = false;
    const fail = (code: string, message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      reject(new OpenError(code, message));
    };
    const timer = setTimeout(() => fail('timeout', `no connect reply within ${timeoutMs} ms`), timeoutMs);
    ws.on('error', (err) => fail(errorCode(err), err.message));
    ws.on('close', (code) => fail(`close:${code}`, `closed with ${code} before connect completed`));
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'connect', id: 'c', token, device: 'd', client: 'parley-bench/0.1' }));
    });
    ws.once('message', (data: Buffer) => {
      if (settled) return;
      if (frameType(data) !== 'reply' || data.indexOf('"ok":true') < 0) {
        fail(stringField(data, 'code') ?? 'bad_reply', data.toString('utf8', 0, 200));
        return;
      }
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners();
      const hb = numberField(data, 'heartbeat_ms');
      const head = numberField(data, 'inbox_head');
      resolve(new BenchConn(ws, user, Number.isNaN(hb) ? 30_000 : hb, Number.isNaN(head) ? 0 : head));
    });
  });
}

function errorCode(err: Error): string {
  const code = (err as { code?: string }).code;
  return code ? `socket:${code}` : 'socket';
}
