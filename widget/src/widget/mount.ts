// Builds one widget: the host element with its shadow root, the launcher and the panel
// (header, connection banner, conversation list or open room), and wires the SDK client's
// events to the views. Returns the handle ChatWidget.init gives to the page.

import { createChatClient } from '../sdk/index';
import type { ChatClient, ConnectionState } from '../sdk/types';
import { Conversation, errorText } from './conversation';
import { h, icon, ICONS } from './dom';
import { Notifications } from './notifications';
import { noticeText } from './messages';
import type { ResolvedOptions } from './options';
import { RoomList } from './room-list';
import { ChatState, dmPeer } from './state';
import { fmt, mergeStrings, type Strings } from './strings';
import { styles } from './styles';

export interface WidgetHandle {
  client: ChatClient;
  open(): void;
  close(): void;
  openRoom(room: string): Promise<void>;
  destroy(): void;
}

/** How often the conversation list is fetched again while the widget is open (ms): new
 *  dms and rooms someone else added the user to show up without a reload. */
const ROOMS_REFRESH_MS = 60_000;
/** The user's rooms joined for live badges and presence (the newest ones). */
const MAX_JOINED = 50;

let nextId = 0;

export function mountWidget(o: ResolvedOptions): WidgetHandle {
  const s = mergeStrings(o.strings);
  const client = createChatClient({
    gateways: o.gateways, tokenUrl: o.tokenUrl, tokenProvider: o.tokenProvider,
    storageKey: o.storageKey,
  });
  const state = new ChatState(client);
  const id = `chat-widget-${++nextId}`;

  const host = h('div', { 'data-chat-widget': '', 'data-theme': o.theme, 'data-position': o.position,
                          'data-inline': o.container ? '' : null });
  const root = host.attachShadow({ mode: 'open' });
  const style = h('style');
  style.textContent = styles;

  const badge = h('span', { class: 'badge', 'data-testid': 'launcher-badge', 'aria-hidden': 'true', hidden: true });
  const launcher = h('button', { type: 'button', class: 'launcher', 'data-testid': 'launcher',
                                 'aria-expanded': 'false', 'aria-controls': `${id}-panel`,
                                 'aria-label': s.launcherOpen }, icon(ICONS.chat), badge);
  const backBtn = h('button', { type: 'button', class: 'icon-btn', 'data-testid': 'back-button',
                                'aria-label': s.back, title: s.back, hidden: true }, icon(ICONS.back));
  const panelTitle = h('h2', { id: `${id}-title`, 'data-testid': 'panel-title' }, s.panelTitle);
  const roomDot = h('span', { class: 'dot', 'data-testid': 'room-presence', hidden: true });
  const roomTitle = h('h2', { id: `${id}-room`, 'data-testid': 'room-title', hidden: true });
  // Mounted in the page's own container the panel is always there: nothing to close.
  const closeBtn = h('button', { type: 'button', class: 'icon-btn', 'data-testid': 'close-button',
                                 'aria-label': s.closePanel, title: s.closePanel,
                                 hidden: !!o.container }, icon(ICONS.close));
  const status = h('div', { class: 'status', 'data-testid': 'connection-status', role: 'status' });
  const notice = h('div', { class: 'notice', 'data-testid': 'notice', role: 'status', hidden: true });
  const live = h('div', { class: 'sr-only', 'data-testid': 'live-region', 'aria-live': 'polite',
                          'aria-atomic': 'true' });
  const header = h('div', { class: 'header' }, backBtn, panelTitle, roomTitle, closeBtn);
  const panel = h('section', { class: 'panel', id: `${id}-panel`, 'data-testid': 'panel', role: 'dialog',
                               'aria-labelledby': `${id}-title`, hidden: true }, header, status, notice);

  let isOpen = false;
  let destroyed = false;
  const visible = () => isOpen && document.visibilityState === 'visible';

  const announce = (text: string) => {
    // Clearing first makes screen readers announce a repeat of the same text too.
    live.textContent = '';
    setTimeout(() => { live.textContent = text; }, 30);
  };
  // Failures of the user's own actions are shown for a while (role=status reads them out).
  let noticeTimer: ReturnType<typeof setTimeout> | undefined;
  const showNotice = (text: string) => {
    notice.textContent = text;
    notice.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { notice.hidden = true; notice.textContent = ''; }, 8000);
  };

  const rooms = new RoomList(state, s, { open: (room) => void openRoom(room) });
  const conv = new Conversation(state, s, { isVisible: visible, announceError: showNotice });
  conv.el.hidden = true;
  panel.append(rooms.el, conv.el);

  let notifications: Notifications | undefined;
  if (o.swUrl) {
    notifications = new Notifications(client, s, o.swUrl, (room) => { open(); void openRoom(room); }, showNotice, announce);
    header.insertBefore(notifications.button, closeBtn);
  }

  root.append(style, panel, live);
  if (!o.container) root.insertBefore(launcher, panel);
  (o.container ?? document.body).appendChild(host);

  function renderHeader(): void {
    const inRoom = conv.room !== undefined;
    backBtn.hidden = !inRoom;
    panelTitle.hidden = inRoom;
    roomTitle.hidden = !inRoom;
    if (inRoom) {
      const r = state.ensure(conv.room as string);
      const peer = dmPeer(r.room, client.user);
      roomTitle.textContent = '';
      if (peer) {
        const online = state.isOnline(r.room, peer);
        roomDot.hidden = false;
        roomDot.dataset.online = String(online);
        roomDot.setAttribute('aria-label', online ? s.roomOnline : s.roomOffline);
        roomDot.setAttribute('role', 'img');
        roomTitle.append(roomDot);
      }
      roomTitle.append(state.roomLabel(r));
    }
    // The dialog is named after what it shows.
    panel.setAttribute('aria-labelledby', inRoom ? `${id}-room` : `${id}-title`);
  }

  function renderBadge(): void {
    const n = state.totalUnread();
    badge.textContent = n > 99 ? '99+' : String(n);
    badge.hidden = n === 0;
    const label = isOpen ? s.launcherClose : s.launcherOpen;
    launcher.setAttribute('aria-label', n > 0 ? `${label}, ${fmt(s.launcherUnread, { count: n })}` : label);
  }

  function renderStatus(st: ConnectionState): void {
    status.dataset.state = st;
    const text: Record<ConnectionState, string> = {
      idle: s.stateIdle, connecting: s.stateConnecting, open: '', reconnecting: s.stateReconnecting,
      closed: s.stateClosed,
    };
    status.textContent = text[st] ?? '';
  }

  /** Shows the panel; `focus` false for the start-up opening (data-open), which must not take
   *  the focus away from the page. */
  function open(focus = true): void {
    if (isOpen || destroyed) return;
    isOpen = true;
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    launcher.classList.add('open');
    renderBadge();
    if (conv.room) {
      conv.render(true);
      if (focus) conv.composer.focus();
    } else if (focus) {
      rooms.focus();
    }
    void refreshRooms();
  }

  function close(): void {
    if (!isOpen || o.container) return;
    isOpen = false;
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    launcher.classList.remove('open');
    renderBadge();
    launcher.focus();
  }

  async function openRoom(room: string): Promise<void> {
    rooms.showError('');
    conv.el.hidden = false;
    rooms.el.hidden = true;
    const opening = conv.open(room);
    renderHeader();
    await opening;
    renderHeader();
  }

  function back(): void {
    const room = conv.room;
    conv.close();
    conv.el.hidden = true;
    rooms.el.hidden = false;
    renderHeader();
    rooms.render();
    rooms.focus(room);
  }

  /** Fetches the conversation list and joins its rooms (live badges, presence). */
  let refreshing = false;
  async function refreshRooms(): Promise<void> {
    if (refreshing || client.state !== 'open') return;
    refreshing = true;
    try {
      const { rooms: list } = await client.rooms({ limit: MAX_JOINED });
      state.applySummaries(list);
      for (const summary of list) {
        const r = state.ensure(summary.room);
        if (!r.joined && !client.room(summary.room)?.joined) {
          client.join(summary.room).catch(() => undefined);
        }
      }
    } catch {
      // The list stays as it was; the next refresh or reconnect tries again.
    } finally {
      refreshing = false;
    }
  }

  launcher.addEventListener('click', () => (isOpen ? close() : open()));
  closeBtn.addEventListener('click', () => close());
  backBtn.addEventListener('click', () => back());
  panel.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !e.defaultPrevented) {
      e.preventDefault();
      if (!o.container) close();
      else if (conv.room) back();
    }
  });

  const offs: (() => void)[] = [];
  offs.push(state.onChange((room, kind) => {
    if (kind === 'list' || kind === 'presence') {
      rooms.render();
      renderBadge();
    }
    if (room !== null && room === conv.room) renderHeader();
    conv.refresh(room, kind);
  }));
  offs.push(client.on('state', (st) => {
    renderStatus(st);
    if (st === 'open') void refreshRooms();
    if (conv.room) conv.refresh(conv.room, 'messages'); // pending notes say online/offline
  }));
  offs.push(client.on('message', (m) => {
    if (m.from === client.user) return;
    const r = state.ensure(m.room);
    const notice = noticeText(m, s, (u) => state.nameOf(u));
    if (notice !== null) return announce(`${state.roomLabel(r)}: ${notice}`);
    // Announced unless the user is looking at that room already (the log shows it).
    if (!(visible() && conv.room === m.room)) {
      announce(fmt(s.announce, { name: m.name ?? state.nameOf(m.from), room: state.roomLabel(r),
                                 text: m.text ?? '' }));
    } else {
      announce(fmt(s.lastFrom, { name: m.name ?? state.nameOf(m.from), text: m.text ?? '' }));
    }
  }));
  offs.push(client.on('joined', (j) => {
    // Too much changed while away (joined.stale): the open room is loaded again from history.
    if (j.stale && j.room === conv.room) void conv.open(j.room);
  }));
  offs.push(client.on('left', (l) => {
    if (l.reason !== 'removed' && l.reason !== 'deleted') return;
    // Removed from a private room (or it was deleted) while looking at it: back to the list.
    if (l.room === conv.room) {
      showNotice(fmt(s.roomGone, { room: l.room }));
      back();
    }
    state.forget(l.room);
  }));
  const onVisibility = () => { if (visible()) conv.maybeMarkRead(); };
  document.addEventListener('visibilitychange', onVisibility);
  const timer = setInterval(() => { if (isOpen) void refreshRooms(); }, ROOMS_REFRESH_MS);

  // The configured rooms are listed at once, so that they can be opened while offline.
  for (const room of o.rooms) state.ensure(room);
  renderStatus(client.state);
  renderBadge();
  rooms.render();

  client.connect().then(async () => {
    for (const room of o.rooms) {
      await client.join(room).catch((e) => showNotice(fmt(s.errorJoin, { room, reason: errorText(e) })));
    }
    rooms.render();
    await refreshRooms();
  }, (e) => showNotice(errorText(e)));
  if (o.open || o.container) open(false);

  return {
    client,
    open: () => open(),
    close,
    openRoom: async (room: string) => { open(); await openRoom(room); },
    destroy(): void {
      if (destroyed) return;
      destroyed = true;
      clearInterval(timer);
      clearTimeout(noticeTimer);
      document.removeEventListener('visibilitychange', onVisibility);
      for (const off of offs) off();
      notifications?.destroy();
      conv.destroy();
      state.destroy();
      client.close();
      host.remove();
    },
  };
}

export type { Strings };
