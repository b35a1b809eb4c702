// The chat client: one WebSocket at a time to one of the gateways, authenticated with a
// tenant token, that survives losing it (backoff across the gateways, rooms resumed with
// since/usince, unacknowledged sends resent with their cids) and turns the server's frames
// into ordered, de-duplicated events. The wire protocol is PROTOCOL.md v1 + v1.1.
import { Backoff } from './backoff';
import { Emitter } from './emitter';
import { IndexedDbOutboxStore, MemoryOutboxStore } from './outbox';
import { RoomSequencer } from './sequencer';
import { gatewayUrl, tokenExp, tokenSource, tokenTenant, type TokenSource } from './token';
import type {
  ChatClient, ChatClientOptions, ChatErrorInfo, ChatEvents, ChatMessage,
  ChatUpdate, ConnectionState, JoinedInfo, OutboxStore, PendingMessage, RoomState, RoomSummary,
  SendAck, Unsubscribe,
} from './types';

type Frame = Record<string, unknown> & { type: string };
type Timer = ReturnType<typeof setTimeout>;
interface Waiter<T> { resolve(v: T): void; reject(e: ChatErrorInfo): void }

/** Errors about a send that sending it again cannot fix: the message leaves the outbox. */
const PERMANENT = ['too_large', 'forbidden', 'bad_request', 'not_found'];
const PING_IDLE_MS = 25000; // a ping frame after this long without sending anything
const DEAD_MS = 60000; // no frame at all for this long: the connection is dead
const TYPING_MS = 2000; // the gateway forwards typing at most this often anyway
const RETRY_MS = 2000; // a send refused for now (rate_limited, internal) is tried again after
const LIMITED_MS = 10000; // added before reconnecting after 4003 (tenant connection limit), 4004
const PAGE = 100; // history page of a gap fill (the protocol's maximum)
const TX_RATE = 16; // frames per second a connection sends at most, after
const TX_BURST = 32; // a burst of this many (the gateway: 20/s, burst 40)

interface Room {
  name: string;
  order: RoomSequencer;
  /** Joined once: later joins resume with since/usince. */
  known: boolean;
  /** Joined on the current connection. */
  active: boolean;
  joinRid?: string;
  waiters: Waiter<JoinedInfo>[];
  info?: JoinedInfo;
  read: number;
  unread: number;
  /** joined.seq: joined.unread already counts the messages up to it. */
  counted: number;
  online: Set<string>;
  filling: boolean;
  lastTyping: number;
}

interface Request {
  frame: Frame;
  sent: boolean;
  timer: Timer;
  resolve(f: Frame): void;
  reject(e: ChatErrorInfo): void;
}

function randomId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function withoutType<T>(f: Frame): T {
  const { type: _type, ...rest } = f;
  return rest as T;
}

function err(code: string, message: string, rid?: string): ChatErrorInfo {
  return rid ? { code, message, rid } : { code, message };
}

export class Client implements ChatClient {
  private _state: ConnectionState = 'idle';
  private _user?: string;
  private _tenant?: string;
  private _vapid?: string;
  private readonly events = new Emitter<ChatEvents>();

  private readonly WS: new (url: string) => WebSocket;
  private readonly gateways: string[];
  private gwNext = 0;
  private readonly getToken: TokenSource;
  private readonly tenantOption?: string; // options.tenant: else the token's tid
  private token?: string;
  private needToken = true;
  private authRetried = false;
  private tokenWarned = false;
  private readonly backoff: Backoff;
  private readonly timeoutMs: number;
  private readonly refreshBeforeMs: number;
  private readonly connectTimeoutMs: number;

  private ws?: WebSocket;
  private welcomed = false;
  /** Bumped by every attempt and by close(): late callbacks of older ones are ignored. */
  private epoch = 0;
  private closed = false;
  private attemptTimer?: Timer;
  private retryTimer?: Timer;
  private refreshTimer?: Timer;
  private keepalive?: ReturnType<typeof setInterval>;
  private lastRx = 0;
  private lastTx = 0;
  private txQueue: string[] = [];
  private txTokens = TX_BURST;
  private txAt = 0;
  private txTimer?: Timer;
  private connectWaiters: Waiter<void>[] = [];

  private readonly rooms_ = new Map<string, Room>();
  private readonly requests = new Map<string, Request>();
  /** Read marks sent for rooms not joined (forward only, as for joined ones). */
  private readonly readMarks = new Map<string, number>();
  private ridNext = 0;
  /* The message service takes a repeated rid of an edit, delete or react as a resend and
   * answers it with the first answer: ids must not repeat across clients of the same user
   * (a reload starts a new client), so each client numbers its requests under a random prefix. */
  private readonly ridPrefix = randomId().slice(0, 10);

  private store: OutboxStore;
  private readonly loaded: Promise<void>;
  private outbox: PendingMessage[] = [];
  private readonly sendWaiters = new Map<string, Waiter<SendAck>>();
  /** cids sent on the current connection and not answered yet. */
  private readonly inflight = new Set<string>();
  /** cids refused for now (rate_limited, internal), waiting for their retry. */
  private readonly retrying = new Set<string>();
  private lastCreated = 0;
  /** tenant and user of the outbox's messages (PendingMessage.owner), once known. */
  private owner?: string;

  /** Timers of retries and deadlines, cleared by close() (they would keep node running). */
  private readonly timers = new Set<Timer>();

  private readonly onOnline = () => this.online();
  private readonly onOffline = () => this.offline();

  constructor(options: ChatClientOptions) {
    if (!options.gateways?.length) throw new Error('chat-sdk: gateways is required');
    const WS = (options.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket) as
      (new (url: string) => WebSocket) | undefined;
    if (!WS) throw new Error('chat-sdk: no WebSocket implementation (options.WebSocket)');
    this.WS = WS;
    // A random order spreads clients over the gateways; rotation then tries each in turn.
    this.gateways = [...options.gateways].sort(() => Math.random() - 0.5);
    this.getToken = tokenSource(options.tokenUrl, options.tokenProvider);
    this.tenantOption = options.tenant;
    this.backoff = new Backoff(options.backoff?.initialMs ?? 500, options.backoff?.maxMs ?? 30000);
    this.timeoutMs = options.requestTimeoutMs ?? 15000;
    this.refreshBeforeMs = (options.refreshBeforeExpirySec ?? 60) * 1000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10000;
    const s = options.storage ?? (globalThis.indexedDB ? 'indexeddb' : 'memory');
    this.store = s === 'memory' ? new MemoryOutboxStore()
      : s === 'indexeddb' ? new IndexedDbOutboxStore('chat-sdk-outbox:' + (options.storageKey ?? 'default'))
      : s;
    this.loaded = this.store.load().then((list) => {
      for (const m of list) {
        if (!this.outbox.some((o) => o.cid === m.cid)) this.outbox.push(m);
        this.lastCreated = Math.max(this.lastCreated, m.createdAt);
      }
      this.outbox.sort((a, b) => a.createdAt - b.createdAt);
    }, (e) => {
      // e.g. IndexedDB refused (private browsing): keep working, without persistence.
      console.warn('chat-sdk: the outbox store cannot be read; pending messages are kept in memory', e);
      this.store = new MemoryOutboxStore();
    });
  }

  get state(): ConnectionState { return this._state; }
  get user(): string | undefined { return this._user; }
  get tenant(): string | undefined { return this._tenant; }
  get vapidKey(): string | undefined { return this._vapid; }

  on<K extends keyof ChatEvents>(event: K, handler: (e: ChatEvents[K]) => void): Unsubscribe {
    return this.events.on(event, handler);
  }

  private emit<K extends keyof ChatEvents>(event: K, e: ChatEvents[K]): void {
    this.events.emit(event, e);
  }

  private setState(s: ConnectionState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s);
  }

  // ---- connection ----

  connect(): Promise<void> {
    if (this._state === 'open') return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    if (this._state === 'idle' || this._state === 'closed') {
      this.closed = false;
      if (typeof window !== 'undefined' && window.addEventListener) {
        window.addEventListener('online', this.onOnline);
        window.addEventListener('offline', this.onOffline);
      }
      void this.attempt();
    }
    return p;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.epoch++;
    if (typeof window !== 'undefined' && window.removeEventListener) {
      window.removeEventListener('online', this.onOnline);
      window.removeEventListener('offline', this.onOffline);
    }
    const ws = this.ws;
    this.drop();
    if (ws) ws.close(1000);
    this.timers.forEach(clearTimeout);
    this.timers.clear();
    const closed = err('closed', 'the client was closed');
    for (const [rid, r] of this.requests) {
      clearTimeout(r.timer);
      r.reject({ ...closed, rid });
    }
    this.requests.clear();
    for (const r of this.rooms_.values()) r.waiters.splice(0).forEach((w) => w.reject(closed));
    // The messages stay in the outbox (sent by the next client over the same store).
    for (const w of this.sendWaiters.values()) w.reject(closed);
    this.sendWaiters.clear();
    this.connectWaiters.splice(0).forEach((w) => w.reject(closed));
    this.setState('closed');
  }

  /** One attempt: a token, then a socket to the next gateway, then auth, within a deadline. */
  private async attempt(): Promise<void> {
    if (this.closed) return;
    const epoch = ++this.epoch;
    this.setState('connecting');
    clearTimeout(this.attemptTimer);
    this.attemptTimer = setTimeout(() => {
      if (epoch !== this.epoch || this.welcomed) return;
      if (this.ws) this.lost(this.ws, 0);
      else this.retry(0); // the token did not come in time
    }, this.connectTimeoutMs);
    try {
      await this.loaded;
      const exp = this.token ? tokenExp(this.token) : undefined;
      if (this.needToken || !this.token || (exp !== undefined && exp * 1000 < Date.now() + 5000)) {
        const t = await this.getToken();
        if (epoch !== this.epoch) return;
        this.token = t;
        this.needToken = false;
      }
    } catch (e) {
      if (epoch !== this.epoch) return;
      // Once per outage: the backoff keeps asking, the console need not keep saying so.
      if (!this.tokenWarned) console.warn('chat-sdk: no token; retrying with backoff', e);
      this.tokenWarned = true;
      this.retry(0);
      return;
    }
    const url = gatewayUrl(this.gateways[this.gwNext++ % this.gateways.length],
      this.tenantOption ?? (this.token ? tokenTenant(this.token) : undefined));
    let ws: WebSocket;
    try {
      ws = new this.WS(url);
    } catch (e) {
      console.warn('chat-sdk: cannot open', url, e);
      this.retry(0);
      return;
    }
    this.ws = ws;
    this.welcomed = false;
    this.lastRx = this.lastTx = this.txAt = Date.now();
    this.txTokens = TX_BURST; // the gateway's bucket is per connection
    const token = this.token;
    ws.onopen = () => { if (this.ws === ws) this.sendRaw({ type: 'auth', token }); };
    ws.onmessage = (ev: MessageEvent) => { if (this.ws === ws) this.onData(ev.data); };
    ws.onclose = (ev: CloseEvent) => { if (this.ws === ws) this.lost(ws, ev.code); };
    ws.onerror = () => { /* onclose follows with the code */ };
  }

  /** Forgets the current socket and everything that was bound to it. */
  private drop(): void {
    const ws = this.ws;
    this.ws = undefined;
    this.welcomed = false;
    clearTimeout(this.attemptTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    clearInterval(this.keepalive);
    // Frames not sent yet go with the socket, like those sent and not answered.
    this.txQueue = [];
    clearTimeout(this.txTimer);
    this.txTimer = undefined;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      // Kept as a no-op: closing a socket that is still connecting makes node's `ws` emit an
      // error, which would be thrown without a listener.
      ws.onerror = () => {};
    }
    for (const r of this.rooms_.values()) {
      r.active = false;
      r.joinRid = undefined; // the resume joins it again; its callers keep waiting
    }
    this.inflight.clear();
    // What was sent is lost with the socket; requests not sent yet wait for the next one.
    for (const [rid, q] of this.requests) {
      if (!q.sent) continue;
      clearTimeout(q.timer);
      this.requests.delete(rid);
      q.reject(err('disconnected', 'the connection was lost before the answer', rid));
    }
  }

  /** The socket closed (code from the server) or was found dead (code 0): reconnect. */
  private lost(ws: WebSocket, code: number, now = false): void {
    if (this.ws !== ws) return;
    this.drop();
    try { ws.close(); } catch { /* already closing */ }
    if (code === 4001) this.needToken = true;
    this.retry(code, now);
  }

  /** Schedules the next attempt: backoff with full jitter, longer after 4003 (connection limit)
   *  and 4004 (origin not allowed: only a settings change helps), at once after
   *  a first 4001 (a new token may be all it takes) or when asked (now). */
  private retry(code: number, now = false): void {
    if (this.closed) return;
    this.epoch++;
    clearTimeout(this.attemptTimer);
    clearTimeout(this.retryTimer);
    this.setState('reconnecting');
    let delay = this.backoff.next();
    if (code === 4003 || code === 4004) delay += LIMITED_MS;
    if (code === 4001 && !this.authRetried) {
      this.authRetried = true;
      delay = 0;
    }
    if (now) delay = 0;
    this.retryTimer = setTimeout(() => void this.attempt(), delay);
  }

  private online(): void {
    // Back online: try at once rather than when the backoff says; an attempt still
    // waiting for an answer on the old network is abandoned.
    if (this.closed || this.welcomed) return;
    if (this.ws) this.lost(this.ws, 0, true);
    else this.retry(0, true);
  }

  private offline(): void {
    if (this.closed) return;
    if (this.ws) this.lost(this.ws, 0);
    else this.setState('reconnecting');
  }

  private later(f: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  /** Queues a frame on the open socket (false if there is none). Frames leave at most at
   *  TX_RATE per second after a burst of TX_BURST, below the gateway's limit (20/s, burst
   *  40), so that a resume of many rooms with a full outbox is not answered rate_limited or
   *  closed with 4008. */
  private sendRaw(f: Frame): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) return false;
    this.txQueue.push(JSON.stringify(f));
    this.txPump();
    return true;
  }

  private txPump(): void {
    const ws = this.ws;
    if (!ws) return;
    const now = Date.now();
    this.txTokens = Math.min(TX_BURST, this.txTokens + ((now - this.txAt) * TX_RATE) / 1000);
    this.txAt = now;
    while (this.txQueue.length && this.txTokens >= 1) {
      ws.send(this.txQueue.shift()!);
      this.txTokens--;
      this.lastTx = now;
    }
    if (this.txQueue.length && !this.txTimer) {
      this.txTimer = setTimeout(() => {
        this.txTimer = undefined;
        this.txPump();
      }, Math.ceil(((1 - this.txTokens) * 1000) / TX_RATE));
    }
  }

  private startKeepalive(ws: WebSocket): void {
    clearInterval(this.keepalive);
    this.keepalive = setInterval(() => {
      const now = Date.now();
      if (now - this.lastRx > DEAD_MS) this.lost(ws, 0);
      else if (now - this.lastTx > PING_IDLE_MS) this.sendRaw({ type: 'ping' });
    }, 5000);
  }

  /** Refreshes the token before it expires. */
  private scheduleRefresh(exp?: number): void {
    clearTimeout(this.refreshTimer);
    if (!exp) return;
    const left = exp * 1000 - Date.now();
    // A token shorter-lived than refreshBeforeExpirySec is refreshed half-way instead.
    const delay = Math.max(1000, left > this.refreshBeforeMs ? left - this.refreshBeforeMs : left / 2);
    this.refreshTimer = setTimeout(() => void this.refresh(exp), delay);
  }

  private async refresh(exp: number): Promise<void> {
    const ws = this.ws;
    let token: string;
    try {
      token = await this.getToken();
    } catch (e) {
      console.warn('chat-sdk: token refresh failed; trying again', e);
      if (this.ws === ws) this.scheduleRefresh(exp);
      return;
    }
    this.token = token; // the next connection uses it in any case
    if (this.ws !== ws || !this.welcomed) return;
    try {
      await this.request({ type: 'refresh', token });
      this.scheduleRefresh(tokenExp(token) ?? exp);
    } catch (e) {
      // Refused (a gateway older than the refresh frame answers bad_request; a token the
      // gateway does not take, unauthorized): the new token is put to use by reconnecting at
      // once: rooms resume with since/usince and the outbox is resent, so nothing is lost.
      if ((e as ChatErrorInfo).code !== 'disconnected' && ws && this.ws === ws) this.lost(ws, 0, true);
    }
  }

  // ---- frames from the server ----

  private onData(data: unknown): void {
    let f: Frame;
    try {
      f = JSON.parse(String(data));
    } catch {
      return;
    }
    if (!f || typeof f.type !== 'string') return;
    this.lastRx = Date.now();
    this.emit('frame', f);
    switch (f.type) {
      case 'welcome': return this.onWelcome(f);
      case 'joined': return this.onJoined(f);
      case 'msg': return this.onMsg(withoutType<ChatMessage>(f));
      case 'update': return this.onUpdate(f);
      case 'ack': return this.onAck(f);
      case 'error': return this.onError(f);
      case 'left': return this.onLeft(f);
      case 'presence': return this.onPresence(f);
      case 'read': return this.onRead(f);
      case 'typing':
        this.emit('typing', withoutType<ChatEvents['typing']>(f));
        return;
      default:
        this.answer(f); // history, rooms, ok, pong
    }
  }

  private onWelcome(f: Frame): void {
    const ws = this.ws!;
    this.welcomed = true;
    clearTimeout(this.attemptTimer);
    this.backoff.reset();
    this.authRetried = false;
    this.tokenWarned = false;
    this._user = f.user as string;
    this._tenant = f.tenant as string;
    this._vapid = f.vapid as string | undefined;
    this.adopt(JSON.stringify([this._tenant, this._user]));
    this.scheduleRefresh(f.exp as number | undefined);
    this.startKeepalive(ws);
    // Resume first, tell after: a handler that joins or sends meanwhile is not sent twice.
    for (const r of this.rooms_.values()) this.sendJoin(r);
    this.flush();
    for (const q of this.requests.values()) if (!q.sent) q.sent = this.sendRaw(q.frame);
    this.emit('welcome', withoutType<ChatEvents['welcome']>(f));
    if (this.ws !== ws) return; // a handler closed the client
    this.setState('open');
    this.connectWaiters.splice(0).forEach((w) => w.resolve());
  }

  /** Requests (with rid) answered by a frame of their own: resolves the one with that rid. */
  private answer(f: Frame): boolean {
    const rid = f.rid as string | undefined;
    const q = rid !== undefined ? this.requests.get(rid) : undefined;
    if (!q) return false;
    clearTimeout(q.timer);
    this.requests.delete(rid!);
    q.resolve(f);
    return true;
  }

  private request(frame: Frame): Promise<Frame> {
    if (this.closed) return Promise.reject(err('closed', 'the client was closed'));
    const rid = this.ridPrefix + 'r' + (++this.ridNext).toString(36);
    frame.rid = rid;
    return new Promise((resolve, reject) => {
      const q: Request = {
        frame, resolve, reject, sent: false,
        timer: setTimeout(() => {
          this.requests.delete(rid);
          reject(err('timeout', `no answer within ${this.timeoutMs} ms`, rid));
        }, this.timeoutMs),
      };
      this.requests.set(rid, q);
      if (this.welcomed) q.sent = this.sendRaw(frame);
    });
  }

  private onError(f: Frame): void {
    const e = withoutType<ChatErrorInfo>(f);
    const pm = e.cid !== undefined ? this.outbox.find((m) => m.cid === e.cid) : undefined;
    if (pm) return this.sendRefused(pm, e);
    if (e.rid !== undefined) {
      const q = this.requests.get(e.rid);
      if (q) {
        clearTimeout(q.timer);
        this.requests.delete(e.rid);
        q.reject(e);
        return;
      }
      for (const r of this.rooms_.values()) {
        if (r.joinRid === e.rid) return this.joinRefused(r, e);
      }
    }
    this.emit('error', e);
  }

  // ---- rooms ----

  private sendJoin(r: Room): void {
    const rid = this.ridPrefix + 'j' + (++this.ridNext).toString(36);
    r.joinRid = rid;
    const f: Frame = { type: 'join', room: r.name, rid };
    if (r.known) {
      f.since = r.order.seq;
      f.usince = r.order.useq;
    }
    if (!this.sendRaw(f)) return;
    // Unanswered: the callers hear of it; the room stays, to be joined on the next connection.
    this.later(() => {
      if (r.joinRid !== rid) return;
      r.waiters.splice(0).forEach((w) => w.reject(err('timeout', `no answer within ${this.timeoutMs} ms`, rid)));
    }, this.timeoutMs);
  }

  private joinRefused(r: Room, e: ChatErrorInfo): void {
    r.joinRid = undefined;
    if (PERMANENT.includes(e.code)) {
      // forbidden, not_found...: stop resuming it; its messages cannot be sent either.
      this.rooms_.delete(r.name);
      r.waiters.splice(0).forEach((w) => w.reject(e));
      for (const m of this.outbox.filter((m) => m.room === r.name)) this.sendRefused(m, e);
      this.emit('left', { room: r.name, reason: e.code });
      return;
    }
    const epoch = this.epoch;
    this.later(() => { if (epoch === this.epoch && this.rooms_.get(r.name) === r) this.sendJoin(r); }, RETRY_MS);
  }

  private onJoined(f: Frame): void {
    const r = this.rooms_.get(f.room as string);
    if (!r) return;
    const info = withoutType<JoinedInfo & { rid?: string }>(f);
    delete info.rid;
    const resumed = r.known;
    if (resumed) r.order.joinedResume(info.seq, info.useq ?? 0);
    else r.order.joinedFresh(info.seq, info.useq ?? 0);
    r.known = r.active = true;
    r.joinRid = undefined;
    r.info = info;
    // joined.unread counts from the stored read mark; without one, from since only: then it
    // adds to what this client counted before.
    r.unread = info.read || !resumed ? info.unread : r.unread + info.unread;
    r.counted = info.seq;
    r.online = new Set(info.online);
    // A read mark moved while disconnected is sent now.
    if (r.read > (info.read ?? 0)) this.sendRaw({ type: 'read', room: r.name, seq: r.read });
    else r.read = info.read ?? 0;
    this.emit('joined', info);
    r.waiters.splice(0).forEach((w) => w.resolve(info));
    this.flush(r.name);
    void this.fill(r);
  }

  private onMsg(m: ChatMessage): void {
    // Our own message back (this or another device) is as good as its ack.
    if (m.cid !== undefined && m.from === this._user) {
      this.acked({ cid: m.cid, room: m.room, seq: m.seq, id: m.id, ts: m.ts });
    }
    const r = this.rooms_.get(m.room);
    if (!r) return;
    for (const d of r.order.push(m)) this.deliver(r, d);
    void this.fill(r);
  }

  private deliver(r: Room, m: ChatMessage): void {
    if (m.from !== this._user && m.seq > r.read && m.seq > r.counted) r.unread++;
    this.emit('message', m);
  }

  /** Reads the messages of a gap from history (pages of at most 100, newest first) and
   *  delivers them, then what waited behind them. */
  private async fill(r: Room): Promise<void> {
    const target = r.order.gap();
    if (r.filling || !r.active || !target || this.rooms_.get(r.name) !== r) return; // left: done
    r.filling = true;
    const epoch = this.epoch;
    let ok = false;
    try {
      const got: ChatMessage[] = [];
      for (let before = target; before - 1 > r.order.seq;) {
        const page = await this.history(r.name, { before, limit: Math.min(PAGE, before - 1 - r.order.seq) });
        got.push(...page.msgs);
        if (!page.msgs.length || !page.more) break;
        before = page.msgs[0].seq;
      }
      if (this.rooms_.get(r.name) === r) for (const d of r.order.filled(got, target)) this.deliver(r, d);
      ok = true;
    } catch {
      // Lost with the connection: the resume join brings the missing part again.
    } finally {
      r.filling = false;
    }
    if (ok) void this.fill(r);
    else if (epoch === this.epoch) this.later(() => void this.fill(r), RETRY_MS);
  }

  private onUpdate(f: Frame): void {
    const u = withoutType<ChatUpdate & { rid?: string }>(f);
    if (u.rid !== undefined) this.answer(f);
    delete u.rid;
    const r = this.rooms_.get(u.room);
    if (!r) return;
    const v = r.order.update(u);
    if (v === 'apply') this.emit('update', u);
    else if (v === 'gap' && r.active && !r.joinRid) {
      // Updates were lost: a join with since/usince resends the current state of every
      // message changed since the last useq applied.
      r.active = false;
      this.sendJoin(r);
    }
  }

  private onLeft(f: Frame): void {
    const room = f.room as string;
    this.answer(f);
    if (f.reason !== undefined) this.rooms_.delete(room);
    this.emit('left', f.reason !== undefined ? { room, reason: f.reason as string } : { room });
  }

  private onPresence(f: Frame): void {
    const p = withoutType<ChatEvents['presence']>(f);
    const r = this.rooms_.get(p.room);
    if (r) {
      if (p.online) r.online.add(p.user);
      else r.online.delete(p.user);
    }
    this.emit('presence', p);
  }

  private onRead(f: Frame): void {
    const e = withoutType<ChatEvents['read']>(f);
    const r = this.rooms_.get(e.room);
    // Our own mark moved on another device.
    if (r && e.user === this._user && e.seq > r.read) {
      r.read = e.seq;
      if (e.seq >= r.order.seq) r.unread = 0;
    }
    this.emit('read', e);
  }

  join(room: string): Promise<JoinedInfo> {
    let r = this.rooms_.get(room);
    if (r?.active && r.info) return Promise.resolve(r.info);
    if (this.closed) return Promise.reject(err('closed', 'the client was closed'));
    if (!r) {
      r = {
        name: room, order: new RoomSequencer(), known: false, active: false, waiters: [],
        read: 0, unread: 0, counted: 0, online: new Set(), filling: false, lastTyping: 0,
      };
      this.rooms_.set(room, r);
      if (this.welcomed) this.sendJoin(r);
    }
    const rr = r;
    return new Promise((resolve, reject) => rr.waiters.push({ resolve, reject }));
  }

  async leave(room: string): Promise<void> {
    const r = this.rooms_.get(room);
    this.rooms_.delete(room);
    r?.waiters.splice(0).forEach((w) => w.reject(err('left', 'left the room before it was joined')));
    if (this.welcomed) await this.request({ type: 'leave', room });
  }

  room(room: string): RoomState | undefined {
    const r = this.rooms_.get(room);
    if (!r) return undefined;
    return {
      room, joined: r.active, seq: r.order.seq, useq: r.order.useq, read: r.read,
      unread: r.unread, online: new Set(r.online),
    };
  }

  // ---- the outbox ----

  /** Messages of this tenant and user (all, before the first welcome). */
  private mine(m: PendingMessage): boolean {
    return !this.owner || !m.owner || m.owner === this.owner;
  }

  /** At the first welcome: messages queued before anyone was known become this user's. */
  private adopt(owner: string): void {
    if (this.owner === owner) return;
    this.owner = owner;
    for (const m of this.outbox) {
      if (!m.owner) {
        m.owner = owner;
        this.persist(m);
      }
    }
  }

  private persist(m: PendingMessage): void {
    this.store.put(m).catch((e) => console.warn('chat-sdk: outbox write failed', e));
  }

  async send(room: string, text: string): Promise<SendAck> {
    await this.loaded;
    if (this.closed) throw err('closed', 'the client was closed');
    // createdAt orders the outbox: kept strictly increasing, also across reloads.
    this.lastCreated = Math.max(Date.now(), this.lastCreated + 1);
    const m: PendingMessage = { cid: randomId(), room, text, createdAt: this.lastCreated, attempts: 0 };
    if (this.owner) m.owner = this.owner;
    const acked = new Promise<SendAck>((resolve, reject) => this.sendWaiters.set(m.cid, { resolve, reject }));
    // Stored before it is sent: a reload from here on resends it with the same cid.
    try {
      await this.store.put(m);
    } catch (e) {
      console.warn('chat-sdk: the message could not be stored; it is kept in memory only', e);
    }
    this.outbox.push(m);
    this.outbox.sort((a, b) => a.createdAt - b.createdAt);
    this.emitOutbox();
    this.flush(room);
    return acked;
  }

  pending(room?: string): PendingMessage[] {
    return this.outbox.filter((m) => this.mine(m) && (room === undefined || m.room === room))
      .map((m) => ({ ...m }));
  }

  private emitOutbox(): void {
    this.emit('outbox', this.pending());
  }

  /** Sends what can go now, oldest first per room. A joined room takes them all at once (one
   *  socket keeps their order); a room not joined gets one at a time: each waits at the
   *  gateway for a lookup of the room's access (those of one room take turns there, in order),
   *  so queuing more would gain little. */
  private flush(room?: string): void {
    if (!this.welcomed) return;
    const blocked = new Set<string>();
    for (const m of this.outbox) {
      if ((room !== undefined && m.room !== room) || !this.mine(m) || blocked.has(m.room)) continue;
      const r = this.rooms_.get(m.room);
      if (r && !r.active) continue; // sent once joined (a private room requires it)
      if (this.retrying.has(m.cid)) {
        blocked.add(m.room);
        continue;
      }
      if (!r) blocked.add(m.room);
      if (this.inflight.has(m.cid)) continue;
      if (!this.sendRaw({ type: 'send', room: m.room, cid: m.cid, text: m.text })) return;
      this.inflight.add(m.cid);
      m.attempts++;
      this.persist(m);
      this.emitOutbox();
    }
  }

  private onAck(f: Frame): void {
    if (f.op !== undefined || f.cid === undefined) {
      this.answer(f); // edit, delete, react
      return;
    }
    const a = withoutType<SendAck & { rid?: string }>(f);
    this.acked({ cid: a.cid, room: a.room, seq: a.seq, id: a.id, ts: a.ts });
  }

  /** A send is stored (its ack, or its msg came first): out of the outbox. */
  private acked(a: SendAck): void {
    const i = this.outbox.findIndex((m) => m.cid === a.cid);
    if (i < 0) return; // already acked (ack and msg both come)
    this.outbox.splice(i, 1);
    this.inflight.delete(a.cid);
    this.store.remove(a.cid).catch((e) => console.warn('chat-sdk: outbox write failed', e));
    this.sendWaiters.get(a.cid)?.resolve(a);
    this.sendWaiters.delete(a.cid);
    this.emit('ack', a);
    this.emitOutbox();
    this.flush(a.room);
  }

  private sendRefused(m: PendingMessage, e: ChatErrorInfo): void {
    this.inflight.delete(m.cid);
    if (PERMANENT.includes(e.code)) {
      this.outbox.splice(this.outbox.indexOf(m), 1);
      this.store.remove(m.cid).catch((x) => console.warn('chat-sdk: outbox write failed', x));
      const w = this.sendWaiters.get(m.cid);
      this.sendWaiters.delete(m.cid);
      if (w) w.reject(e);
      else this.emit('error', e); // queued before a reload: nobody else hears of it
      this.emitOutbox();
      this.flush(m.room);
      return;
    }
    // rate_limited, internal: the same cid again a little later (never stored twice).
    this.retrying.add(m.cid);
    this.later(() => {
      this.retrying.delete(m.cid);
      this.flush(m.room);
    }, RETRY_MS + Math.random() * RETRY_MS);
  }

  // ---- requests ----

  async history(room: string, opts: { before?: number; limit?: number } = {}):
  Promise<{ msgs: ChatMessage[]; more: boolean }> {
    const f: Frame = { type: 'history', room };
    if (opts.before !== undefined) f.before = opts.before;
    if (opts.limit !== undefined) f.limit = opts.limit;
    const a = await this.request(f);
    return { msgs: (a.msgs as Frame[]).map((m) => withoutType<ChatMessage>(m)), more: !!a.more };
  }

  async rooms(opts: { limit?: number; cursor?: string } = {}): Promise<{ rooms: RoomSummary[]; next?: string }> {
    const f: Frame = { type: 'rooms' };
    if (opts.limit !== undefined) f.limit = opts.limit;
    if (opts.cursor !== undefined) f.cursor = opts.cursor;
    const a = await this.request(f);
    const rooms = (a.rooms as RoomSummary[]).map((s) =>
      s.last ? { ...s, last: withoutType<ChatMessage>(s.last as unknown as Frame) } : s);
    return a.next !== undefined ? { rooms, next: a.next as string } : { rooms };
  }

  typing(room: string): void {
    const r = this.rooms_.get(room);
    const now = Date.now();
    if (!r?.active || now - r.lastTyping < TYPING_MS) return;
    r.lastTyping = now;
    this.sendRaw({ type: 'typing', room });
  }

  read(room: string, seq: number): void {
    const r = this.rooms_.get(room);
    if (!r) {
      // A room not joined (e.g. from rooms()): the gateway takes its read mark too.
      if (seq <= (this.readMarks.get(room) ?? 0)) return;
      if (this.sendRaw({ type: 'read', room, seq })) this.readMarks.set(room, seq);
      return;
    }
    if (seq <= r.read) return;
    r.read = seq;
    if (seq >= r.order.seq) r.unread = 0;
    // Not connected: sent after the resume join (onJoined).
    if (r.active) this.sendRaw({ type: 'read', room, seq });
  }

  async edit(room: string, id: string, text: string): Promise<void> {
    await this.request({ type: 'edit', room, id, text });
  }

  async delete(room: string, id: string): Promise<void> {
    await this.request({ type: 'delete', room, id });
  }

  async react(room: string, id: string, emoji: string, on: boolean): Promise<void> {
    await this.request({ type: 'react', room, id, emoji, on });
  }

  async pushSubscribe(sub: { endpoint: string; keys: { p256dh: string; auth: string } }): Promise<void> {
    // Only these fields: the gateway refuses unknown ones (PushSubscription.toJSON() also
    // has expirationTime).
    await this.request({ type: 'push_subscribe', endpoint: sub.endpoint,
                         keys: { p256dh: sub.keys.p256dh, auth: sub.keys.auth } });
  }

  async pushUnsubscribe(endpoint: string): Promise<void> {
    await this.request({ type: 'push_unsubscribe', endpoint });
  }
}
