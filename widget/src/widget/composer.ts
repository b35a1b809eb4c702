// The message box at the bottom of a conversation: Enter sends, Shift+Enter adds a line,
// typing notifies the room (the SDK throttles), and an edit mode in which the same box
// changes one of the user's messages (Escape or the cancel button leaves it).

import { h, icon, ICONS } from './dom';
import type { Strings } from './strings';

export interface ComposerHandlers {
  send(text: string): void;
  saveEdit(id: string, text: string): void;
  typing(): void;
}

export class Composer {
  readonly el: HTMLElement;
  readonly input: HTMLTextAreaElement;
  private sendBtn: HTMLButtonElement;
  private editNote: HTMLElement;
  private cancelBtn: HTMLButtonElement;
  private editingId: string | undefined;
  private draft = '';

  constructor(private s: Strings, private handlers: ComposerHandlers) {
    this.input = h('textarea', {
      'data-testid': 'composer-input', rows: 1, 'aria-label': s.composerLabel,
      placeholder: s.composerPlaceholder, maxlength: 4000,
    });
    this.sendBtn = h('button', { type: 'button', class: 'primary send', 'data-testid': 'send-button',
                                 'aria-label': s.send, title: s.send }, icon(ICONS.send));
    this.cancelBtn = h('button', { type: 'button', class: 'icon-btn', 'data-testid': 'cancel-edit',
                                   'aria-label': s.cancelEdit, title: s.cancelEdit, hidden: true },
      icon(ICONS.close));
    this.editNote = h('div', { class: 'editing', 'data-testid': 'editing-note', hidden: true },
      s.editing);
    this.el = h('div', { class: 'composer-wrap' }, this.editNote,
      h('div', { class: 'composer', 'data-testid': 'composer' }, this.input, this.cancelBtn, this.sendBtn));

    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      } else if (e.key === 'Escape' && this.editingId) {
        e.preventDefault();
        e.stopPropagation(); // Escape cancels the edit, not the whole panel
        this.cancelEdit();
      }
    });
    this.input.addEventListener('input', () => {
      this.autosize();
      this.updateButton();
      if (!this.editingId && this.input.value.trim()) this.handlers.typing();
    });
    this.sendBtn.addEventListener('click', () => this.submit());
    this.cancelBtn.addEventListener('click', () => { this.cancelEdit(); this.input.focus(); });
    this.updateButton();
  }

  get editing(): boolean {
    return this.editingId !== undefined;
  }

  /** Puts one of the user's messages in the box for editing. */
  startEdit(id: string, text: string): void {
    if (!this.editingId) this.draft = this.input.value;
    this.editingId = id;
    this.input.value = text;
    this.editNote.hidden = false;
    this.cancelBtn.hidden = false;
    this.sendBtn.setAttribute('aria-label', this.s.save);
    this.sendBtn.title = this.s.save;
    this.el.dataset.mode = 'edit';
    this.autosize();
    this.updateButton();
    this.input.focus();
    this.input.setSelectionRange(text.length, text.length);
  }

  cancelEdit(): void {
    if (!this.editingId) return;
    this.editingId = undefined;
    this.input.value = this.draft;
    this.draft = '';
    this.editNote.hidden = true;
    this.cancelBtn.hidden = true;
    this.sendBtn.setAttribute('aria-label', this.s.send);
    this.sendBtn.title = this.s.send;
    delete this.el.dataset.mode;
    this.autosize();
    this.updateButton();
  }

  /** Leaves edit mode and empties the box (another room was opened). */
  reset(): void {
    this.cancelEdit();
    this.input.value = '';
    this.autosize();
    this.updateButton();
  }

  focus(): void {
    this.input.focus();
  }

  private submit(): void {
    const text = this.input.value.trim();
    if (!text) return;
    if (this.editingId) {
      const id = this.editingId;
      this.cancelEdit();
      this.handlers.saveEdit(id, text);
    } else {
      this.input.value = '';
      this.handlers.send(text);
    }
    this.autosize();
    this.updateButton();
  }

  private updateButton(): void {
    this.sendBtn.disabled = this.input.value.trim() === '';
  }

  private autosize(): void {
    this.input.style.height = 'auto';
    this.input.style.height = Math.min(this.input.scrollHeight + 2, 120) + 'px';
  }
}
