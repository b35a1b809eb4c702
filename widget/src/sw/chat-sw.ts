// The notifications service worker a tenant hosts on its own origin (docs/widget.md):
// shows a Web Push `message` payload as one notification per room, closes a room's
// notifications when a `close` payload says it was read elsewhere, and brings the chat
// to the front when a notification is clicked. A classic script with no imports.

/** docs/notify.md, Web Push: what the notify service sends. */
interface MessagePayload {
  type: 'message';
  tenant: string;
  room: string;
  seq: number;
  id: string;
  from: string;
  name?: string;
  text: string;
  count: number;
  ts: number;
}
interface ClosePayload {
  type: 'close';
  tenant: string;
  room: string;
  seq: number;
}
type Payload = MessagePayload | ClosePayload;

// The parts of the service worker global scope this file uses (the project's TypeScript
// configuration has the DOM library, not WebWorker's, so they are declared here).
interface SwNotification {
  tag: string;
  data: unknown;
  close(): void;
}
interface SwWindowClient {
  url: string;
  focused?: boolean;
  focus(): Promise<SwWindowClient>;
  postMessage(message: unknown): void;
}
interface SwScope {
  registration: {
    scope: string;
    showNotification(title: string, options: Record<string, unknown>): Promise<void>;
    getNotifications(filter?: { tag?: string }): Promise<SwNotification[]>;
  };
  clients: {
    matchAll(options: { type: 'window'; includeUncontrolled: boolean }): Promise<SwWindowClient[]>;
    openWindow(url: string): Promise<SwWindowClient | null>;
  };
  addEventListener(type: string, listener: (event: any) => void): void;
}
interface ExtendableEvent {
  waitUntil(p: Promise<unknown>): void;
}

declare const self: SwScope;

const isStr = (v: unknown): v is string => typeof v === 'string' && v !== '';
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The payload if it is one this worker knows, else undefined (anything malformed). */
export function parsePayload(raw: string | undefined | null): Payload | undefined {
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(raw ?? '');
  } catch {
    return undefined;
  }
  if (!p || typeof p !== 'object' || !isStr(p.room) || !isNum(p.seq)) return undefined;
  if (p.type === 'close') return p as unknown as ClosePayload;
  if (p.type === 'message' && isStr(p.from) && typeof p.text === 'string') {
    return p as unknown as MessagePayload;
  }
  return undefined;
}

const isDm = (room: string) => room.startsWith('dm:');

/** Title and options of the notification for a message payload. */
export function notificationFor(p: MessagePayload): { title: string; options: Record<string, unknown> } {
  const who = isStr(p.name) ? p.name : p.from;
  // A dm's room name is only the two user ids: the sender says it all.
  const title = isDm(p.room) ? who : `${who} in ${p.room}`;
  const count = isNum(p.count) ? p.count : 1;
  const body = count > 1 ? `${p.text} (${count} new)` : p.text;
  return {
    title,
    options: { body, tag: p.room, renotify: true, data: p, timestamp: isNum(p.ts) ? p.ts : undefined },
  };
}

async function onPush(data: { text(): string } | null | undefined): Promise<void> {
  let raw: string | undefined;
  try {
    raw = data?.text();
  } catch {
    return;
  }
  const p = parsePayload(raw);
  if (!p) return;
  if (p.type === 'message') {
    const n = notificationFor(p);
    await self.registration.showNotification(n.title, n.options);
    return;
  }
  // Read up to p.seq elsewhere: close what that covers, keep a newer message's notification.
  const shown = await self.registration.getNotifications({ tag: p.room });
  for (const n of shown) {
    const d = n.data as Partial<MessagePayload> | null;
    if (n.tag !== p.room) continue;
    if (d && isNum(d.seq) && d.seq > p.seq) continue;
    n.close();
  }
}

async function onClick(notification: SwNotification): Promise<void> {
  notification.close();
  const d = notification.data as Partial<MessagePayload> | null;
  const room = d && isStr(d.room) ? d.room : undefined;
  const scope = self.registration.scope;
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const ours = windows.filter((c) => c.url.startsWith(scope));
  const target = ours.find((c) => c.focused) ?? ours[0];
  if (target) {
    const focused = await target.focus().catch(() => target);
    if (room) (focused ?? target).postMessage({ type: 'chat-open', room });
    return;
  }
  await self.clients.openWindow(scope);
}

self.addEventListener('push', (event: ExtendableEvent & { data?: { text(): string } | null }) => {
  event.waitUntil(onPush(event.data).catch(() => undefined));
});

self.addEventListener('notificationclick', (event: ExtendableEvent & { notification: SwNotification }) => {
  event.waitUntil(onClick(event.notification).catch(() => undefined));
});
