/**
 * An in-process fake Parley server for deterministic SDK tests (as centrifuge-js tests its
 * reconnect logic): a real WebSocket server on 127.0.0.1 that speaks just enough of protocol v1
 * (connect, sync over a scripted inbox, send with scripted outcomes, generic replies) and lets a
 * test drop connections, close them with given codes, push live events and send `reconnect`.
 * Every client frame is recorded.
 */

import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

export type Frame = Record<string, unknown>;

/** One accepted socket. */
export interface FakeConn {
  readonly index: number;
  readonly ws: WebSocket;
  readonly protocol: string;
  authed: boolean;
  token: string | undefined;
  readonly openedAt: number;
  closedAt: number | undefined;
}

/** A recorded client frame. */
export interface Received {
  conn: number;
  at: number;
  frame: Frame;
}

/** What to do with a `connect` frame. */
export type ConnectAction = 'ok' | 'ignore' | { close: number } | { error: string };

/**
 * What to do with a `send` frame:
 * - `ok`: store (dedup by conv+cmid) and reply;
 * - `store_then_drop`: store, then terminate the socket without replying;
 * - `ignore`: no reply, keep the socket;
 * - `{ error }`: reply with that error, store nothing;
 * - `{ close }`: close the socket with that code, store nothing.
 */
export type SendAction =
  | 'ok'
  | 'store_then_drop'
  | 'ignore'
  | { error: { code: string; message?: string; retry_after_ms?: number } }
  | { close: number };

/** Returned by {@link FakeServer.onRequest} to answer with an error reply. */
export class FakeErrorReply {
  constructor(readonly error: { code: string; message?: string; retry_after_ms?: number }) {}
}

export interface FakeServerOptions {
  user?: string;
  heartbeatMs?: number;
}

/** Builds a message inbox event for the fake inbox. */
export function messageEvent(inbox: number, extra: Partial<Frame> = {}): Frame {
  return {
    type: 'message',
    inbox,
    conv: 'dm:alice:bob',
    seq: inbox,
    ts: 1_795_000_000_000 + inbox,
    from: 'bob',
    from_device: 'phone-1',
    cmid: `cmid-${inbox}`,
    kind: 'text',
    body: `message ${inbox}`,
    ...extra,
  };
}

export class FakeServer {
  readonly wss: WebSocketServer;
  readonly url: string;
  user: string;
  heartbeatMs: number;
  /** The user's inbox: entry i has inbox number i + 1. */
  readonly inbox: Frame[] = [];
  /** Every connection ever accepted, in order. */
  readonly conns: FakeConn[] = [];
  /** Every client frame, in arrival order. */
  readonly received: Received[] = [];

  /** Decides each `connect` (default: accept). */
  onConnect: (frame: Frame, conn: FakeConn) => ConnectAction = () => 'ok';
  /** Overrides `inbox_head` in the connect reply (default: inbox length). */
  connectInboxHead: number | undefined;
  /** Caps every `sync` page (default: the client's limit). */
  syncPageCap: number | undefined;
  /** Delay before each `sync` reply. */
  syncDelayMs = 0;
  /** Called when a `sync` request arrives, before the reply is computed (to inject live events). */
  onSyncRequest: ((frame: Frame, conn: FakeConn, nth: number) => void | Promise<void>) | undefined;
  /** `sync` with `after` below this answers `gone`. */
  goneBelow = 0;
  /** Error replies for the next `sync` requests, consumed in order. */
  readonly syncErrors: Frame[] = [];
  /** Outcomes of successive `send` frames; `ok` once empty. */
  readonly sendScript: SendAction[] = [];
  /** Stored messages by `conv\ncmid`. */
  readonly stored = new Map<string, { conv: string; seq: number; ts: number }>();
  readonly #convSeq = new Map<string, number>();
  /** Replies for other ops (default `{}`); return null to not reply, a {@link FakeErrorReply} to fail. */
  onRequest: (frame: Frame, conn: FakeConn) => Frame | FakeErrorReply | null = (frame) =>
    frame.type === 'ping' ? { server_time: Date.now() } : {};
  #syncCount = 0;

  private constructor(wss: WebSocketServer, opts: FakeServerOptions) {
    this.wss = wss;
    const { port } = wss.address() as AddressInfo;
    this.url = `ws://127.0.0.1:${port}/v1/ws`;
    this.user = opts.user ?? 'alice';
    this.heartbeatMs = opts.heartbeatMs ?? 30_000;
    wss.on('connection', (ws) => this.#accept(ws));
  }

  static async start(opts: FakeServerOptions = {}): Promise<FakeServer> {
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has('parley.v1.json') ? 'parley.v1.json' : false),
    });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    return new FakeServer(wss, opts);
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  /** Frames of one type, in arrival order. */
  framesOf(type: string): Received[] {
    return this.received.filter((r) => r.frame.type === type);
  }

  /** Connections that are open now. */
  get openConns(): FakeConn[] {
    return this.conns.filter((c) => c.closedAt === undefined);
  }

  /** Appends events to the inbox (numbered in order); `live` also pushes them to open, authenticated sockets. */
  append(count: number, opts: { live?: boolean; extra?: (inbox: number) => Partial<Frame> } = {}): Frame[] {
    const added: Frame[] = [];
    for (let i = 0; i < count; i++) {
      const n = this.inbox.length + 1;
      const ev = messageEvent(n, opts.extra?.(n) ?? {});
      this.inbox.push(ev);
      added.push(ev);
      if (opts.live) this.push(ev);
    }
    return added;
  }

  /** Sends a frame to every open, authenticated socket. */
  push(frame: Frame): void {
    for (const c of this.openConns) if (c.authed) this.#send(c, frame);
  }

  /** Terminates every socket abruptly (the client sees 1006). */
  dropAll(): void {
    for (const c of this.openConns) c.ws.terminate();
  }

  /** Closes every socket with a close code. */
  closeAll(code: number, reason = ''): void {
    for (const c of this.openConns) c.ws.close(code, reason);
  }

  #send(c: FakeConn, frame: Frame): void {
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(frame));
  }

  #reply(c: FakeConn, id: unknown, result: Frame): void {
    this.#send(c, { type: 'reply', id, ok: true, ...result });
  }

  #error(c: FakeConn, id: unknown, error: Frame): void {
    this.#send(c, { type: 'reply', id, ok: false, error: { message: '', ...error } });
  }

  #accept(ws: WebSocket): void {
    const conn: FakeConn = {
      index: this.conns.length,
      ws,
      protocol: ws.protocol,
      authed: false,
      token: undefined,
      openedAt: Date.now(),
      closedAt: undefined,
    };
    this.conns.push(conn);
    ws.on('close', () => {
      conn.closedAt = Date.now();
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let frame: Frame;
      try {
        frame = JSON.parse(String(data)) as Frame;
      } catch {
        return;
      }
      this.received.push({ conn: conn.index, at: Date.now(), frame });
      void this.#handle(conn, frame);
    });
  }

  async #handle(c: FakeConn, frame: Frame): Promise<void> {
    const id = frame.id;
    if (frame.type === 'connect') {
      c.token = typeof frame.token === 'string' ? frame.token : undefined;
      const action = this.onConnect(frame, c);
      if (action === 'ignore') return;
      if (typeof action === 'object' && 'close' in action) {
        c.ws.close(action.close);
        return;
      }
      if (typeof action === 'object' && 'error' in action) {
        this.#error(c, id, { code: action.error });
        return;
      }
      c.authed = true;
      this.#reply(c, id, {
        user: this.user,
        device: frame.device,
        session: `s${c.index}`,
        heartbeat_ms: this.heartbeatMs,
        inbox_head: this.connectInboxHead ?? this.inbox.length,
        server_time: Date.now(),
      });
      return;
    }
    if (!c.authed) {
      if (id !== undefined) this.#error(c, id, { code: 'unauthorized' });
      return;
    }
    switch (frame.type) {
      case 'sync':
        await this.#sync(c, frame);
        return;
      case 'send':
        this.#sendOp(c, frame);
        return;
      default: {
        if (id === undefined) return;
        const result = this.onRequest(frame, c);
        if (result instanceof FakeErrorReply) this.#error(c, id, result.error);
        else if (result !== null) this.#reply(c, id, result);
      }
    }
  }

  async #sync(c: FakeConn, frame: Frame): Promise<void> {
    const nth = this.#syncCount++;
    await this.onSyncRequest?.(frame, c, nth);
    if (this.syncDelayMs > 0) await new Promise((r) => setTimeout(r, this.syncDelayMs));
    const after = Number(frame.after ?? 0);
    const scripted = this.syncErrors.shift();
    if (scripted) {
      this.#error(c, frame.id, scripted);
      return;
    }
    if (after < this.goneBelow) {
      this.#error(c, frame.id, { code: 'gone' });
      return;
    }
    const limit = Math.min(Number(frame.limit ?? 500), this.syncPageCap ?? Number.POSITIVE_INFINITY);
    const events = this.inbox.slice(after, after + limit);
    this.#reply(c, frame.id, {
      events,
      inbox_head: this.inbox.length,
      more: after + limit < this.inbox.length,
    });
  }

  #store(frame: Frame): { conv: string; seq: number; ts: number; dup?: true } {
    const conv = String(frame.conv);
    const key = `${conv}\n${String(frame.cmid)}`;
    const seen = this.stored.get(key);
    if (seen) return { ...seen, dup: true };
    const seq = (this.#convSeq.get(conv) ?? 0) + 1;
    this.#convSeq.set(conv, seq);
    const entry = { conv, seq, ts: 1_795_000_000_000 + seq };
    this.stored.set(key, entry);
    return entry;
  }

  #sendOp(c: FakeConn, frame: Frame): void {
    const action = this.sendScript.shift() ?? 'ok';
    if (action === 'ignore') return;
    if (action === 'ok') {
      this.#reply(c, frame.id, this.#store(frame));
      return;
    }
    if (action === 'store_then_drop') {
      this.#store(frame);
      c.ws.terminate();
      return;
    }
    if ('error' in action) {
      this.#error(c, frame.id, action.error);
      return;
    }
    c.ws.close(action.close);
  }
}

/** Resolves when `cond()` is true, polling every few ms; rejects after `timeoutMs`. */
export async function waitUntil(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
