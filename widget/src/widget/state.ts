// What the widget knows about each room, fed by the SDK's events: the conversation list
// (summaries with unread counts), the messages loaded so far, the user's own messages
// until the server echoes them, presence, typing and other people's read marks. Views
// subscribe with onChange and redraw what changed; this file never touches the DOM.

import type { ChatClient, ChatMessage, ChatUpdate, PendingMessage, RoomSummary, SendAck }
  from '../sdk/types';

/** How long a typing indicator lasts without a new `typing` frame (protocol: 5 s). */
export const TYPING_MS = 5000;

/** One of the user's own messages not yet received back as a `msg`. */
export interface OwnMessage {
  cid: string;
  text: string;
  createdAt: number;
  ack?: SendAck;
  failed?: string;
}

export interface RoomData {
  room: string;
  kind: RoomSummary['kind'];
  name?: string;
  unread: number;
  last?: ChatMessage;
  lastTs: number;
  joined: boolean;
  /** Loaded messages by seq (history pages and live ones). */
  msgs: Map<number, ChatMessage>;
  /** history has been fetched once (the conversation can be shown). */
  loaded: boolean;
  more: boolean;
  loadingOlder: boolean;
  typing: Map<string, { name?: string; until: number }>;
  /** Other users' read marks, from `read` events. */
  readBy: Map<string, number>;
  /** The highest seq this widget told the server it read. */
  readSent: number;
  own: Map<string, OwnMessage>;
  error?: string;
}

export type ChangeKind = 'list' | 'messages' | 'typing' | 'presence' | 'read';
type Listener = (room: string | null, kind: ChangeKind) => void;

export const isDm = (room: string): boolean => room.startsWith('dm:');

/** The dm room of two users: `dm:A:B` with the ids sorted (PROTOCOL.md, Names). */
export function dmRoom(a: string, b: string): string {
  return 'dm:' + [a, b].sort().join(':');
}

/** The other party of a dm room, or undefined if `me` is not one of its two users. */
export function dmPeer(room: string, me: string | undefined): string | undefined {
  const parts = room.split(':');
  if (parts.length !== 3 || parts[0] !== 'dm') return undefined;
  if (parts[1] === me) return parts[2];
  if (parts[2] === me) return parts[1];
  return undefined;
}

export const ROOM_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export class ChatState {
  readonly rooms = new Map<string, RoomData>();
  /** Display names learned from messages and typing frames, by user id. */
  readonly names = new Map<string, string>();
  private listeners = new Set<Listener>();
  private offs: (() => void)[] = [];

  constructor(readonly client: ChatClient) {
    const c = client;
    this.offs.push(
      c.on('message', (m) => this.onMessage(m)),
      c.on('update', (u) => this.onUpdate(u)),
      c.on('joined', (j) => {
        const r = this.ensure(j.room);
        r.joined = true;
        if (typeof j.read === 'number') r.readSent = Math.max(r.readSent, j.read);
        r.unread = j.unread;
        if (j.stale) { r.msgs.clear(); r.loaded = false; }
        this.emit(j.room, 'list');
        this.emit(j.room, 'presence');
        if (j.stale) this.emit(j.room, 'messages');
      }),
      c.on('left', (l) => {
        const r = this.rooms.get(l.room);
        if (!r) return;
        r.joined = false;
        // A room the user was removed from, or that was deleted, is forgotten by the view
        // (forget()), after it has left the room: deleting it here, while the open
        // conversation still renders it, would have it re-created at once.
        this.emit(l.room, 'list');
      }),
      // Who is online is the SDK's (RoomState.online, updated before the event): only redraw.
      c.on('presence', (p) => this.emit(p.room, 'presence')),
      c.on('typing', (t) => {
        if (t.user === c.user) return;
        if (t.name) this.names.set(t.user, t.name);
        const r = this.ensure(t.room);
        r.typing.set(t.user, { name: t.name, until: Date.now() + TYPING_MS });
        this.emit(t.room, 'typing');
        setTimeout(() => this.emit(t.room, 'typing'), TYPING_MS + 50);
      }),
      c.on('read', (e) => {
        const r = this.ensure(e.room);
        if (e.user === c.user) {
          // Another device (or this one) read: the unread count follows the mark.
          r.readSent = Math.max(r.readSent, e.seq);
          r.unread = this.unreadAfter(r, e.seq);
          this.emit(e.room, 'list');
        } else {
          r.readBy.set(e.user, Math.max(e.seq, r.readBy.get(e.user) ?? 0));
          this.emit(e.room, 'read');
        }
      }),
      c.on('outbox', (list) => this.onOutbox(list)),
      c.on('ack', (a) => {
        const r = this.ensure(a.room);
        const own = r.own.get(a.cid);
        if (own) own.ack = a;
        this.emit(a.room, 'messages');
      }),
    );
  }

  onChange(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(room: string | null, kind: ChangeKind): void {
    for (const fn of this.listeners) fn(room, kind);
  }

  destroy(): void {
    for (const off of this.offs) off();
    this.listeners.clear();
  }

  /** Drops a room the user can no longer see (removed from it, or deleted). */
  forget(room: string): void {
    if (this.rooms.delete(room)) this.emit(room, 'list');
  }

  ensure(room: string): RoomData {
    let r = this.rooms.get(room);
    if (!r) {
      r = {
        room, kind: isDm(room) ? 'dm' : 'public', unread: 0, lastTs: 0, joined: false,
        msgs: new Map(), loaded: false, more: false, loadingOlder: false,
        typing: new Map(), readBy: new Map(), readSent: 0, own: new Map(),
      };
      this.rooms.set(room, r);
    }
    return r;
  }

  /** Rooms for the list: most recent activity first, then by name. */
  sortedRooms(): RoomData[] {
    return [...this.rooms.values()].sort((a, b) => b.lastTs - a.lastTs ||
      a.room.localeCompare(b.room));
  }

  totalUnread(): number {
    let n = 0;
    for (const r of this.rooms.values()) n += r.unread;
    return n;
  }

  /** A user's display name: the `name` claim seen on their messages, else the id. */
  nameOf(user: string): string {
    return this.names.get(user) ?? user;
  }

  /** Whether user is online in room, as the SDK knows it. */
  isOnline(room: string, user: string): boolean {
    return this.client.room(room)?.online.has(user) ?? false;
  }

  /** What the list and the header call a room: a dm is named after the other user. */
  roomLabel(r: RoomData): string {
    const peer = r.kind === 'dm' ? dmPeer(r.room, this.client.user) : undefined;
    if (peer) return this.nameOf(peer);
    return r.name ?? r.room;
  }

  /** Merges the server's conversation list (rooms()). */
  applySummaries(list: RoomSummary[]): void {
    for (const s of list) {
      const r = this.ensure(s.room);
      r.kind = s.kind;
      r.name = s.name;
      r.unread = s.unread;
      r.readSent = Math.max(r.readSent, s.read);
      if (s.last) this.setLast(r, s.last);
      else r.lastTs = Math.max(r.lastTs, 0);
    }
    this.emit(null, 'list');
  }

  /** Adds a history page (ascending seq) to the room. */
  addHistory(room: string, msgs: ChatMessage[], more: boolean, older: boolean): void {
    const r = this.ensure(room);
    for (const m of msgs) this.store(r, m);
    r.more = more;
    r.loaded = true;
    const newest = msgs[msgs.length - 1];
    if (newest && !older) this.setLast(r, newest);
    this.emit(room, 'messages');
  }

  /** The seq of the newest loaded message, 0 if none. */
  newestSeq(r: RoomData): number {
    let max = 0;
    for (const s of r.msgs.keys()) if (s > max) max = s;
    return max;
  }

  oldestSeq(r: RoomData): number {
    let min = Infinity;
    for (const s of r.msgs.keys()) if (s < min) min = s;
    return min === Infinity ? 0 : min;
  }

  /** Records a message sent from this page (before the SDK's outbox event names it). */
  trackSend(room: string, cid: string | undefined, text: string): OwnMessage | undefined {
    if (!cid) return undefined;
    const r = this.ensure(room);
    let own = r.own.get(cid);
    if (!own) {
      own = { cid, text, createdAt: Date.now() };
      r.own.set(cid, own);
    }
    return own;
  }

  /** Marks the room read up to `seq` (what the widget sent to the server). */
  markRead(r: RoomData, seq: number): void {
    r.readSent = Math.max(r.readSent, seq);
    r.unread = this.unreadAfter(r, seq);
    this.emit(r.room, 'list');
  }

  private unreadAfter(r: RoomData, seq: number): number {
    if (seq >= (r.last?.seq ?? 0)) return 0;
    let n = 0;
    for (const m of r.msgs.values()) if (m.seq > seq && m.from !== this.client.user) n++;
    return Math.min(r.unread, n);
  }

  private setLast(r: RoomData, m: ChatMessage): void {
    if (m.name) this.names.set(m.from, m.name);
    if (!r.last || m.seq >= r.last.seq) {
      r.last = m;
      r.lastTs = Math.max(r.lastTs, m.ts);
    }
  }

  private store(r: RoomData, m: ChatMessage): void {
    if (m.name) this.names.set(m.from, m.name);
    r.msgs.set(m.seq, m);
    if (m.cid && m.from === this.client.user) r.own.delete(m.cid);
  }

  private onMessage(m: ChatMessage): void {
    const r = this.ensure(m.room);
    const isNew = !r.msgs.has(m.seq);
    // Only keep live messages once the conversation was loaded: history fills the rest.
    if (r.loaded) this.store(r, m);
    else {
      if (m.name) this.names.set(m.from, m.name);
      if (m.cid && m.from === this.client.user) r.own.delete(m.cid);
    }
    r.typing.delete(m.from);
    const wasLast = r.last?.seq ?? 0;
    this.setLast(r, m);
    if (isNew && m.seq > wasLast && m.from !== this.client.user && m.seq > r.readSent) r.unread++;
    this.emit(m.room, 'messages');
    this.emit(m.room, 'list');
  }

  private onUpdate(u: ChatUpdate): void {
    const r = this.rooms.get(u.room);
    if (!r) return;
    let target: ChatMessage | undefined;
    if (typeof u.seq === 'number') target = r.msgs.get(u.seq);
    if (!target || target.id !== u.id) {
      for (const m of r.msgs.values()) if (m.id === u.id) { target = m; break; }
    }
    if (!target) return;
    const next: ChatMessage = { ...target };
    if (u.text !== undefined) next.text = u.text;
    if (u.edited !== undefined) next.edited = u.edited;
    else if (u.op === 'edit') next.edited = Date.now();
    if (u.deleted || u.op === 'delete') { next.deleted = true; delete next.text; }
    if (u.removed || u.op === 'moderate') { next.removed = true; next.reason = u.reason; delete next.text; }
    if (u.reactions) next.reactions = u.reactions;
    r.msgs.set(next.seq, next);
    if (r.last && r.last.id === next.id) r.last = next;
    this.emit(u.room, 'messages');
    this.emit(u.room, 'list');
  }

  private onOutbox(list: PendingMessage[]): void {
    const rooms = new Set<string>();
    for (const p of list) {
      const r = this.ensure(p.room);
      // A message echoed already is done, whatever order the SDK's events came in.
      let echoed = false;
      for (const m of r.msgs.values()) if (m.cid === p.cid && m.from === this.client.user) echoed = true;
      if (echoed) continue;
      if (!r.own.has(p.cid)) r.own.set(p.cid, { cid: p.cid, text: p.text, createdAt: p.createdAt });
      rooms.add(p.room);
    }
    // Rooms whose messages all left the outbox redraw too (their notes say "sent" now).
    for (const r of this.rooms.values()) if (r.own.size) rooms.add(r.room);
    for (const room of rooms) this.emit(room, 'messages');
  }
}
