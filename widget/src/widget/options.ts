// The widget's options: from the script tag's data-* attributes, window.ChatWidgetConfig or
// ChatWidget.init(options), normalised into one shape with the defaults of docs/widget.md.

import type { Strings } from './strings';

export interface WidgetOptions {
  tokenUrl?: string;
  tokenProvider?: () => Promise<string>;
  /** ws(s) URLs, or one comma-separated string (as in data-gateways). */
  gateways?: string[] | string;
  rooms?: string[] | string;
  theme?: 'light' | 'dark' | 'auto';
  position?: 'right' | 'left';
  open?: boolean | string;
  swUrl?: string;
  auto?: boolean | string;
  strings?: Partial<Strings>;
  /** Mount inside this element (no launcher; the panel fills it). */
  container?: HTMLElement;
  /** Namespace of the SDK's persisted outbox (e.g. the site's user id). */
  storageKey?: string;
}

export interface ResolvedOptions {
  tokenUrl?: string;
  tokenProvider?: () => Promise<string>;
  gateways: string[];
  rooms: string[];
  theme: 'light' | 'dark' | 'auto';
  position: 'right' | 'left';
  open: boolean;
  swUrl?: string;
  strings?: Partial<Strings>;
  container?: HTMLElement;
  storageKey?: string;
}

const list = (v: string[] | string | undefined): string[] =>
  (Array.isArray(v) ? v : (v ?? '').split(','))
    .map((x) => String(x).trim()).filter((x) => x !== '');

const flag = (v: boolean | string | undefined): boolean => v === true || v === 'true' || v === '';

/** The gateway of the host that served the widget: `wss?://<origin>/v1/ws`. */
export function defaultGateway(scriptSrc: string | undefined): string {
  const base = new URL(scriptSrc || location.href, location.href);
  return (base.protocol === 'https:' ? 'wss://' : 'ws://') + base.host + '/v1/ws';
}

/** Options from a script tag's data-* attributes (only those present). */
export function optionsFromScript(script: HTMLScriptElement): WidgetOptions {
  const d = script.dataset;
  const o: WidgetOptions = {};
  if (d.tokenUrl !== undefined) o.tokenUrl = d.tokenUrl;
  if (d.gateways !== undefined) o.gateways = d.gateways;
  if (d.rooms !== undefined) o.rooms = d.rooms;
  if (d.theme !== undefined) o.theme = d.theme as WidgetOptions['theme'];
  if (d.position !== undefined) o.position = d.position as WidgetOptions['position'];
  if (d.open !== undefined) o.open = d.open;
  if (d.swUrl !== undefined) o.swUrl = d.swUrl;
  if (d.auto !== undefined) o.auto = d.auto;
  return o;
}

export function resolveOptions(o: WidgetOptions, scriptSrc: string | undefined): ResolvedOptions {
  if (!o.tokenUrl && !o.tokenProvider) {
    throw new Error('ChatWidget: data-token-url (or the tokenProvider option) is required');
  }
  const gateways = list(o.gateways);
  return {
    tokenUrl: o.tokenUrl,
    tokenProvider: o.tokenProvider,
    gateways: gateways.length ? gateways : [defaultGateway(scriptSrc)],
    rooms: list(o.rooms),
    theme: o.theme === 'light' || o.theme === 'dark' ? o.theme : 'auto',
    position: o.position === 'left' ? 'left' : 'right',
    open: flag(o.open),
    swUrl: o.swUrl || undefined,
    strings: o.strings,
    container: o.container,
    storageKey: o.storageKey,
  };
}
