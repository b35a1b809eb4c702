// The entry of widget.js: captures its own script tag while it runs, exposes
// window.ChatWidget and mounts the widget from the tag's data-* attributes (merged with
// window.ChatWidgetConfig) unless data-auto="false".

import { mountWidget, type WidgetHandle } from './mount';
import { optionsFromScript, resolveOptions, type WidgetOptions } from './options';

export const VERSION = '0.1.0';

// Only valid during this first, synchronous run (async scripts included).
const script = document.currentScript as HTMLScriptElement | null;
const scriptSrc = script?.src || undefined;

function init(options: WidgetOptions): WidgetHandle {
  const resolved = resolveOptions(options, scriptSrc);
  return mountWidget(resolved);
}

declare global {
  interface Window {
    ChatWidget?: { init(options: WidgetOptions): WidgetHandle; version: string };
    ChatWidgetConfig?: WidgetOptions;
  }
}

window.ChatWidget = { init, version: VERSION };

if (script) {
  // The tag's attributes win over ChatWidgetConfig: they are the more specific setting.
  const options: WidgetOptions = { ...(window.ChatWidgetConfig ?? {}), ...optionsFromScript(script) };
  const auto = options.auto;
  if (auto !== false && auto !== 'false') {
    const start = () => {
      try {
        init(options);
      } catch (e) {
        console.error(e);
      }
    };
    if (document.body) start();
    else document.addEventListener('DOMContentLoaded', start, { once: true });
  }
}
