// The widget's stylesheet, scoped to its shadow root. `:host { all: initial !important }` cuts
// every inherited property of the host page (the host element is in the page, where a site's
// `* { font-size: 40px !important }` reaches it; an important declaration of the shadow tree's
// :host wins over the page's, a normal one would lose), so what :host sets is important too.
// The page can only theme the widget through these custom properties (set them on
// `[data-chat-widget]` or any ancestor):
//
//   --chat-accent      buttons, own messages, focus ring      (default #2563eb / #60a5fa dark)
//   --chat-accent-fg   text on the accent colour              (#fff / #0b1220)
//   --chat-bg          panel background                       (#fff / #111827)
//   --chat-fg          main text                              (#111827 / #f3f4f6)
//   --chat-muted       secondary text, borders                (#6b7280 / #9ca3af)
//   --chat-surface     other people's messages, inputs        (#f3f4f6 / #1f2937)
//   --chat-danger      errors, unread badges                  (#dc2626 / #f87171)
//   --chat-online      presence dot                           (#16a34a / #4ade80)
//   --chat-radius      corner radius of bubbles and the panel (12px)
//   --chat-font        font family                            (system-ui stack)
//   --chat-font-size   base font size                         (15px)
//   --chat-z           z-index of the launcher and panel      (2147483000)
//   --chat-width / --chat-height  panel size on wide screens  (380px / 600px)
//
// data-theme="light|dark|auto" on the host picks the palette (auto follows
// prefers-color-scheme). Below 480 px the panel covers the whole viewport.

// The dark palette, for data-theme="dark" and for "auto" under a dark system setting.
const DARK = `
  --_accent: var(--chat-accent, #60a5fa);
  --_accent-fg: var(--chat-accent-fg, #0b1220);
  --_bg: var(--chat-bg, #111827);
  --_fg: var(--chat-fg, #f3f4f6);
  --_muted: var(--chat-muted, #9ca3af);
  --_surface: var(--chat-surface, #1f2937);
  --_danger: var(--chat-danger, #f87171);
  --_online: var(--chat-online, #4ade80);
  --_shadow: 0 10px 30px rgba(0,0,0,.6);
`;

export const styles = `
:host { all: initial !important; }
:host {
  --_accent: var(--chat-accent, #2563eb);
  --_accent-fg: var(--chat-accent-fg, #ffffff);
  --_bg: var(--chat-bg, #ffffff);
  --_fg: var(--chat-fg, #111827);
  --_muted: var(--chat-muted, #6b7280);
  --_surface: var(--chat-surface, #f3f4f6);
  --_danger: var(--chat-danger, #dc2626);
  --_online: var(--chat-online, #16a34a);
  --_radius: var(--chat-radius, 12px);
  --_shadow: 0 10px 30px rgba(0,0,0,.18), 0 2px 8px rgba(0,0,0,.12);
  font-family: var(--chat-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif) !important;
  font-size: var(--chat-font-size, 15px) !important;
  line-height: 1.4 !important;
  color: var(--_fg) !important;
}
:host([data-theme="dark"]) { ${DARK} }
@media (prefers-color-scheme: dark) {
  :host([data-theme="auto"]) { ${DARK} }
}
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
button, input, textarea { font: inherit; color: inherit; }
button { cursor: pointer; }
:focus-visible { outline: 3px solid var(--_accent); outline-offset: 2px; }
.sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.icon-btn { display: inline-flex; align-items: center; justify-content: center;
  width: 36px; height: 36px; border: 0; border-radius: 50%; background: transparent; }
.icon-btn:hover { background: var(--_surface); }

.launcher { position: fixed; bottom: 20px; right: 20px; z-index: var(--chat-z, 2147483000);
  width: 56px; height: 56px; border-radius: 50%; border: 0; background: var(--_accent);
  color: var(--_accent-fg); box-shadow: var(--_shadow); display: flex; align-items: center;
  justify-content: center; }
:host([data-position="left"]) .launcher { right: auto; left: 20px; }
.launcher svg { width: 28px; height: 28px; }
.badge { min-width: 20px; height: 20px; padding: 0 6px; border-radius: 10px;
  background: var(--_danger); color: #fff; font-size: 12px; font-weight: 700;
  display: inline-flex; align-items: center; justify-content: center; }
.launcher .badge { position: absolute; top: -4px; right: -4px; }

.panel { position: fixed; bottom: 88px; right: 20px; z-index: var(--chat-z, 2147483000);
  width: var(--chat-width, 380px); height: var(--chat-height, 600px);
  max-height: calc(100vh - 108px); background: var(--_bg); color: var(--_fg);
  border-radius: var(--_radius); box-shadow: var(--_shadow); display: flex;
  flex-direction: column; overflow: hidden; }
:host([data-position="left"]) .panel { right: auto; left: 20px; }
:host([data-inline]) { display: block !important; height: 100% !important; }
:host([data-inline]) .panel { position: static; width: 100%; height: 100%; max-height: none;
  box-shadow: none; }
@media (max-width: 480px) {
  :host(:not([data-inline])) .panel { inset: 0; width: 100%; height: 100%; max-height: none;
    border-radius: 0; }
  :host(:not([data-inline])) .launcher.open { display: none; }
}

.header { display: flex; align-items: center; gap: 4px; padding: 8px;
  border-bottom: 1px solid var(--_surface); min-height: 52px; }
.header h2 { flex: 1; margin: 0 4px; font-size: 1.05em; font-weight: 650; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; display: flex; align-items: center; gap: 6px; }
.notify[aria-pressed="true"] { color: var(--_accent); }

.status { padding: 6px 12px; font-size: .85em; background: var(--_surface); }
.status[data-state="open"] { display: none; }
.status[data-state="reconnecting"], .status[data-state="closed"] {
  background: var(--_danger); color: #fff; }

.notice { padding: 6px 12px; font-size: .85em; border-bottom: 1px solid var(--_surface);
  color: var(--_danger); }
.view { flex: 1; display: flex; flex-direction: column; min-height: 0; }
.rooms { list-style: none; margin: 0; padding: 4px 0; overflow-y: auto; flex: 1; }
.room-btn { width: 100%; display: flex; align-items: center; gap: 10px; padding: 10px 14px;
  border: 0; background: transparent; text-align: left; }
.room-btn:hover { background: var(--_surface); }
.room-main { flex: 1; min-width: 0; display: flex; flex-direction: column; }
.room-name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.room-last { color: var(--_muted); font-size: .88em; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.avatar { flex: none; position: relative; width: 36px; height: 36px; border-radius: 50%;
  background: var(--_surface); display: flex; align-items: center; justify-content: center;
  font-weight: 700; color: var(--_muted); }
.dot { width: 10px; height: 10px; border-radius: 50%; background: var(--_muted);
  border: 2px solid var(--_bg); display: inline-block; flex: none; }
.avatar .dot { position: absolute; right: -1px; bottom: -1px; }
.dot[data-online="true"] { background: var(--_online); }
.empty { color: var(--_muted); padding: 16px; text-align: center; }
.new-chat { display: flex; gap: 6px; padding: 10px; border-top: 1px solid var(--_surface); }
.new-chat input, .composer textarea { flex: 1; min-width: 0; border: 1px solid var(--_muted);
  border-radius: calc(var(--_radius) / 1.5); background: var(--_bg); padding: 8px 10px; }
.primary { border: 0; border-radius: calc(var(--_radius) / 1.5); background: var(--_accent);
  color: var(--_accent-fg); padding: 8px 14px; font-weight: 600; }
.primary:disabled { opacity: .5; cursor: default; }
.error { color: var(--_danger); font-size: .85em; padding: 0 12px 8px; }

.log { position: relative; margin: 0; list-style: none; flex: 1; overflow-y: auto; padding: 8px 12px; display: flex; flex-direction: column;
  gap: 6px; overscroll-behavior: contain; }
.older-row { display: flex; justify-content: center; }
.older { align-self: center; border: 1px solid var(--_muted); background: transparent;
  border-radius: 999px; padding: 4px 12px; font-size: .85em; color: var(--_muted); }
.history-start { text-align: center; color: var(--_muted); font-size: .8em; }
.msg { max-width: 85%; align-self: flex-start; display: flex; flex-direction: column; gap: 2px; }
.msg.own { align-self: flex-end; align-items: flex-end; }
.msg.system { align-self: center; max-width: 100%; }
.notice-line { color: var(--_muted); font-size: .85em; text-align: center; padding: 2px 8px; }
.meta { font-size: .75em; color: var(--_muted); display: flex; gap: 6px; align-items: baseline; }
.author { font-weight: 600; }
.bubble { background: var(--_surface); padding: 7px 11px; border-radius: var(--_radius);
  white-space: pre-wrap; overflow-wrap: anywhere; }
.own .bubble { background: var(--_accent); color: var(--_accent-fg); }
.own .bubble a { color: inherit; }
.bubble a { color: var(--_accent); text-decoration: underline; }
.msg[data-state="pending"] .bubble { opacity: .6; }
.msg[data-state="failed"] .bubble { outline: 1px solid var(--_danger); }
.placeholder { font-style: italic; color: var(--_muted); background: transparent;
  border: 1px dashed var(--_muted); }
.own .placeholder { background: transparent; color: var(--_muted); }
.note { font-size: .75em; color: var(--_muted); }
.note.err { color: var(--_danger); }
.actions { display: inline-flex; gap: 2px; opacity: 0; transition: opacity .1s; }
.own .actions { order: -1; }
.msg:hover .actions, .msg:focus-within .actions { opacity: 1; }
@media (hover: none) { .actions { opacity: 1; } }
.actions button { border: 0; background: transparent; color: var(--_muted); font-size: 1em;
  padding: 0 5px; border-radius: 6px; }
.actions button:hover { background: var(--_surface); color: var(--_fg); }
.reactions { display: flex; flex-wrap: wrap; gap: 4px; }
.reaction, .picker button { border: 1px solid var(--_surface); background: var(--_bg);
  border-radius: 999px; padding: 1px 8px; font-size: .85em; }
.reaction[aria-pressed="true"] { border-color: var(--_accent); }
.picker { display: flex; gap: 4px; padding: 4px; background: var(--_bg);
  border: 1px solid var(--_surface); border-radius: var(--_radius); }
.seen { font-size: .75em; color: var(--_muted); }
.typing { min-height: 1.4em; padding: 0 12px; font-size: .8em; color: var(--_muted);
  font-style: italic; }
.composer { display: flex; gap: 6px; padding: 8px 10px 10px; border-top: 1px solid var(--_surface);
  align-items: flex-end; }
.composer textarea { resize: none; max-height: 120px; min-height: 40px; }
.composer .editing { font-size: .8em; color: var(--_muted); padding: 4px 12px 0; }
.composer-wrap { display: flex; flex-direction: column; }
.send { width: 40px; height: 40px; border-radius: 50%; padding: 0; display: inline-flex;
  align-items: center; justify-content: center; }
`;
