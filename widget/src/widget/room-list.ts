// The conversation list: one item per room (most recent first) with its unread badge, the
// last message and, for dms, whether the other user is online; below it the box that
// starts a conversation ("@bob" opens the dm, anything else joins that public room).

import { h, setAttrs } from './dom';
import { noticeText } from './messages';
import { dmPeer, dmRoom, ROOM_RE, type ChatState, type RoomData } from './state';
import { fmt, type Strings } from './strings';

export interface RoomListHandlers {
  open(room: string): void;
}

export class RoomList {
  readonly el: HTMLElement;
  private list: HTMLUListElement;
  private empty: HTMLElement;
  private input: HTMLInputElement;
  private error: HTMLElement;
  private items = new Map<string, { li: HTMLLIElement; sig: string }>();

  constructor(private state: ChatState, private s: Strings, private handlers: RoomListHandlers) {
    this.list = h('ul', { class: 'rooms', role: 'list', 'data-testid': 'room-list',
                          'aria-label': s.roomsLabel });
    this.empty = h('p', { class: 'empty' }, s.noRooms);
    this.input = h('input', { type: 'text', 'data-testid': 'new-chat-input', 'aria-label': s.newChatLabel,
                              placeholder: s.newChatPlaceholder, autocomplete: 'off', spellcheck: 'false' });
    const start = h('button', { type: 'button', class: 'primary', 'data-testid': 'new-chat-button' },
      s.newChatButton);
    this.error = h('div', { class: 'error', 'data-testid': 'new-chat-error', role: 'alert', hidden: true });
    this.el = h('div', { class: 'view', 'data-testid': 'rooms-view' }, this.list, this.empty,
      h('div', { class: 'new-chat' }, this.input, start), this.error);

    this.list.addEventListener('click', (e) => {
      const li = (e.target as Element).closest('li[data-room]');
      if (li) this.handlers.open(li.getAttribute('data-room') as string);
    });
    start.addEventListener('click', () => this.startChat());
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); this.startChat(); }
    });
    this.input.addEventListener('input', () => this.showError(''));
  }

  showError(text: string): void {
    this.error.textContent = text;
    this.error.hidden = text === '';
  }

  /** Focuses the item of `room` (coming back from it), else the first one or the input. */
  focus(room?: string): void {
    const item = (room && this.items.get(room)?.li) || this.list.firstElementChild;
    const btn = item?.querySelector('button');
    if (btn) btn.focus();
    else this.input.focus();
  }

  /** Redraws the items whose content changed and puts them in order. */
  render(): void {
    const rooms = this.state.sortedRooms();
    const seen = new Set<string>();
    let prev: Element | null = null;
    for (const r of rooms) {
      seen.add(r.room);
      const sig = this.signature(r);
      let item = this.items.get(r.room);
      if (!item) {
        item = { li: h('li', { role: 'listitem', 'data-testid': 'room-item', 'data-room': r.room }), sig: '' };
        this.items.set(r.room, item);
      }
      if (item.sig !== sig) {
        this.fill(item.li, r);
        item.sig = sig;
      }
      const want: Element | null = prev ? prev.nextElementSibling : this.list.firstElementChild;
      if (want !== item.li) this.list.insertBefore(item.li, want);
      prev = item.li;
    }
    for (const [room, item] of this.items) {
      if (!seen.has(room)) { item.li.remove(); this.items.delete(room); }
    }
    this.empty.hidden = rooms.length > 0;
  }

  private signature(r: RoomData): string {
    const peer = dmPeer(r.room, this.state.client.user);
    return JSON.stringify([this.state.roomLabel(r), r.unread, r.last?.id, r.last?.text,
      r.last?.deleted, r.last?.removed, peer ? this.state.isOnline(r.room, peer) : null]);
  }

  private fill(li: HTMLLIElement, r: RoomData): void {
    const s = this.s;
    const label = this.state.roomLabel(r);
    const peer = r.kind === 'dm' ? dmPeer(r.room, this.state.client.user) : undefined;
    const online = peer !== undefined && this.state.isOnline(r.room, peer);
    const avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' },
      r.kind === 'dm' ? label.slice(0, 1).toUpperCase() : '#');
    if (peer !== undefined) {
      avatar.appendChild(h('span', { class: 'dot', 'data-testid': 'presence-dot',
                                     'data-online': online ? 'true' : 'false' }));
    }
    // The badge and the dot are seen; screen readers get the same as words (sr-only).
    const badge = h('span', { class: 'badge', 'data-testid': 'room-unread', 'aria-hidden': 'true',
                              hidden: r.unread === 0 }, String(r.unread));
    const said: string[] = [];
    if (peer !== undefined) said.push(online ? s.roomOnline : s.roomOffline);
    if (r.unread > 0) said.push(fmt(s.roomUnread, { count: r.unread }));
    const button = h('button', { type: 'button', class: 'room-btn' },
      avatar,
      h('span', { class: 'room-main' },
        h('span', { class: 'room-name', 'data-testid': 'room-name' }, label),
        said.length ? h('span', { class: 'sr-only' }, ', ' + said.join(', ') + ',') : null,
        h('span', { class: 'room-last' }, this.preview(r))),
      badge);
    li.textContent = '';
    setAttrs(li, { 'data-unread': r.unread });
    li.appendChild(button);
  }

  private preview(r: RoomData): string {
    const m = r.last;
    if (!m) return '';
    const notice = noticeText(m, this.s, (u) => this.state.nameOf(u));
    if (notice !== null) return notice;
    const text = m.removed ? this.s.removed : m.deleted ? this.s.deleted : (m.text ?? '');
    const short = text.length > 80 ? text.slice(0, 80) + '…' : text;
    if (m.from === this.state.client.user) return fmt(this.s.lastFromYou, { text: short });
    return fmt(this.s.lastFrom, { name: m.name ?? this.state.nameOf(m.from), text: short });
  }

  /** Reads the new-chat box: a room to join, or null after showing why not. */
  private target(): string | null {
    const raw = this.input.value.trim();
    const me = this.state.client.user;
    if (raw.startsWith('@')) {
      const user = raw.slice(1);
      if (!me || !/^[A-Za-z0-9._-]{1,64}$/.test(user) || user === me) return null;
      return dmRoom(me, user);
    }
    return ROOM_RE.test(raw) && !raw.startsWith('dm:') ? raw : null;
  }

  private startChat(): void {
    const room = this.target();
    if (!room) {
      this.showError(this.s.newChatInvalid);
      return;
    }
    this.input.value = '';
    this.showError('');
    this.handlers.open(room);
  }
}
