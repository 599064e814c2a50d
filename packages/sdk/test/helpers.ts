/** Test helpers: a client wired to a fake server with short timers, and an event log. */

import { afterEach, beforeEach } from 'node:test';
import { WebSocket } from 'ws';
import {
  type DisconnectInfo,
  type MessageEvent,
  ParleyClient,
  type ParleyClientOptions,
  type ResyncRequired,
} from '../src/index.js';
import { FakeServer } from './fake-server.js';

export interface EventLog {
  states: string[];
  messages: MessageEvent[];
  inbox: number[];
  disconnects: DisconnectInfo[];
  errors: Error[];
  synced: number[];
  resync: ResyncRequired[];
  connected: number;
}

/** A client for `server` with 10..40 ms reconnect delays and a 1 s request timeout unless overridden. */
export function makeClient(
  server: FakeServer,
  opts: Partial<ParleyClientOptions> = {},
): { client: ParleyClient; log: EventLog } {
  const client = new ParleyClient({
    url: server.url,
    device: 'laptop-1',
    tokenProvider: () => 'token-1',
    WebSocket,
    minReconnectDelayMs: 10,
    maxReconnectDelayMs: 40,
    requestTimeoutMs: 1000,
    random: () => 0.5,
    ...opts,
  });
  const log: EventLog = {
    states: [],
    messages: [],
    inbox: [],
    disconnects: [],
    errors: [],
    synced: [],
    resync: [],
    connected: 0,
  };
  client.on('state', ({ from, to }) => log.states.push(`${from}>${to}`));
  client.on('message', (m) => log.messages.push(m));
  client.on('inbox', (e) => log.inbox.push(e.inbox));
  client.on('disconnected', (d) => log.disconnects.push(d));
  client.on('error', (e) => log.errors.push(e));
  client.on('synced', (s) => log.synced.push(s.inbox));
  client.on('resync_required', (r) => log.resync.push(r));
  client.on('connected', () => {
    log.connected += 1;
  });
  return { client, log };
}

/** 1..n */
export function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

/**
 * A fresh fake server for every test of the file, and a `client()` bound to it whose clients are
 * closed after the test. Call once at the top level of a test file.
 */
export function withFakeServer(): {
  readonly server: FakeServer;
  client(opts?: Partial<ParleyClientOptions>): { client: ParleyClient; log: EventLog };
} {
  let current: FakeServer | null = null;
  const cleanups: (() => Promise<void>)[] = [];
  beforeEach(async () => {
    current = await FakeServer.start();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
    await current?.stop();
  });
  return {
    get server() {
      if (!current) throw new Error('the fake server starts before each test');
      return current;
    },
    client(opts = {}) {
      const made = makeClient(this.server, opts);
      cleanups.push(() => made.client.close());
      return made;
    },
  };
}
