/**
 * The client's state and the one place that talks to the SDK. Components read from it and call
 * its methods; it re-renders them through {@link ChatStore.subscribe} after every change.
 *
 * What it adds to the SDK (which already gives every inbox event exactly once, in order, across
 * reconnects, and retries sends with the same `cmid`): the conversation list built from
 * `conversations` and live events, timelines loaded with `history`, own messages shown as pending
 * until acknowledged, read marking while a conversation is open and visible, and a connection
 * view for the banner. Merges only move forward (see `conversation.ts`), so a reconnect, a
 * `sync` and a `conversations` refresh can overlap without duplicates or counts going back.
 *
 * @module
 */

import {
  ClientState,
  type ConnectResult,
  type CursorStore,
  type DisconnectInfo,
  type GroupInfoResult,
  type MessageEvent,
  ParleyClient,
  ParleyError,
  parseSystemMessage,
  type SendOptions,
  type TokenProvider,
  type TypingController,
} from '@parley/sdk';
import { type Attachment, downloadAttachment, kindOf, uploadAttachment } from './attachments.js';
import { type ChatMessage, Conversation, fromWire, TYPING_TTL_MS } from './conversation.js';
import { SocketControl } from './socket.js';

/** What a store needs to connect. */
export interface StoreOptions {
  /** The WebSocket URL (`ws(s)://host/v1/ws`). */
  url: string;
  /** This tab's device id. */
  device: string;
  /** Supplies a token for each connection attempt. */
  tokenProvider: TokenProvider;
  /** The user, when known before connecting (the conversation list needs it). */
  user?: string;
  /** Where the SDK keeps its inbox cursor; memory when absent. */
  cursorStore?: CursorStore;
}

/** What the connection banner shows. */
export interface ConnectionView {
  state: ClientState;
  /** What the browser says about the network. */
  online: boolean;
  /** When the next connection attempt starts, while waiting to reconnect. */
  retryAt?: number;
  /** Why the client stopped, in the `closed` state. */
  stopped?: string;
  /** Whether the client connected at least once (the first connection shows differently). */
  everConnected: boolean;
}

/** Newest page of history loaded when a conversation opens, and the size of older pages. */
const PAGE = 50;
/** Longest wait between reconnect attempts: a chat tab should come back soon after the network does. */
const MAX_RECONNECT_DELAY_MS = 10_000;

/** A decrypted attachment, or how loading it went. */
export interface MediaState {
  url?: string;
  error?: string;
}

/** The state of the signed-in client; see the module comment. */
export class ChatStore {
  readonly client: ParleyClient;
  readonly sockets = new SocketControl();
  readonly conversations = new Map<string, Conversation>();
  /** The conversation on screen, if any. */
  openId: string | null = null;
  connection: ConnectionView;
  /** A message for the user about something that failed (shown in an alert region). */
  notice: string | null = null;
  /** Bumped on every change. */
  version = 0;
  /** Decrypted attachments by media id. */
  readonly media = new Map<string, MediaState>();

  readonly #options: StoreOptions;
  readonly #listeners = new Set<() => void>();
  readonly #files = new Map<string, File>();
  readonly #typing = new Map<string, TypingController>();
  readonly #cleanups: (() => void)[] = [];
  #notifyQueued = false;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #typingTimer: ReturnType<typeof setInterval> | undefined;
  #disposed = false;

  constructor(options: StoreOptions) {
    this.#options = options;
    const clientOptions: ConstructorParameters<typeof ParleyClient>[0] = {
      url: options.url,
      device: options.device,
      tokenProvider: options.tokenProvider,
      WebSocket: this.sockets.WebSocket,
      maxReconnectDelayMs: MAX_RECONNECT_DELAY_MS,
    };
    if (options.cursorStore) clientOptions.cursorStore = options.cursorStore;
    this.client = new ParleyClient(clientOptions);
    this.connection = { state: this.client.state, online: navigator.onLine, everConnected: false };
    this.#wireClient();
  }

  /** The signed-in user (known from the first connect, or given up front). */
  get me(): string {
    return this.client.userId ?? this.#options.user ?? '';
  }

  /** This tab's device id. */
  get device(): string {
    return this.#options.device;
  }

  /** Calls `listener` after changes (batched per microtask); returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Connects and starts following the browser's network and visibility. */
  start(): void {
    const on = (target: EventTarget, type: string, fn: () => void) => {
      target.addEventListener(type, fn);
      this.#cleanups.push(() => target.removeEventListener(type, fn));
    };
    on(window, 'offline', () => {
      this.connection = { ...this.connection, online: false };
      // The browser may keep a dead socket open for a long time: drop it so sends queue at once.
      this.sockets.dropAll();
      this.#changed();
    });
    on(window, 'online', () => {
      this.connection = { ...this.connection, online: true };
      this.reconnectNow();
      this.#changed();
    });
    on(document, 'visibilitychange', () => this.#markOpenRead());
    void this.client.connect().catch(() => {});
  }

  /** Disconnects for good (sign-out or unmount). */
  async dispose(): Promise<void> {
    this.#disposed = true;
    for (const c of this.#cleanups.splice(0)) c();
    clearTimeout(this.#refreshTimer);
    clearInterval(this.#typingTimer);
    for (const m of this.media.values()) if (m.url) URL.revokeObjectURL(m.url);
    this.#listeners.clear();
    await this.client.close();
  }

  /**
   * Reconnects now instead of waiting out the backoff delay (the network came back, or the user
   * asked). The SDK has no call for that, so the client is closed and connected again; the sends
   * its close rejects are written again with their own `cmid`s (see `#dispatch`), so none is lost
   * or stored twice.
   */
  reconnectNow(): void {
    const state = this.client.state;
    if (state === ClientState.Connected || state === ClientState.Syncing) return;
    void this.client.close();
    void this.client.connect().catch(() => {});
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  /** Conversations by last activity, newest first. */
  conversationList(): Conversation[] {
    const activity = (c: Conversation) => Math.max(c.lastTs, c.last?.ts ?? 0);
    return [...this.conversations.values()].sort((a, b) => activity(b) - activity(a));
  }

  /** The conversation with this id, made empty if unknown. */
  conversation(id: string): Conversation {
    let conv = this.conversations.get(id);
    if (!conv) {
      conv = new Conversation(id, this.me);
      this.conversations.set(id, conv);
      if (conv.peer && conv.peer !== this.me) this.#subscribePresence([conv.peer]);
    }
    return conv;
  }

  /** Dismisses the notice. */
  clearNotice(): void {
    this.notice = null;
    this.#changed();
  }

  // -------------------------------------------------------------------------------------------
  // Navigation

  /** Opens a conversation (or none): loads its newest history and receipts, and marks it read. */
  open(id: string | null): void {
    this.openId = id;
    if (id !== null) {
      const conv = this.conversation(id);
      if (!conv.loading && !conv.loaded) void this.#loadLatest(conv);
      void this.#loadReceipts(conv);
      this.#markOpenRead();
    }
    this.#changed();
  }

  /** Loads the page of history before the oldest message loaded. */
  async loadOlder(id: string): Promise<void> {
    const conv = this.conversation(id);
    const before = conv.oldestSeq;
    if (!conv.loaded || !conv.hasMore || conv.loadingOlder || before === undefined || before <= 1) return;
    conv.loadingOlder = true;
    try {
      const r = await this.client.history(id, { before, limit: PAGE });
      conv.addHistory(r.messages, this.me);
      conv.hasMore = r.more;
    } catch (err) {
      this.report('Could not load older messages', err);
    } finally {
      conv.loadingOlder = false;
    }
    this.#changed();
  }

  /** Starts (or opens) the direct conversation with a user; returns its id. */
  startDirect(user: string): string {
    const me = this.me;
    const id = me <= user ? `dm:${me}:${user}` : `dm:${user}:${me}`;
    const conv = this.conversation(id);
    if (conv.lastTs === 0) conv.lastTs = Date.now();
    return id;
  }

  /** Creates a group with this user as admin; returns its id. */
  async createGroup(name: string, members: string[]): Promise<string | null> {
    try {
      const { conv: id } = await this.client.createGroup(name, members);
      const conv = this.conversation(id);
      conv.name = name;
      conv.members = members.filter((m) => m !== this.me).length + 1;
      if (conv.lastTs === 0) conv.lastTs = Date.now();
      this.#changed();
      return id;
    } catch (err) {
      this.report('Could not create the group', err);
      return null;
    }
  }

  /** Runs a group change (add, remove, leave, rename, role); reports a failure; returns whether it worked. */
  async groupChange(action: () => Promise<unknown>, what: string): Promise<boolean> {
    try {
      await action();
      this.#scheduleRefresh();
      return true;
    } catch (err) {
      this.report(`Could not ${what}`, err);
      return false;
    }
  }

  /** A group's members and roles (null when not a member any more). */
  async groupInfo(id: string): Promise<GroupInfoResult | null> {
    try {
      return await this.client.groupInfo(id);
    } catch (err) {
      if (err instanceof ParleyError && err.code === 'forbidden') {
        this.conversation(id).active = false;
        this.#changed();
      }
      return null;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Writing

  /** Sends a text message: shown at once as pending, acknowledged by the server later. */
  sendText(id: string, text: string, replyTo?: number): void {
    const msg = this.#pending(id, 'text', text, replyTo);
    this.#dispatch(msg);
  }

  /** Sends a photo or file: encrypted and uploaded first, then sent as an `image`/`file` message. */
  sendFile(id: string, file: File, replyTo?: number): void {
    const msg = this.#pending(
      id,
      kindOf(file),
      JSON.stringify({ name: file.name, size: file.size }),
      replyTo,
    );
    this.#files.set(msg.cmid, file);
    if (msg.kind === 'image') this.media.set(`local:${msg.cmid}`, { url: URL.createObjectURL(file) });
    void this.#uploadThenSend(msg);
  }

  /** Sends a failed message again (with its own `cmid`: it cannot be stored twice). */
  retry(id: string, cmid: string): void {
    const msg = this.conversation(id).pending.find((p) => p.cmid === cmid);
    if (msg?.status !== 'failed') return;
    msg.status = 'pending';
    delete msg.error;
    this.#changed();
    if (this.#files.has(cmid) && !msg.media) void this.#uploadThenSend(msg);
    else this.#dispatch(msg);
  }

  /** The user typed in a conversation's composer: `start` now and then, `stop` after a pause. */
  typed(id: string, text: string): void {
    let controller = this.#typing.get(id);
    if (!controller) {
      controller = this.client.typingController(id);
      this.#typing.set(id, controller);
    }
    if (text === '') controller.stop();
    else controller.input();
  }

  /** The user sent the message or left the conversation: typing stopped. */
  stoppedTyping(id: string): void {
    this.#typing.get(id)?.stop();
  }

  /** Downloads and decrypts an attachment once; its state is in {@link ChatStore.media}. */
  loadMedia(a: Attachment): void {
    const known = this.media.get(a.media);
    if (known && known.error === undefined) return;
    this.media.set(a.media, {});
    downloadAttachment(this.client, a).then(
      (url) => {
        if (this.#disposed) URL.revokeObjectURL(url);
        else this.media.set(a.media, { url });
        this.#changed();
      },
      (err: unknown) => {
        this.media.set(a.media, { error: err instanceof Error ? err.message : String(err) });
        this.#changed();
      },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  #pending(id: string, kind: string, body: string, replyTo: number | undefined): ChatMessage {
    const msg: ChatMessage = {
      conv: id,
      cmid: crypto.randomUUID(),
      ts: Date.now(),
      from: this.me,
      kind,
      body,
      status: 'pending',
    };
    if (replyTo !== undefined) msg.reply_to = replyTo;
    this.conversation(id).addPending(msg);
    this.#changed();
    return msg;
  }

  async #uploadThenSend(msg: ChatMessage): Promise<void> {
    const file = this.#files.get(msg.cmid);
    if (!file) return;
    try {
      const { body, media } = await uploadAttachment(this.client, file);
      const local = this.media.get(`local:${msg.cmid}`);
      // The sender sees its own photo from the file it picked, without downloading it again.
      if (local) this.media.set(media, local);
      msg.body = body;
      msg.media = [media];
      this.#files.delete(msg.cmid);
      this.#dispatch(msg);
    } catch (err) {
      msg.status = 'failed';
      msg.error = err instanceof Error ? err.message : String(err);
      this.#changed();
    }
  }

  /** Hands a pending message to the SDK's outbox and follows it to its acknowledgement. */
  #dispatch(msg: ChatMessage): void {
    const options: SendOptions = { cmid: msg.cmid, kind: msg.kind };
    if (msg.reply_to !== undefined) options.reply_to = msg.reply_to;
    if (msg.media) options.media = msg.media;
    this.client.send(msg.conv, msg.body, options).then(
      (r) => {
        const { status: _status, error: _error, ...sent } = msg;
        const conv = this.conversation(msg.conv);
        conv.addMessage({ ...sent, seq: r.seq, ts: r.ts }, this.me);
        this.#changed();
      },
      (err: unknown) => {
        if (this.#disposed) return;
        // `reconnectNow` closed the client and connected it again: write the message again.
        if (err instanceof ParleyError && err.code === 'closed' && this.client.state !== ClientState.Closed) {
          this.#dispatch(msg);
          return;
        }
        msg.status = 'failed';
        msg.error = err instanceof Error ? err.message : String(err);
        this.#changed();
      },
    );
  }

  #wireClient(): void {
    const c = this.client;
    c.on('state', ({ to }) => {
      const view: ConnectionView = { ...this.connection, state: to };
      if (to !== ClientState.Connecting) delete view.retryAt;
      if (to !== ClientState.Closed) delete view.stopped;
      this.connection = view;
      this.#changed();
    });
    c.on('disconnected', (d: DisconnectInfo) => {
      const view: ConnectionView = { ...this.connection };
      if (d.willReconnect && d.delayMs !== undefined) view.retryAt = Date.now() + d.delayMs;
      if (!d.willReconnect) view.stopped = d.reason;
      this.connection = view;
      this.#changed();
    });
    c.on('connected', (_r: ConnectResult) => {
      this.connection = { ...this.connection, everConnected: true };
      this.#changed();
    });
    c.on('synced', () => {
      void this.#refreshConversations();
      // The open conversation's first load may have failed while offline (or been cut by a
      // reconnect): load it now; its receipts may have moved meanwhile too.
      if (this.openId !== null) this.open(this.openId);
    });
    c.on('resync_required', () => {
      for (const conv of this.conversations.values()) conv.resetTimeline();
      if (this.openId) this.open(this.openId);
      void this.#refreshConversations();
    });
    c.on('message', (m) => this.#onMessage(m));
    c.on('receipt', (r) => {
      this.conversation(r.conv).addReceipt(r.user, r.kind, r.seq, this.me);
      this.#changed();
    });
    c.on('typing', (t) => {
      const conv = this.conversation(t.conv);
      if (t.state === 'start') conv.typing.set(t.user, Date.now() + TYPING_TTL_MS);
      else conv.typing.delete(t.user);
      this.#watchTyping();
      this.#changed();
    });
    c.on('presence', () => this.#changed());
  }

  #onMessage(m: MessageEvent): void {
    const conv = this.conversation(m.conv);
    const isNew = conv.lastSeq === 0 && conv.last === undefined;
    conv.addMessage(fromWire(m), this.me);
    const sys = parseSystemMessage(m);
    if (sys) {
      const me = this.me;
      if (sys.event === 'created' || sys.event === 'renamed') conv.name = sys.name;
      if (sys.event === 'members_added' && sys.users.includes(me)) conv.active = true;
      if (
        (sys.event === 'members_removed' && sys.users.includes(me)) ||
        (sys.event === 'member_left' && sys.user === me)
      ) {
        conv.active = false;
      }
      conv.changes += 1;
      this.#scheduleRefresh();
    } else if (isNew) {
      // A conversation first seen live: the server knows its name and where this user joined.
      this.#scheduleRefresh();
    }
    if (m.conv === this.openId) this.#markOpenRead();
    this.#changed();
  }

  /** Marks the open conversation read up to its newest message, while the page is visible. */
  #markOpenRead(): void {
    const id = this.openId;
    if (id === null || document.visibilityState !== 'visible') return;
    const conv = this.conversation(id);
    if (conv.lastSeq > conv.read && conv.active) {
      this.client.markRead(id, conv.lastSeq);
      conv.read = conv.lastSeq;
      this.#changed();
    }
  }

  /** The server's conversation list: names, counts and where each user joined. */
  async #refreshConversations(): Promise<void> {
    let list: Awaited<ReturnType<ParleyClient['conversations']>>['conversations'];
    try {
      list = (await this.client.conversations({ limit: 200 })).conversations;
    } catch {
      return; // The next `synced` tries again.
    }
    const peers: string[] = [];
    for (const s of list) {
      const conv = this.conversation(s.conv);
      conv.applySummary(s);
      // A read marked here while the receipt could not be written (offline, reconnect): write it again.
      if (conv.read > s.read && conv.read <= conv.lastSeq) this.client.markRead(s.conv, conv.read);
      if (conv.peer && conv.peer !== this.me) peers.push(conv.peer);
    }
    this.#subscribePresence(peers);
    this.#changed();
    // Previews of conversations whose newest message this tab has not seen.
    await Promise.all(
      list
        .filter((s) => s.last_seq > 0 && this.conversation(s.conv).last?.seq !== s.last_seq)
        .map((s) =>
          this.client.history(s.conv, { limit: 1 }).then(
            (r) => this.conversation(s.conv).addHistory(r.messages, this.me),
            () => {},
          ),
        ),
    );
    this.#changed();
  }

  #scheduleRefresh(): void {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = setTimeout(() => void this.#refreshConversations(), 250);
  }

  async #loadLatest(conv: Conversation): Promise<void> {
    conv.loading = true;
    try {
      const r = await this.client.history(conv.id, { limit: PAGE });
      conv.addHistory(r.messages, this.me);
      conv.loaded = true;
      conv.hasMore = r.more;
      this.#markOpenRead();
    } catch (err) {
      conv.loading = false;
      if (err instanceof ParleyError && err.code === 'forbidden') conv.active = false;
      else if (!(err instanceof ParleyError && err.code === 'closed'))
        this.report('Could not load messages', err);
    }
    this.#changed();
  }

  async #loadReceipts(conv: Conversation): Promise<void> {
    try {
      conv.applyReceipts(await this.client.receipts(conv.id), this.me);
      this.#changed();
    } catch {
      // Ticks then show "sent" until receipt events arrive.
    }
  }

  #subscribePresence(users: string[]): void {
    const known = new Set(this.client.presenceSubscriptions);
    const fresh = [...new Set(users)].filter((u) => !known.has(u));
    if (fresh.length > 0) void this.client.subscribePresence(fresh).catch(() => {});
  }

  /** Expires typing indicators: the sender may have gone without a `stop`. */
  #watchTyping(): void {
    if (this.#typingTimer !== undefined) return;
    this.#typingTimer = setInterval(() => {
      const now = Date.now();
      let any = false;
      for (const conv of this.conversations.values()) if (conv.typists(now).length > 0) any = true;
      if (!any) {
        clearInterval(this.#typingTimer);
        this.#typingTimer = undefined;
      }
      this.#changed();
    }, 1000);
  }

  /** Tells the user that something failed (the alert region shows it until dismissed). */
  report(what: string, err: unknown): void {
    const detail = err instanceof Error ? err.message : String(err);
    this.notice = `${what}: ${detail}`;
    this.#changed();
  }

  #changed(): void {
    this.version += 1;
    if (this.#notifyQueued) return;
    this.#notifyQueued = true;
    queueMicrotask(() => {
      this.#notifyQueued = false;
      for (const l of this.#listeners) l();
    });
  }
}
