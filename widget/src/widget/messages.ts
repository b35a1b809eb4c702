// One message in the conversation: the element with its data-* attributes (docs/widget.md,
// DOM contract), the text rendered safely, placeholders for deleted and removed messages,
// reactions, and the edit/delete/react actions. The conversation keeps one element per
// message and calls renderMessage again only when what it shows changed.

import type { ChatMessage } from '../sdk/types';
import { h, setAttrs } from './dom';
import { fmt, type Strings } from './strings';
import { appendRichText } from './text';
import type { OwnMessage } from './state';

/** What a message row shows: a stored message, or one of the user's own still in flight. */
export type MessageView =
  | { kind: 'stored'; msg: ChatMessage; own: boolean; seen: boolean }
  | { kind: 'own'; room: string; own: OwnMessage; online: boolean };

export interface MessageContext {
  strings: Strings;
  me: string | undefined;
  nameOf(user: string): string;
  /** Emoji offered by the react button. */
  emoji: readonly string[];
}

export const REACTION_EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🎉'] as const;

/** A key that stays the same when a pending message becomes the stored one. */
export function messageKey(v: MessageView, me: string | undefined): string {
  if (v.kind === 'own') return 'c:' + v.own.cid;
  return v.msg.cid && v.msg.from === me ? 'c:' + v.msg.cid : 'i:' + v.msg.id;
}

/** A string that changes whenever the rendering of `v` would. */
export function messageSignature(v: MessageView): string {
  if (v.kind === 'own') {
    return JSON.stringify(['o', v.own.text, v.own.ack?.seq, v.own.failed, v.online]);
  }
  const m = v.msg;
  return JSON.stringify(['s', m.seq, m.text, m.edited, m.deleted, m.removed, m.reactions,
                         m.name, v.seen]);
}

/** What a system notice (a message from "system" about the room) says, in the UI's words;
 *  null for any other message. */
export function noticeText(m: ChatMessage, s: Strings, nameOf: (user: string) => string): string | null {
  if (m.from !== 'system' || !m.notice) return null;
  const name = m.target !== undefined ? nameOf(m.target) : '';
  switch (m.notice) {
    case 'room_created': return s.noticeRoomCreated;
    case 'member_added': return fmt(s.noticeMemberAdded, { name });
    case 'member_removed': return fmt(s.noticeMemberRemoved, { name });
    case 'room_renamed': return fmt(s.noticeRoomRenamed, { text: m.text ?? '' });
    case 'room_deleted': return s.noticeRoomDeleted;
    default: return m.text ?? '';
  }
}

const time = (ts: number): string =>
  new Date(ts).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });

/** Fills `el` (a fresh or reused row) with the message `v`. */
export function renderMessage(el: HTMLElement, v: MessageView, ctx: MessageContext): void {
  const s = ctx.strings;
  el.textContent = '';
  el.className = 'msg';
  if (v.kind === 'own') {
    const o = v.own;
    const state = o.ack ? 'sent' : o.failed ? 'failed' : 'pending';
    el.classList.add('own');
    setAttrs(el, {
      'data-testid': 'message', 'data-cid': o.cid, 'data-from': ctx.me ?? null,
      'data-seq': o.ack ? o.ack.seq : null, 'data-id': o.ack ? o.ack.id : null,
      'data-state': state,
    });
    const bubble = h('div', { class: 'bubble', 'data-testid': 'message-text' });
    appendRichText(bubble, o.text);
    el.append(
      h('div', { class: 'meta' }, h('span', { class: 'author', 'data-testid': 'message-author' }, s.you)),
      bubble);
    if (!o.ack) {
      const note = o.failed ? fmt(s.failed, { reason: o.failed })
        : v.online ? s.pending : s.pendingOffline;
      el.append(h('span', { class: o.failed ? 'note err' : 'note', 'data-testid': 'message-status' }, note));
    }
    return;
  }

  const m = v.msg;
  if (v.own) el.classList.add('own');
  setAttrs(el, {
    'data-testid': 'message', 'data-seq': m.seq, 'data-id': m.id, 'data-from': m.from,
    'data-cid': m.cid ?? null, 'data-state': 'sent',
  });
  const notice = noticeText(m, s, ctx.nameOf);
  if (notice !== null) {
    // A line across the log, not a bubble: nobody wrote it, nothing can be done to it.
    el.classList.add('system');
    el.appendChild(h('div', { class: 'notice-line', 'data-testid': 'message-text' }, notice));
    return;
  }
  const author = v.own ? s.you : m.name ?? ctx.nameOf(m.from);
  const meta = h('div', { class: 'meta' },
    h('span', { class: 'author', 'data-testid': 'message-author' }, author),
    h('time', { dateTime: new Date(m.ts).toISOString(), title: new Date(m.ts).toLocaleString() },
      time(m.ts)));
  el.appendChild(meta);

  if (m.removed) {
    el.appendChild(h('div', { class: 'bubble placeholder', 'data-testid': 'message-removed' }, s.removed));
    return;
  }
  if (m.deleted) {
    el.appendChild(h('div', { class: 'bubble placeholder', 'data-testid': 'message-deleted' }, s.deleted));
    return;
  }
  const bubble = h('div', { class: 'bubble', 'data-testid': 'message-text' });
  appendRichText(bubble, m.text ?? '');
  el.appendChild(bubble);
  if (m.edited) meta.appendChild(h('span', { 'data-testid': 'message-edited' }, s.edited));

  const reactions = Object.entries(m.reactions ?? {}).filter(([, users]) => users.length > 0);
  if (reactions.length) {
    const box = h('div', { class: 'reactions', 'data-testid': 'reactions' });
    for (const [emoji, users] of reactions) {
      const mine = ctx.me !== undefined && users.includes(ctx.me);
      const label = fmt(s.reaction, { emoji, count: users.length,
                                      users: users.map((u) => ctx.nameOf(u)).join(', ') });
      box.appendChild(h('button', {
        type: 'button', class: 'reaction', 'data-testid': 'reaction', 'data-emoji': emoji,
        'data-action': 'toggle-reaction', 'aria-pressed': mine ? 'true' : 'false',
        'aria-label': label, title: label,
      }, `${emoji} ${users.length}`));
    }
    el.appendChild(box);
  }

  const actions = h('div', { class: 'actions' },
    h('button', { type: 'button', 'data-testid': 'react-button', 'data-action': 'react',
                  'aria-label': s.react, 'aria-haspopup': 'true', 'aria-expanded': 'false' },
      '☺︎+'));
  if (v.own) {
    actions.append(
      h('button', { type: 'button', 'data-testid': 'edit-button', 'data-action': 'edit',
                    'aria-label': s.edit }, s.editShort),
      h('button', { type: 'button', 'data-testid': 'delete-button', 'data-action': 'delete',
                    'aria-label': s.delete }, s.deleteShort));
  }
  // In the meta line, so that the buttons take no row of their own.
  meta.appendChild(actions);
  if (v.seen) el.appendChild(h('span', { class: 'seen', 'data-testid': 'seen-mark' }, s.seen));
}

/** The row of emoji the react button opens, for the message `id`. */
export function reactionPicker(ctx: MessageContext): HTMLElement {
  const picker = h('div', { class: 'picker', role: 'group', 'data-testid': 'reaction-picker',
                            'aria-label': ctx.strings.reactionPicker });
  for (const emoji of ctx.emoji) {
    picker.appendChild(h('button', {
      type: 'button', 'data-testid': 'react-emoji', 'data-emoji': emoji, 'data-action': 'pick',
      'aria-label': fmt(ctx.strings.reactWith, { emoji }),
    }, emoji));
  }
  return picker;
}
