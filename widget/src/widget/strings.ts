// Every string the widget shows or announces, in English. A site replaces any of them with
// ChatWidget.init({strings: {...}}) (or data in ChatWidgetConfig) to translate the UI;
// `{name}`-style placeholders are filled by fmt().

export const defaultStrings = {
  launcherOpen: 'Open chat',
  launcherClose: 'Close chat',
  launcherUnread: '{count} unread',
  panelTitle: 'Chat',
  noticeRoomCreated: 'Conversation created',
  noticeMemberAdded: '{name} was added',
  noticeMemberRemoved: '{name} was removed',
  noticeRoomRenamed: 'Renamed to “{text}”',
  noticeRoomDeleted: 'This conversation was deleted',
  closePanel: 'Close chat',
  back: 'Back to conversations',
  roomsLabel: 'Conversations',
  noRooms: 'No conversations yet. Start one below.',
  newChatLabel: 'Room name or @user',
  newChatPlaceholder: 'Join a room or @user',
  newChatButton: 'Start',
  newChatInvalid: 'Type a room name (letters, digits, . _ : -) or @ and a user id.',
  roomUnread: '{count} unread',
  roomOnline: 'online',
  roomOffline: 'offline',
  lastFromYou: 'You: {text}',
  lastFrom: '{name}: {text}',
  loadOlder: 'Load older messages',
  loadingOlder: 'Loading older messages…',
  historyStart: 'Beginning of the conversation',
  messagesLabel: 'Messages in {room}',
  composerLabel: 'Message',
  composerPlaceholder: 'Write a message…',
  send: 'Send',
  save: 'Save',
  cancelEdit: 'Cancel editing',
  editing: 'Editing your message (Escape cancels)',
  edit: 'Edit message',
  editShort: 'Edit',
  deleteShort: 'Delete',
  delete: 'Delete message',
  react: 'Add a reaction',
  reactWith: 'React with {emoji}',
  reaction: '{emoji} {count}, by {users}',
  reactionPicker: 'Reactions',
  edited: '(edited)',
  deleted: 'Message deleted',
  removed: 'Message removed by moderation',
  pending: 'Sending…',
  pendingOffline: 'Waiting for the connection…',
  failed: 'Not sent: {reason}',
  seen: 'Seen',
  you: 'You',
  typingOne: '{name} is typing…',
  typingTwo: '{a} and {b} are typing…',
  typingMany: 'Several people are typing…',
  announce: '{name} in {room}: {text}',
  stateIdle: 'Not connected',
  stateConnecting: 'Connecting…',
  stateOpen: 'Connected',
  stateReconnecting: 'Offline. Reconnecting… Messages you write will be sent when the connection is back.',
  stateClosed: 'Disconnected. Reload the page to chat again.',
  notifyOn: 'Turn on browser notifications',
  notifyOff: 'Turn off browser notifications',
  notifyEnabled: 'Browser notifications are on',
  notifyDisabled: 'Browser notifications are off',
  notifyDenied: 'Notifications are blocked in the browser settings',
  notifyUnavailable: 'Notifications are not available here',
  errorJoin: 'Could not open {room}: {reason}',
  roomGone: 'You are no longer in {room}.',
  errorAction: 'That did not work: {reason}',
};

export type Strings = typeof defaultStrings;

/** The default strings with the site's replacements (unknown keys and non-strings ignored). */
export function mergeStrings(overrides?: Partial<Record<string, unknown>>): Strings {
  const s: Strings = { ...defaultStrings };
  if (overrides) {
    for (const k of Object.keys(defaultStrings) as (keyof Strings)[]) {
      const v = overrides[k];
      if (typeof v === 'string') s[k] = v;
    }
  }
  return s;
}

/** Fills `{key}` placeholders; unknown ones stay as written so a bad translation shows. */
export function fmt(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
}
