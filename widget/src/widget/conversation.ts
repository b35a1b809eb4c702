// The open room: its message log (loaded with join + history, older pages when the top
// sentinel scrolls into view or its button is pressed), the typing indicator and the
// composer. It marks the room read when the newest message is on screen, and turns
// clicks on a message's buttons into edit / delete / react requests.

import type { ChatClient, ChatErrorInfo } from '../sdk/types';
import { Composer } from './composer';
import { h } from './dom';
import {
  messageKey, messageSignature, reactionPicker, renderMessage, REACTION_EMOJI,
  type MessageContext, type MessageView,
} from './messages';
import type { ChatState, RoomData } from './state';
import { fmt, type Strings } from './strings';

const FIRST_PAGE = 30;
const OLDER_PAGE = 30;
/** Distance from the bottom (px) within which the newest message counts as shown. */
const AT_BOTTOM_PX = 48;

export interface ConversationHost {
  /** The panel is open and the page visible: reading is happening. */
  isVisible(): boolean;
  announceError(text: string): void;
}

export const errorText = (e: unknown): string =>
  (e as ChatErrorInfo)?.message ?? (e instanceof Error ? e.message : String(e));

export class Conversation {
  readonly el: HTMLElement;
  readonly composer: Composer;
  room: string | undefined;
  private log: HTMLDivElement;
  private older: HTMLButtonElement;
  private start: HTMLElement;
  private typingEl: HTMLElement;
  private errorEl: HTMLElement;
  private rows = new Map<string, { el: HTMLDivElement; sig: string }>();
  private observer: IntersectionObserver | undefined;
  private picker: HTMLElement | undefined;
  private ctx: MessageContext;
  private client: ChatClient;

  constructor(private state: ChatState, private s: Strings, private host: ConversationHost) {
    this.client = state.client;
    this.ctx = { strings: s, me: undefined, nameOf: (u) => state.nameOf(u), emoji: REACTION_EMOJI };
    this.older = h('button', { type: 'button', class: 'older', 'data-testid': 'load-older',
                               'aria-label': s.loadOlder, hidden: true }, s.loadOlder);
    this.start = h('div', { class: 'history-start', hidden: true }, s.historyStart);
    // role=log would announce every history page; new messages are announced by the
    // widget's own live region instead, hence aria-live=off.
    this.log = h('div', { class: 'log', role: 'log', 'aria-live': 'off', 'data-testid': 'message-list',
                         tabindex: 0 },
      h('div', { class: 'older-row' }, this.older),
      this.start);
    this.typingEl = h('div', { class: 'typing', 'data-testid': 'typing-indicator', 'aria-live': 'polite' });
    this.errorEl = h('div', { class: 'error', role: 'alert', 'data-testid': 'room-error', hidden: true });
    this.composer = new Composer(s, {
      send: (text) => this.send(text),
      saveEdit: (id, text) => this.act(this.client.edit(this.room as string, id, text)),
      typing: () => { if (this.room) this.client.typing(this.room); },
    });
    this.el = h('div', { class: 'view', 'data-testid': 'conversation' },
      this.errorEl, this.log, this.typingEl, this.composer.el);

    this.older.addEventListener('click', () => this.loadOlder());
    if (typeof IntersectionObserver === 'function') {
      this.observer = new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) this.loadOlder();
      }, { root: this.log, rootMargin: '200px 0px 0px 0px' });
      this.observer.observe(this.older);
    }
    this.log.addEventListener('scroll', () => this.maybeMarkRead(), { passive: true });
    this.log.addEventListener('click', (e) => this.onAction(e));
    this.log.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.picker) {
        e.stopPropagation();
        const btn = this.picker.parentElement?.querySelector<HTMLElement>('[data-action="react"]');
        this.closePicker();
        btn?.focus();
      }
    });
  }

  destroy(): void {
    this.observer?.disconnect();
  }

  /** Shows `room`: joins it if needed, loads its last page, focuses the composer. */
  async open(room: string): Promise<void> {
    if (this.room !== room) {
      this.room = room;
      this.composer.reset();
      this.closePicker();
      for (const { el } of this.rows.values()) el.remove();
      this.rows.clear();
      this.log.setAttribute('aria-label', fmt(this.s.messagesLabel, { room }));
    }
    const r = this.state.ensure(room);
    r.error = undefined;
    this.render(true);
    this.composer.focus();
    try {
      if (!r.joined) await this.client.join(room);
      if (!r.loaded) {
        const page = await this.client.history(room, { limit: FIRST_PAGE });
        this.state.addHistory(room, page.msgs, page.more, false);
      }
    } catch (e) {
      r.error = fmt(this.s.errorJoin, { room: this.state.roomLabel(r), reason: errorText(e) });
    }
    if (this.room === room) this.render(true);
  }

  close(): void {
    this.room = undefined;
    this.composer.reset();
    this.closePicker();
  }

  /** Called by the widget when the state of `room` changed. */
  refresh(room: string | null, kind: string): void {
    if (!this.room || (room !== null && room !== this.room)) return;
    if (kind === 'typing') this.renderTyping();
    else if (kind !== 'list') this.render(false);
  }

  /** Marks the room read if the newest message is on screen and the user can see it. */
  maybeMarkRead(): void {
    const r = this.room ? this.state.rooms.get(this.room) : undefined;
    if (!r || !r.loaded || !this.host.isVisible() || !this.atBottom()) return;
    const newest = this.state.newestSeq(r);
    if (newest === 0) return;
    if (newest > r.readSent || (r.unread > 0 && newest >= (r.last?.seq ?? 0))) {
      this.client.read(r.room, newest);
      this.state.markRead(r, newest);
    }
  }

  private atBottom(): boolean {
    const l = this.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight <= AT_BOTTOM_PX;
  }

  private views(r: RoomData): MessageView[] {
    const me = this.client.user;
    const seqs = [...r.msgs.keys()].sort((a, b) => a - b);
    let ownNewest = 0;
    for (const seq of seqs) if (r.msgs.get(seq)?.from === me) ownNewest = seq;
    let seenUpTo = 0;
    for (const seq of r.readBy.values()) seenUpTo = Math.max(seenUpTo, seq);
    const views: MessageView[] = seqs.map((seq) => {
      const msg = r.msgs.get(seq)!;
      const own = msg.from === me;
      return { kind: 'stored', msg, own, seen: own && seq === ownNewest && seenUpTo >= seq };
    });
    const online = this.client.state === 'open';
    // Pending ones come from the SDK's outbox (also those queued before a reload).
    const echoed = new Set<string>();
    for (const m of r.msgs.values()) if (m.cid && m.from === me) echoed.add(m.cid);
    for (const p of this.client.pending(r.room)) {
      if (!r.own.has(p.cid) && !echoed.has(p.cid)) {
        r.own.set(p.cid, { cid: p.cid, text: p.text, createdAt: p.createdAt });
      }
    }
    const own = [...r.own.values()].sort((a, b) =>
      (a.ack?.seq ?? Infinity) - (b.ack?.seq ?? Infinity) || a.createdAt - b.createdAt);
    for (const o of own) views.push({ kind: 'own', room: r.room, own: o, online });
    return views;
  }

  /** Brings the log in line with the room's messages, keeping the reader's position. */
  render(toBottom: boolean): void {
    if (!this.room) return;
    const r = this.state.ensure(this.room);
    this.ctx.me = this.client.user;
    const l = this.log;
    const stick = toBottom || this.atBottom();
    const firstRow = this.start.nextElementSibling as HTMLElement | null;
    const anchorTop = firstRow ? firstRow.offsetTop - l.scrollTop : 0;

    const keep = new Set<string>();
    let prev: Element = this.start;
    for (const v of this.views(r)) {
      const key = messageKey(v, this.ctx.me);
      keep.add(key);
      const sig = messageSignature(v);
      let row = this.rows.get(key);
      if (!row) {
        row = { el: h('div'), sig: '' };
        this.rows.set(key, row);
      }
      if (row.sig !== sig) {
        const hadPicker = this.picker && row.el.contains(this.picker);
        renderMessage(row.el, v, this.ctx);
        row.sig = sig;
        if (hadPicker) this.picker = undefined;
      }
      if (prev.nextElementSibling !== row.el) prev.after(row.el);
      prev = row.el;
    }
    for (const [key, row] of this.rows) {
      if (!keep.has(key)) { row.el.remove(); this.rows.delete(key); }
    }

    this.older.hidden = !(r.loaded && r.more);
    this.older.textContent = r.loadingOlder ? this.s.loadingOlder : this.s.loadOlder;
    this.older.setAttribute('aria-busy', r.loadingOlder ? 'true' : 'false');
    this.start.hidden = !(r.loaded && !r.more && r.msgs.size > 0);
    this.errorEl.textContent = r.error ?? '';
    this.errorEl.hidden = !r.error;
    this.renderTyping();

    if (stick) l.scrollTop = l.scrollHeight;
    else if (firstRow && firstRow.isConnected) l.scrollTop = firstRow.offsetTop - anchorTop;
    this.maybeMarkRead();
  }

  private renderTyping(): void {
    const r = this.room ? this.state.rooms.get(this.room) : undefined;
    const now = Date.now();
    const names: string[] = [];
    if (r) {
      for (const [user, t] of r.typing) {
        if (t.until > now) names.push(t.name ?? this.state.nameOf(user));
        else r.typing.delete(user);
      }
    }
    const s = this.s;
    const text = names.length === 0 ? '' : names.length === 1 ? fmt(s.typingOne, { name: names[0] })
      : names.length === 2 ? fmt(s.typingTwo, { a: names[0], b: names[1] }) : s.typingMany;
    if (this.typingEl.textContent !== text) this.typingEl.textContent = text;
  }

  private async loadOlder(): Promise<void> {
    const r = this.room ? this.state.rooms.get(this.room) : undefined;
    if (!r || !r.loaded || !r.more || r.loadingOlder) return;
    r.loadingOlder = true;
    this.render(false);
    try {
      const page = await this.client.history(r.room, { before: this.state.oldestSeq(r), limit: OLDER_PAGE });
      r.loadingOlder = false;
      this.state.addHistory(r.room, page.msgs, page.more, true);
      // The observer only reports changes: re-observing reports the sentinel at once if the
      // page was too short to push it out of view, so the next page comes too.
      if (this.observer) { this.observer.unobserve(this.older); this.observer.observe(this.older); }
    } catch (e) {
      r.loadingOlder = false;
      this.host.announceError(fmt(this.s.errorAction, { reason: errorText(e) }));
      this.render(false);
    }
  }

  private send(text: string): void {
    const room = this.room;
    if (!room) return;
    const r = this.state.ensure(room);
    const before = new Set(this.client.pending(room).map((p) => p.cid));
    const done = this.client.send(room, text);
    // The SDK queues synchronously or on its next outbox event; either way the new cid is
    // the one that was not pending before.
    let cid = this.client.pending(room).find((p) => !before.has(p.cid))?.cid;
    if (cid) this.state.trackSend(room, cid, text);
    this.render(true);
    done.then((ack) => {
      const own = r.own.get(ack.cid);
      if (own) own.ack = ack;
      this.state.emit(room, 'messages');
    }, (e: unknown) => {
      cid = (e as ChatErrorInfo)?.cid ?? cid;
      const own = cid ? r.own.get(cid) : undefined;
      if (own) own.failed = errorText(e);
      else this.host.announceError(fmt(this.s.errorAction, { reason: errorText(e) }));
      this.state.emit(room, 'messages');
    });
  }

  /** Runs a request on a message; a refusal is announced (the server's state is unchanged). */
  private act(p: Promise<unknown>): void {
    p.catch((e) => this.host.announceError(fmt(this.s.errorAction, { reason: errorText(e) })));
  }

  private closePicker(): void {
    const btn = this.picker?.parentElement?.querySelector('[data-action="react"]');
    btn?.setAttribute('aria-expanded', 'false');
    this.picker?.remove();
    this.picker = undefined;
  }

  private onAction(e: Event): void {
    const btn = (e.target as Element).closest<HTMLElement>('button[data-action]');
    const row = btn?.closest<HTMLElement>('[data-testid="message"]');
    const room = this.room;
    if (!btn || !row || !room) return;
    const id = row.dataset.id;
    if (!id) return;
    const r = this.state.rooms.get(room);
    const msg = r?.msgs.get(Number(row.dataset.seq));
    switch (btn.dataset.action) {
      case 'react': {
        const wasOpen = this.picker && row.contains(this.picker);
        this.closePicker();
        if (wasOpen) return;
        this.picker = reactionPicker(this.ctx);
        row.appendChild(this.picker);
        btn.setAttribute('aria-expanded', 'true');
        this.picker.querySelector('button')?.focus();
        return;
      }
      case 'pick':
      case 'toggle-reaction': {
        const emoji = btn.dataset.emoji as string;
        const users = msg?.reactions?.[emoji] ?? [];
        const on = !users.includes(this.client.user ?? '');
        this.closePicker();
        this.act(this.client.react(room, id, emoji, on));
        return;
      }
      case 'edit':
        if (msg?.text !== undefined) this.composer.startEdit(id, msg.text);
        return;
      case 'delete':
        if (this.composer.editing) this.composer.cancelEdit();
        this.act(this.client.delete(room, id));
        this.composer.focus();
        return;
    }
  }
}
