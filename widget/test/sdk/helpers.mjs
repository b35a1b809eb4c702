// Shared by the SDK tests: the built SDK (CHAT_WIDGET_DIR's chat-sdk.mjs, or built from
// src/sdk with esbuild into a temporary directory), the stack's environment (CHAT_STACK_ENV),
// demo tokens signed like a tenant backend signs them, and a WebSocket that tests can cut
// or make lose frames.
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';

const widgetDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

let sdk;
/** The SDK module as tenants get it (chat-sdk.mjs). */
export async function loadSdk() {
  if (!sdk) {
    let file;
    if (process.env.CHAT_WIDGET_DIR) {
      file = join(process.env.CHAT_WIDGET_DIR, 'chat-sdk.mjs');
    } else {
      const { build } = await import(pathToFileURL(join(widgetDir, 'node_modules/esbuild/lib/main.js')).href);
      file = join(mkdtempSync(join(tmpdir(), 'chat-sdk-test-')), 'chat-sdk.mjs');
      await build({ entryPoints: [join(widgetDir, 'src/sdk/index.ts')], bundle: true, format: 'esm',
                    target: ['es2020'], outfile: file, logLevel: 'warning' });
    }
    sdk = await import(pathToFileURL(file).href);
  }
  return sdk;
}

/** One module of src/sdk on its own (unit tests of the pure parts), bundled with esbuild. */
export async function loadModule(name) {
  const { build } = await import(pathToFileURL(join(widgetDir, 'node_modules/esbuild/lib/main.js')).href);
  const file = join(mkdtempSync(join(tmpdir(), 'chat-sdk-unit-')), name + '.mjs');
  await build({ entryPoints: [join(widgetDir, 'src/sdk', name + '.ts')], bundle: true, format: 'esm',
                target: ['es2020'], outfile: file, logLevel: 'warning' });
  return import(pathToFileURL(file).href);
}

/** The stack's KEY='value' file, or undefined without CHAT_STACK_ENV (network tests skip). */
export function stackEnv() {
  const f = process.env.CHAT_STACK_ENV;
  if (!f) return undefined;
  const env = {};
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(?:'([^']*)'|(.*))$/.exec(line.trim());
    if (m) env[m[1]] = m[2] ?? m[3];
  }
  return env;
}

export const env = stackEnv();
export const gateways = env ? env.CHAT_GATEWAY_URLS.split(',') : [];
/** Why network tests are skipped, or false. */
export const noStack = env ? false : 'CHAT_STACK_ENV is not set (no stack to test against)';

const b64url = (b) => Buffer.from(b).toString('base64url');

/** An HS256 token of the demo tenant: {tid, sub, name, exp}. */
export function token(sub, { ttlSec = 3600, name } = {}) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ tid: env.CHAT_DEMO_TENANT, sub, name: name ?? sub,
                                       exp: Math.floor(Date.now() / 1000) + ttlSec }));
  const sig = createHmac('sha256', env.CHAT_DEMO_SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Posts a message through the tenant's server API (no per-connection rate limit: fills a
 *  room fast); retried on 429. Answers {room, seq, id, ts, cid, from}. */
export async function apiPost(room, from, text, cid) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ tid: env.CHAT_DEMO_TENANT, scope: 'server', iat: now, exp: now + 120 }));
  const sig = createHmac('sha256', env.CHAT_DEMO_SECRET).update(`${head}.${body}`).digest('base64url');
  for (;;) {
    const res = await fetch(`${env.CHAT_API_URL}/v1/rooms/${encodeURIComponent(room)}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${head}.${body}.${sig}`, 'content-type': 'application/json' },
      body: JSON.stringify({ from, text, cid }),
    });
    if (res.status === 429) {
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') || 0.2)));
      continue;
    }
    if (res.status !== 201) throw new Error(`POST messages answered ${res.status}: ${await res.text()}`);
    return res.json();
  }
}

/** A WebSocket class for options.WebSocket that keeps its instances (tests cut them with
 *  terminate()), records the frames the SDK sends (sent), lets drop(frame) lose server
 *  frames before the SDK sees them and twice(frame) hand them over twice, and while
 *  `offline` is set connects nowhere (a closed port: the attempt fails like on a dead
 *  network). */
export function trackingWebSocket({ drop = () => false, twice = () => false } = {}) {
  const sockets = [];
  const sent = [];
  const control = { offline: false };
  class Tracked extends WebSocket {
    constructor(url) {
      super(control.offline ? 'ws://127.0.0.1:9/v1/ws' : url);
      this.target = url;
      sockets.push(this);
    }
    send(data) {
      sent.push(JSON.parse(data));
      super.send(data);
    }
    set onmessage(fn) {
      super.onmessage = fn && ((ev) => {
        let f;
        try { f = JSON.parse(String(ev.data)); } catch { f = undefined; }
        if (f && drop(f)) return;
        fn(ev);
        if (f && twice(f)) fn(ev);
      });
    }
    get onmessage() { return super.onmessage; }
  }
  return {
    WebSocket: Tracked, sockets, sent,
    get last() { return sockets[sockets.length - 1]; },
    set offline(v) { control.offline = v; },
    /** Cuts the current connection as a network would (no close frame). */
    cut() { sockets[sockets.length - 1].terminate(); },
  };
}

/** A unique name for this run (tests share the stack with others). */
export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/** Resolves once cond() is true (polled), rejects with what after timeoutMs. */
export async function until(cond, what, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A client of user over the stack's gateways (memory outbox unless given). */
export async function client(user, options = {}) {
  const { createChatClient } = await loadSdk();
  return createChatClient({
    gateways,
    tokenProvider: async () => token(user),
    storage: 'memory',
    WebSocket,
    backoff: { initialMs: 100, maxMs: 1000 },
    ...options,
  });
}

/** Every `message` event of room, in the order delivered. */
export function messages(c, room) {
  const got = [];
  c.on('message', (m) => { if (m.room === room) got.push(m); });
  return got;
}

/** Sends texts one after the other (each waits for its ack), paced under the rate limit. */
export async function sendAll(c, room, texts, gapMs = 60) {
  const acks = [];
  for (const t of texts) {
    acks.push(await c.send(room, t));
    await new Promise((r) => setTimeout(r, gapMs));
  }
  return acks;
}

/** Closes the clients when test t ends (passed or not). */
export function closing(t, ...clients) {
  t.after(() => { for (const c of clients) c.close(); });
  return clients;
}
