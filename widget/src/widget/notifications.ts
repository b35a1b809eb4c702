// Browser notifications when the tab is closed (data-sw-url): registers the tenant's copy
// of chat-sw.js, asks for the Notification permission on a click of the bell (browsers
// only allow it from a user gesture), subscribes with the deployment's VAPID key and hands
// the subscription to the server. It also opens the room a clicked notification names.

import type { ChatClient } from '../sdk/types';
import { h, icon, ICONS } from './dom';
import { fmt, type Strings } from './strings';

type NotifyState = 'off' | 'on' | 'denied' | 'unavailable' | 'busy';

/** A base64url VAPID key as the bytes PushManager.subscribe wants. */
export function vapidKeyBytes(key: string): Uint8Array {
  const b64 = key.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (key.length % 4)) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The part of a PushSubscription the server stores (endpoint + keys). */
function subscriptionBody(sub: PushSubscription) {
  const json = sub.toJSON();
  const keys = json.keys ?? {};
  if (!json.endpoint || !keys.p256dh || !keys.auth) throw new Error('incomplete push subscription');
  return { endpoint: json.endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } };
}

export class Notifications {
  readonly button: HTMLButtonElement;
  private registration: Promise<ServiceWorkerRegistration | undefined>;
  private state: NotifyState = 'busy';
  private toggling = false;
  private offMessage: (() => void) | undefined;
  private offWelcome: (() => void) | undefined;

  constructor(private client: ChatClient, private s: Strings, swUrl: string,
              private openRoom: (room: string) => void, private report: (text: string) => void,
              private announce: (text: string) => void) {
    this.button = h('button', { type: 'button', class: 'icon-btn notify', 'data-testid': 'notify-button' },
      icon(ICONS.bell));
    this.button.addEventListener('click', () => this.toggle());
    const supported = 'serviceWorker' in navigator && typeof PushManager === 'function' &&
      typeof Notification === 'function';
    if (!supported) {
      this.registration = Promise.resolve(undefined);
      this.setState('unavailable');
      return;
    }
    this.registration = navigator.serviceWorker.register(swUrl).catch(() => undefined);
    const onMessage = (e: MessageEvent) => {
      const d = e.data as { type?: unknown; room?: unknown } | null;
      if (d && d.type === 'chat-open' && typeof d.room === 'string') this.openRoom(d.room);
    };
    navigator.serviceWorker.addEventListener('message', onMessage);
    this.offMessage = () => navigator.serviceWorker.removeEventListener('message', onMessage);
    // A subscription made earlier is handed to the server again at every welcome: the
    // browser may have renewed it, and the server keeps only a user's latest ten.
    this.offWelcome = client.on('welcome', () => { void this.resync(); });
    void this.resync();
  }

  destroy(): void {
    this.offMessage?.();
    this.offWelcome?.();
  }

  /** Shows whether this browser is subscribed and tells the server again if so. */
  private async resync(): Promise<void> {
    if (this.toggling) return; // the click in progress sets the state when it is done
    const reg = await this.registration;
    if (!reg) return this.setState('unavailable');
    if (Notification.permission === 'denied') return this.setState('denied');
    const sub = await reg.pushManager.getSubscription().catch(() => null);
    if (!sub || Notification.permission !== 'granted') return this.setState('off');
    this.setState('on');
    if (this.client.state === 'open') {
      await this.client.pushSubscribe(subscriptionBody(sub)).catch(() => undefined);
    }
  }

  private setState(st: NotifyState): void {
    this.state = st;
    const s = this.s;
    const label = st === 'on' ? s.notifyOff : st === 'denied' ? s.notifyDenied
      : st === 'unavailable' ? s.notifyUnavailable : s.notifyOn;
    this.button.dataset.state = st;
    this.button.setAttribute('aria-label', label);
    this.button.title = label;
    this.button.setAttribute('aria-pressed', st === 'on' ? 'true' : 'false');
    this.button.setAttribute('aria-disabled', st === 'denied' || st === 'unavailable' ? 'true' : 'false');
  }

  private async toggle(): Promise<void> {
    if (this.toggling || this.state === 'unavailable') return;
    if (this.state === 'denied') return this.report(this.s.notifyDenied);
    const wasOn = this.state === 'on';
    this.toggling = true;
    this.setState('busy');
    try {
      if (wasOn) await this.unsubscribe();
      else await this.subscribe();
    } catch (e) {
      const reason = e instanceof Error ? e.message : String((e as { message?: string })?.message ?? e);
      this.report(fmt(this.s.errorAction, { reason }));
      this.toggling = false;
      await this.resync();
    } finally {
      this.toggling = false;
    }
  }

  private async subscribe(): Promise<void> {
    // The permission prompt must come straight from the click, before any other await.
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') {
      this.setState(permission === 'denied' ? 'denied' : 'off');
      return;
    }
    const reg = await this.registration;
    const key = this.client.vapidKey;
    if (!reg || !key) {
      this.setState('unavailable');
      return;
    }
    await navigator.serviceWorker.ready;
    const sub = (await reg.pushManager.getSubscription()) ??
      (await reg.pushManager.subscribe({ userVisibleOnly: true,
                                         applicationServerKey: vapidKeyBytes(key) as BufferSource }));
    await this.client.pushSubscribe(subscriptionBody(sub));
    this.setState('on');
    this.announce(this.s.notifyEnabled);
  }

  private async unsubscribe(): Promise<void> {
    const reg = await this.registration;
    const sub = await reg?.pushManager.getSubscription();
    if (sub) {
      await this.client.pushUnsubscribe(sub.endpoint).catch(() => undefined);
      await sub.unsubscribe();
    }
    this.setState('off');
    this.announce(this.s.notifyDisabled);
  }
}
