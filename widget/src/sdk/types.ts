// The public API of the chat SDK (chat-sdk.mjs). Everything a tenant's own UI, the widget and
// the tests use is declared here; the implementation is in client.ts and its modules. The
// wire protocol it speaks is proto/ (PROTOCOL.md v1 + v1.1).

/** A message as the server sends it (`msg` frames and `history` entries), in its current state. */
export interface ChatMessage {
  room: string;
  seq: number;
  id: string;
  from: string;
  name?: string;
  text?: string; // absent when deleted or removed
  ts: number; // ms since the epoch
  cid?: string;
  edited?: number; // ts of the last edit
  deleted?: boolean;
  removed?: boolean; // removed by moderation
  reason?: string;
  reactions?: Record<string, string[]>; // emoji -> user ids, in the order they reacted
  useq?: number;
  /** On a system message (from "system") about the room: what happened. */
  notice?: 'room_created' | 'member_added' | 'member_removed' | 'room_renamed' | 'room_deleted' | string;
  /** The member a member_added / member_removed notice is about. */
  target?: string;
}

/** A change to a stored message (`update` frames). */
export interface ChatUpdate {
  room: string;
  id: string;
  seq?: number;
  useq?: number;
  op: 'edit' | 'delete' | 'react' | 'moderate' | string;
  text?: string;
  edited?: number;
  deleted?: boolean;
  removed?: boolean;
  reason?: string;
  reactions?: Record<string, string[]>;
}

/** One entry of the user's room list (`rooms` answer). */
export interface RoomSummary {
  room: string;
  kind: 'public' | 'private' | 'dm';
  name?: string;
  seq: number;
  useq: number;
  read: number;
  unread: number;
  last?: ChatMessage;
}

/** What `join` resolves with (the `joined` frame). */
export interface JoinedInfo {
  room: string;
  seq: number; // the room's latest seq
  useq?: number;
  read?: number; // the user's own read mark
  unread: number;
  online: string[];
  stale?: boolean;
}

/** A message the user sent that is not acknowledged yet (kept in the outbox, survives reloads). */
export interface PendingMessage {
  cid: string;
  room: string;
  text: string;
  createdAt: number; // ms since the epoch
  attempts: number;
  /** Whose message it is (tenant and user, set once the first welcome told them): a store
   *  shared by several users of one browser resends each one's messages only as that user. */
  owner?: string;
}

/** What `send` resolves with (the `ack` frame). */
export interface SendAck {
  cid: string;
  room: string;
  seq: number;
  id: string;
  ts: number;
}

/** A server `error` frame, also the rejection reason of the promise of the request it answers.
 *  The SDK itself rejects with code `timeout` (no answer within requestTimeoutMs),
 *  `disconnected` (the connection was lost after the request was sent), `closed` (close()
 *  was called) and `left` (a join given up by leave()). */
export interface ChatErrorInfo {
  code: 'bad_request' | 'unauthorized' | 'forbidden' | 'not_found' | 'too_large' |
        'rate_limited' | 'internal' | string;
  message: string;
  rid?: string;
  cid?: string;
}

export type ConnectionState =
  | 'idle' // created, connect() not called
  | 'connecting' // opening a socket / authenticating
  | 'open' // welcome received; rooms resumed
  | 'reconnecting' // lost; waiting for the next attempt (backoff)
  | 'closed'; // close() called, or the token was refused for good

/** Persistence of the outbox (and each room's seq/useq marks). IndexedDB in browsers. */
export interface OutboxStore {
  /** Every pending message, oldest first. */
  load(): Promise<PendingMessage[]>;
  put(m: PendingMessage): Promise<void>;
  remove(cid: string): Promise<void>;
}

export interface ChatClientOptions {
  /** WebSocket URLs of the gateways (ws:// or wss://, path /v1/ws); tried in a random order
   *  on connect and rotated on every reconnect. */
  gateways: string[];
  /** The tenant, sent as `?tenant=` on the upgrade so that the gateway can refuse a page whose
   *  origin the tenant did not allow before any frame (HTTP 403). Default: the token's `tid`. */
  tenant?: string;
  /** URL answering GET (with the page's cookies) either `{"token": "<jwt>"}` or the JWT as
   *  text. One of tokenUrl / tokenProvider is required. */
  tokenUrl?: string;
  /** Returns a fresh JWT (called at connect, before expiry and after `unauthorized`). */
  tokenProvider?: () => Promise<string>;
  /** Where pending messages are kept: 'indexeddb' (default in browsers), 'memory' (default
   *  elsewhere) or a store of your own. */
  storage?: 'indexeddb' | 'memory' | OutboxStore;
  /** Namespace of the persisted outbox, e.g. the site's user id (default "default"); the
   *  outbox is also keyed by tenant and user once known. */
  storageKey?: string;
  /** Reconnect backoff: first delay and cap, ms (defaults 500 and 30000), full jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** A request (history, rooms, ...) not answered in this time is rejected (default 15000). */
  requestTimeoutMs?: number;
  /** A connection attempt (socket open and welcome) that takes longer is abandoned for the
   *  next gateway (default 10000 ms). */
  connectTimeoutMs?: number;
  /** Refresh the token this long before `exp` (default 60 s). */
  refreshBeforeExpirySec?: number;
  /** WebSocket implementation (default globalThis.WebSocket; node: the `ws` package). */
  WebSocket?: unknown;
}

/** Events of a client; every handler gets the frame / object named. */
export interface ChatEvents {
  state: ConnectionState;
  welcome: { user: string; tenant: string; session: string; vapid?: string; exp?: number };
  /** A new message, delivered once, in seq order per room (duplicates dropped, gaps filled). */
  message: ChatMessage;
  update: ChatUpdate;
  presence: { room: string; user: string; online: boolean };
  typing: { room: string; user: string; name?: string };
  read: { room: string; user: string; seq: number };
  joined: JoinedInfo;
  left: { room: string; reason?: string };
  /** An `error` frame that answered no pending request (or any, for logging). */
  error: ChatErrorInfo;
  /** The outbox changed (a message queued, sent or acknowledged). */
  outbox: PendingMessage[];
  /** A message was acknowledged (also for sends queued before a reload). */
  ack: SendAck;
  /** Every server frame as received, before any processing. */
  frame: Record<string, unknown> & { type: string };
}

export type ChatEventName = keyof ChatEvents;
export type Unsubscribe = () => void;

/** Per-room state the SDK keeps (read-only for callers). */
export interface RoomState {
  room: string;
  joined: boolean;
  seq: number; // the last seq delivered in order (0: none)
  useq: number; // the last update seq applied
  read: number; // the user's read mark
  unread: number;
  online: Set<string>;
}

export interface ChatClient {
  readonly state: ConnectionState;
  readonly user: string | undefined;
  readonly tenant: string | undefined;
  /** The deployment's VAPID public key (from welcome), for push subscriptions. */
  readonly vapidKey: string | undefined;

  /** Connects (resolves at the first welcome); reconnects by itself until close(). */
  connect(): Promise<void>;
  /** Closes for good (pending messages stay in the outbox). */
  close(): void;

  on<K extends ChatEventName>(event: K, handler: (e: ChatEvents[K]) => void): Unsubscribe;

  /** Joins (and remembers: resumed with since/usince after every reconnect). */
  join(room: string): Promise<JoinedInfo>;
  leave(room: string): Promise<void>;
  room(room: string): RoomState | undefined;

  /** Queues the text in the outbox (persisted) with a new cid and sends it when connected;
   *  resolves with the ack. Resent with the same cid after a reconnect or a reload. */
  send(room: string, text: string): Promise<SendAck>;
  /** Messages queued and not acknowledged, oldest first. */
  pending(room?: string): PendingMessage[];

  /** Older messages: before a seq (default: the newest), ascending seq. */
  history(room: string, opts?: { before?: number; limit?: number }):
    Promise<{ msgs: ChatMessage[]; more: boolean }>;
  /** The user's rooms, most recent activity first. */
  rooms(opts?: { limit?: number; cursor?: string }): Promise<{ rooms: RoomSummary[]; next?: string }>;

  /** Tells the room the user is typing (sent at most once per 2 s per room). */
  typing(room: string): void;
  /** Moves the read mark (forward only). */
  read(room: string, seq: number): void;
  edit(room: string, id: string, text: string): Promise<void>;
  delete(room: string, id: string): Promise<void>;
  react(room: string, id: string, emoji: string, on: boolean): Promise<void>;

  /** Stores a browser push subscription (PushSubscription.toJSON(): endpoint + keys). */
  pushSubscribe(sub: { endpoint: string; keys: { p256dh: string; auth: string } }): Promise<void>;
  pushUnsubscribe(endpoint: string): Promise<void>;
}
