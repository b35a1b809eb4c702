// What the browser tests share: the stack's environment (CHAT_STACK_ENV and friends), HS256
// tokens for the demo tenant, a "tenant site" (a node:http server on its own origin that embeds
// the widget with the README's script tag and answers /chat/token), Chromium through
// playwright-core, the widget's data-testid hooks (CSS selectors pierce its open shadow root),
// waiting on conditions, killing and restoring a gateway, and the artefacts kept on failure.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';

// ---- the stack's environment ----

/** KEY='value' lines (scripts/up's stack.env); '#' comments; '\'' inside quotes. */
function parseEnvFile(path) {
  const out = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2].trim();
    if (v.startsWith("'") && v.endsWith("'") && v.length >= 2)
      v = v.slice(1, -1).replaceAll("'\\''", "'");
    else if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

function need(name) {
  const v = process.env[name];
  assert.ok(v, `${name} is not set (the browser tests run against a stack: see tests/CMakeLists.txt)`);
  return v;
}

const fileEnv = parseEnvFile(need('CHAT_STACK_ENV'));
/** A stack variable: the environment first (ctest sets some), then stack.env. */
function stackVar(name) {
  const v = process.env[name] ?? fileEnv[name];
  assert.ok(v, `${name} is neither in the environment nor in ${process.env.CHAT_STACK_ENV}`);
  return v;
}

const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

export const stack = {
  gateways: list(stackVar('CHAT_GATEWAY_URLS')), // ws://127.0.0.1:P/v1/ws
  opsGateways: list(stackVar('CHAT_OPS_GATEWAYS')), // http://127.0.0.1:P
  tenant: stackVar('CHAT_DEMO_TENANT'),
  secret: stackVar('CHAT_DEMO_SECRET'),
  pidsDir: stackVar('CHAT_STACK_PIDS'),
  stackDir: need('CHAT_STACK_DIR'),
  buildDir: need('CHAT_BUILD_DIR'),
  sourceDir: need('CHAT_SOURCE_DIR'),
  widgetDir: need('CHAT_WIDGET_DIR'),
  artefacts: need('CHAT_TEST_ARTEFACTS'),
};
assert.ok(stack.gateways.length >= 2, 'the browser tests need two gateways (scripts/up starts two)');
mkdirSync(stack.artefacts, { recursive: true });

/** http://host:port of gateway i (it serves /v1/widget.js and the demo on its ws port). */
export function gatewayHttp(i) {
  const u = new URL(stack.gateways[i]);
  return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`;
}

/** A suffix that makes names of this run unique on the shared stack. */
export function unique() {
  return Date.now().toString(36) + randomBytes(2).toString('hex');
}

// ---- tokens ----

const b64url = (x) => Buffer.from(x).toString('base64url');

/** An HS256 JWT for the demo tenant signed with CHAT_DEMO_SECRET (what a tenant's backend does). */
export function signToken({ sub, name, ttlSec = 3600, rooms } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { tid: stack.tenant, sub, iat: now, exp: now + ttlSec };
  if (name !== undefined) claims.name = name;
  if (rooms !== undefined) claims.rooms = rooms;
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', stack.secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** A server-API token of the demo tenant (what a tenant's backend uses; 5 minutes at most). */
export function serverToken() {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ tid: stack.tenant, scope: 'server', iat: now, exp: now + 240 }));
  const sig = createHmac('sha256', stack.secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** A call of the tenant server API (SERVER-API.md); resolves {status, body}. */
export async function serverApi(method, path, body) {
  const r = await fetch(`${stackVar('CHAT_API_URL')}/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${serverToken()}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10000),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// ---- the tenant site ----

const escapeAttr = (s) =>
  String(s).replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

// A site whose global CSS would wreck any UI that is not isolated from it.
const AGGRESSIVE_CSS = `
  * { color: red !important; font-size: 40px !important; font-family: "Comic Sans MS", cursive !important;
      line-height: 3 !important; letter-spacing: 4px !important; text-transform: uppercase !important; }
  div, span, p, ul, ol, li, a, button, input, textarea, section, header, footer, nav, form, label {
      display: block; margin: 16px; padding: 16px; border: 4px dashed lime; background: yellow;
      min-width: 200px; box-shadow: 0 0 0 12px magenta; }
  button, input, textarea { height: 120px; width: 90%; opacity: 0.9; }
  a { text-decoration: line-through; }
  [role="dialog"], [role="log"], [role="list"] { display: none; }
  [data-testid] { visibility: hidden; }
`;

function hostPage({ user, gateways, rooms, open, theme, position, sw, css, scriptGateway, integrity }) {
  const attrs = [`src="${gatewayHttp(scriptGateway)}/v1/widget.js"`, 'data-token-url="/chat/token"'];
  if (integrity) attrs.push(`integrity="${escapeAttr(integrity)}"`, 'crossorigin="anonymous"');
  if (gateways) attrs.push(`data-gateways="${escapeAttr(gateways.join(','))}"`);
  if (rooms) attrs.push(`data-rooms="${escapeAttr(rooms.join(','))}"`);
  if (open) attrs.push('data-open="true"');
  if (theme) attrs.push(`data-theme="${escapeAttr(theme)}"`);
  if (position) attrs.push(`data-position="${escapeAttr(position)}"`);
  if (sw) attrs.push('data-sw-url="/chat-sw.js"');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tenant site</title>
${css === 'aggressive' ? `<style>${AGGRESSIVE_CSS}</style>` : ''}
</head>
<body>
<main>
<h1>A tenant's page</h1>
<p>Signed in as <span id="site-user">${escapeAttr(user)}</span>.</p>
<ul><li><a href="#a">A link of the site</a></li><li><button type="button">A button of the site</button></li></ul>
</main>
<script ${attrs.join(' ')} async></script>
</body>
</html>`;
}

/**
 * Starts a tenant site on 127.0.0.1 (random port). GET /?user=U&name=N&gw=0,1&rooms=a,b&open=1
 * &theme=dark&css=aggressive|plain&sw=1&integrity=sha384-… sets a session cookie for U (display name N) and serves a
 * page embedding the widget with the README's script tag; GET /chat/token answers
 * {"token"} for the cookie's user; /chat-sw.js is the built service worker.
 */
export async function startTenantSite() {
  const sessions = new Map(); // sid -> {user, name}
  const tokenRequests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://site');
    const cookies = Object.fromEntries(
      (req.headers.cookie ?? '').split(';').map((c) => c.trim().split('=')).filter((p) => p.length === 2));
    if (url.pathname === '/') {
      const user = url.searchParams.get('user');
      if (!user) {
        res.writeHead(400).end('user missing');
        return;
      }
      const sid = randomBytes(12).toString('hex');
      sessions.set(sid, { user, name: url.searchParams.get('name') ?? undefined,
                          ttl: Number(url.searchParams.get('ttl') ?? 3600) });
      const ids = url.searchParams.get('gw');
      const page = hostPage({
        user,
        gateways: ids === null ? undefined : list(ids).map((i) => stack.gateways[Number(i)]),
        rooms: url.searchParams.has('rooms') ? list(url.searchParams.get('rooms')) : undefined,
        open: url.searchParams.get('open') === '1',
        theme: url.searchParams.get('theme') ?? undefined,
        position: url.searchParams.get('position') ?? undefined,
        sw: url.searchParams.get('sw') === '1',
        css: url.searchParams.get('css') ?? 'aggressive',
        scriptGateway: Number(url.searchParams.get('script') ?? 0),
        integrity: url.searchParams.get('integrity') ?? undefined,
      });
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'set-cookie': `sid=${sid}; Path=/; HttpOnly; SameSite=Lax`,
      });
      res.end(page);
      return;
    }
    if (url.pathname === '/chat/token') {
      const s = sessions.get(cookies.sid);
      tokenRequests.push({ user: s?.user, at: Date.now() });
      if (!s) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"not signed in"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ token: signToken({ sub: s.user, name: s.name, ttlSec: s.ttl }) }));
      return;
    }
    if (url.pathname === '/chat-sw.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' });
      res.end(readFileSync(join(stack.widgetDir, 'chat-sw.js')));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    tokenRequests,
    /** The page URL for a user; opts: gw (gateway indexes), rooms, open, theme, position, css, sw,
     *  name (the token's name claim), ttl (of the tokens, s), integrity, script (gateway index). */
    url(user, opts = {}) {
      const q = new URLSearchParams({ user });
      if (opts.name !== undefined) q.set('name', opts.name);
      if (opts.gw) q.set('gw', opts.gw.join(','));
      if (opts.rooms) q.set('rooms', opts.rooms.join(','));
      if (opts.open) q.set('open', '1');
      if (opts.theme) q.set('theme', opts.theme);
      if (opts.css) q.set('css', opts.css);
      if (opts.sw) q.set('sw', '1');
      if (opts.script !== undefined) q.set('script', String(opts.script));
      if (opts.integrity) q.set('integrity', opts.integrity);
      if (opts.ttl) q.set('ttl', String(opts.ttl));
      if (opts.position) q.set('position', opts.position);
      return `${origin}/?${q}`;
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

// ---- the browser ----

export function launchBrowser() {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true });
}

/** For a test file: a browser and a tenant site started before its tests and closed after
 *  them (fx.browser, fx.site; hooks a file adds run after these). */
export function useBrowserAndSite() {
  const fx = { browser: undefined, site: undefined };
  before(async () => {
    fx.browser = await launchBrowser();
    fx.site = await startTenantSite();
  });
  after(async () => {
    await fx.site?.close();
    await fx.browser?.close();
  });
  return fx;
}

/** Records what a page says (console, errors, WebSockets, the last frames) for failure reports. */
function record(page, log) {
  const t0 = Date.now();
  const at = () => `+${((Date.now() - t0) / 1000).toFixed(2)}s`;
  page.on('console', (m) => log.push(`${at()} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => {
    log.push(`${at()} pageerror: ${e.stack ?? e}`);
    log.uncaught.push(String(e.stack ?? e).split('\n').slice(0, 3).join(' | '));
  });
  page.on('response', (r) => { if (r.status() >= 400) log.push(`${at()} http ${r.status()} ${r.request().method()} ${r.url()}`); });
  page.on('requestfailed', (r) => log.push(`${at()} requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  page.on('websocket', (ws) => {
    log.push(`${at()} websocket open ${ws.url()}`);
    ws.on('close', () => log.push(`${at()} websocket closed ${ws.url()}`));
    ws.on('socketerror', (e) => log.push(`${at()} websocket error ${ws.url()}: ${e}`));
    const clip = (p) => (typeof p === 'string' ? p.replace(/"token":"[^"]*"/, '"token":"…"').slice(0, 300) : '<binary>');
    ws.on('framesent', (f) => log.push(`${at()} ws> ${clip(f.payload)}`));
    ws.on('framereceived', (f) => log.push(`${at()} ws< ${clip(f.payload)}`));
  });
}

/**
 * One scenario of a test: its browser contexts and pages, their logs, artefacts on failure,
 * and everything closed at the end.  run(t, async (s) => {...}).
 */
export class Scenario {
  constructor(browser, name) {
    this.browser = browser;
    this.name = name.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-|-$/g, '').toLowerCase().slice(0, 48);
    this.pages = []; // {label, page, log}
    this.contexts = [];
    this.cleanups = [];
  }

  /** A new browser context (a separate "device": own cookies, IndexedDB, network). */
  async context(opts = {}) {
    const ctx = await this.browser.newContext({ viewport: { width: 1100, height: 800 }, ...opts });
    // Waits on conditions end within a test's budget rather than playwright's 30 s default.
    ctx.setDefaultTimeout(10000);
    this.contexts.push(ctx);
    return ctx;
  }

  /** A new page in ctx, recorded under label. */
  async page(ctx, label) {
    const page = await ctx.newPage();
    const log = [];
    log.uncaught = []; // the page's uncaught exceptions
    record(page, log);
    const sockets = [];
    const frames = []; // {socket (index), dir, type, room, text, seq, replay}
    page.on('websocket', (ws) => {
      const entry = { url: ws.url(), closed: false };
      const n = sockets.push(entry) - 1;
      const joinedSeq = new Map(); // room -> the latest seq when this socket joined it
      ws.on('close', () => (entry.closed = true));
      const note = (dir) => (f) => {
        let m;
        try {
          m = JSON.parse(f.payload);
        } catch {
          return;
        }
        if (dir === 'in' && m.type === 'joined') joinedSeq.set(m.room, m.seq);
        // A msg at or below the joined seq is the join's replay of what the socket missed.
        const replay = dir === 'in' && m.type === 'msg' && joinedSeq.has(m.room) && m.seq <= joinedSeq.get(m.room);
        frames.push({ socket: n, dir, type: m.type, room: m.room, text: m.text, seq: m.seq, replay });
      };
      ws.on('framesent', note('out'));
      ws.on('framereceived', note('in'));
    });
    this.pages.push({ label, page, log, sockets, frames });
    return page;
  }

  /** The page's WebSockets so far ({url, closed}), oldest first. */
  sockets(page) {
    return this.pages.find((p) => p.page === page).sockets;
  }

  /** The page's WebSocket frames so far (parsed: socket index, dir in|out, type, room, text, seq,
   *  replay: a msg the join sent because the socket had missed it). */
  frames(page) {
    return this.pages.find((p) => p.page === page).frames;
  }

  /** The index of the gateway the page's one open WebSocket goes to. */
  currentGateway(page) {
    const open = this.sockets(page).filter((w) => !w.closed);
    assert.equal(open.length, 1, `one open WebSocket: ${JSON.stringify(this.sockets(page))}`);
    return gatewayIndex(open[0].url);
  }

  /** Opens url in a new page of ctx and waits for the widget's connection to be open. */
  async openWidget(ctx, label, url, { waitOpen = true } = {}) {
    const page = await this.page(ctx, label);
    await page.goto(url);
    if (waitOpen) await waitConnected(page);
    return page;
  }

  onCleanup(fn) {
    this.cleanups.push(fn);
  }

  async saveFailure(err) {
    const paths = [];
    for (const [i, { label, page, log }] of this.pages.entries()) {
      const base = join(stack.artefacts, `FAILED-${this.name}-${i}-${label}`);
      if (!page.isClosed()) {
        try {
          await page.screenshot({ path: `${base}.png`, fullPage: false, timeout: 5000 });
          paths.push(`${base}.png`);
        } catch (e) {
          log.push(`(screenshot failed: ${e.message})`);
        }
      }
      writeFileSync(`${base}.log`, log.join('\n') + '\n');
      paths.push(`${base}.log`);
    }
    console.log(`# ${this.name} failed: ${err?.message?.split('\n')[0]}\n# artefacts:\n${paths.map((p) => `#   ${p}`).join('\n')}`);
  }

  async close() {
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        console.log(`# cleanup of ${this.name}: ${e.message}`);
      }
    }
    for (const ctx of this.contexts) await ctx.close().catch(() => {});
  }
}

/** Runs body(scenario); on failure keeps screenshots and logs; always closes everything. */
export async function run(browser, t, body) {
  const s = new Scenario(browser, t.name);
  try {
    await body(s);
    // Whatever the scenario checked, the pages threw nothing uncaught.
    const uncaught = s.pages.flatMap(({ label, log }) => log.uncaught.map((e) => `${label}: ${e}`));
    assert.deepEqual(uncaught, [], 'uncaught exceptions in the pages');
  } catch (err) {
    await s.saveFailure(err);
    throw err;
  } finally {
    await s.close();
  }
}

// ---- waiting ----

/** Retries fn (an async check that throws) until it passes; throws its last error after timeout. */
export async function eventually(fn, { timeout = 15000, interval = 100, what } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) break;
    await sleep(interval);
  }
  if (what && last) last.message = `${what} (not within ${timeout} ms): ${last.message}`;
  throw last;
}

// ---- the widget's DOM (docs/widget.md, "DOM contract") ----

export const tid = (id) => `[data-testid="${id}"]`;
export const byTestId = (page, id) => page.locator(tid(id));
const cssString = (s) => JSON.stringify(String(s));

export const roomItem = (page, room) => page.locator(`${tid('room-item')}[data-room=${cssString(room)}]`);

/** Waits for the widget's connection-status to say "open". */
export async function waitConnected(page, timeout = 20000) {
  await page.locator(`${tid('connection-status')}[data-state="open"]`).waitFor({ state: 'attached', timeout });
}

export async function connectionState(page) {
  return byTestId(page, 'connection-status').getAttribute('data-state');
}

/** Opens the panel if it is closed (the launcher toggles it). */
export async function openPanel(page) {
  const panel = byTestId(page, 'panel');
  if (!(await panel.isVisible())) await byTestId(page, 'launcher').click();
  await panel.waitFor({ state: 'visible' });
}

/** Clicks a room of the room list (going back to it first if a conversation is open). */
export async function openRoom(page, room) {
  await openPanel(page);
  const back = byTestId(page, 'back-button');
  if (await back.isVisible()) await back.click();
  const item = roomItem(page, room);
  await item.waitFor({ state: 'visible', timeout: 15000 });
  const button = item.locator('button').first();
  await ((await button.count()) ? button : item).click();
  await byTestId(page, 'message-list').waitFor({ state: 'visible' });
}

/** Back to the room list. */
export async function backToRooms(page) {
  await byTestId(page, 'back-button').click();
  await byTestId(page, 'room-list').waitFor({ state: 'visible' });
}

/** Types text into the composer and presses Enter. */
export async function sendText(page, text) {
  const input = byTestId(page, 'composer-input');
  await input.fill(text);
  await input.press('Enter');
}

/**
 * Types into typer's composer, a key at a time, until watcher's typing indicator matches pattern
 * (the SDK tells the room at most once per 2 s, so one key may not be enough). Leaves the
 * composer empty.
 */
export async function typeUntilIndicated(typer, watcher, pattern, what = 'typing indicator') {
  const input = byTestId(typer, 'composer-input');
  await eventually(async () => {
    await input.press('.');
    assert.match(await byTestId(watcher, 'typing-indicator').textContent(), pattern);
  }, { interval: 250, timeout: 8000, what });
  await input.fill('');
}

/** Sends several texts at once through the composer (value + Enter in one go, no waiting). */
export async function sendTexts(page, list) {
  await byTestId(page, 'composer-input').evaluate((input, texts) => {
    for (const text of texts) {
      input.value = text;
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', code: 'Enter', bubbles: true, cancelable: true }));
    }
  }, list);
}

/** The messages of the open conversation as the DOM shows them, in DOM order. */
export async function messages(page) {
  return page.locator(tid('message')).evaluateAll((els) =>
    els.map((el) => {
      const q = (id) => el.querySelector(`[data-testid="${id}"]`);
      const reactions = {};
      for (const r of el.querySelectorAll('[data-testid="reaction"]'))
        reactions[r.getAttribute('data-emoji')] = {
          text: r.textContent.trim(),
          pressed: r.getAttribute('aria-pressed'),
        };
      return {
        seq: el.getAttribute('data-seq') === null || el.getAttribute('data-seq') === '' ? null : Number(el.getAttribute('data-seq')),
        id: el.getAttribute('data-id'),
        from: el.getAttribute('data-from'),
        cid: el.getAttribute('data-cid'),
        state: el.getAttribute('data-state'),
        text: q('message-text')?.textContent ?? null,
        author: q('message-author')?.textContent ?? null,
        edited: q('message-edited') !== null,
        deleted: q('message-deleted') !== null,
        removed: q('message-removed') !== null,
        seen: q('seen-mark') !== null,
        reactions,
      };
    }));
}

/** Texts of the open conversation's messages (null for a deleted one). */
export async function texts(page) {
  return (await messages(page)).map((m) => m.text);
}

/**
 * Waits until the open conversation shows exactly these texts, in this order, each acknowledged
 * (data-state "sent", a seq), with seqs strictly increasing.
 */
export async function expectTexts(page, expected, { timeout = 15000, what = 'messages' } = {}) {
  await eventually(async () => {
    const ms = await messages(page);
    assert.deepEqual(ms.map((m) => m.text), expected);
    for (const m of ms) assert.equal(m.state, 'sent', `message ${JSON.stringify(m.text)} is ${m.state}`);
    for (let i = 1; i < ms.length; i++)
      assert.ok(ms[i].seq > ms[i - 1].seq, `seqs not increasing: ${ms.map((m) => m.seq)}`);
  }, { timeout, what });
  return messages(page);
}

/** The messages of the open conversation whose text (or former text) is text. */
export async function messageByText(page, text) {
  const ms = (await messages(page)).filter((m) => m.text === text);
  assert.equal(ms.length, 1, `one message with text ${JSON.stringify(text)}`);
  return ms[0];
}

export const messageById = (page, id) => page.locator(`${tid('message')}[data-id=${cssString(id)}]`);

/** Edits one of the user's own messages through the UI. */
export async function editMessage(page, id, text) {
  const msg = messageById(page, id);
  await msg.hover();
  await msg.locator(tid('edit-button')).click();
  // The editor (inline or the composer) takes the focus with the old text in it.
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText(text);
  await page.keyboard.press('Enter');
}

/** Deletes one of the user's own messages through the UI (accepting a confirmation). */
export async function deleteMessage(page, id) {
  const msg = messageById(page, id);
  page.once('dialog', (d) => d.accept());
  await msg.hover();
  await msg.locator(tid('delete-button')).click();
}

/** Adds a reaction through the UI: react-button, then the emoji offered by its picker. */
export async function reactTo(page, id, emoji) {
  const msg = messageById(page, id);
  await msg.hover();
  await msg.locator(tid('react-button')).click();
  await page.locator(`${tid('react-emoji')}[data-emoji=${cssString(emoji)}]`).click();
}

/** Relative luminance of a computed rgb() color. */
export function luminance(rgb) {
  const [r, g, b] = rgb.match(/[\d.]+/g).slice(0, 3).map((x) => {
    const c = Number(x) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** The panel's effective background (the first non-transparent one from the panel down). */
export function panelBackground(page) {
  return byTestId(page, 'panel').evaluate((p) => {
    for (const e of [p, ...p.querySelectorAll('*')]) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && c !== 'transparent' && !/rgba\(.*, 0\)$/.test(c)) return c;
    }
    return 'rgb(255, 255, 255)';
  });
}

// ---- the SDK outside the browser (a second opinion on what the server stored) ----

/** A connected SDK client (chat-sdk.mjs of CHAT_WIDGET_DIR, in node with the ws package). */
export async function sdkClient(user, { name, gateways = stack.gateways } = {}) {
  const { createChatClient } = await import(join(stack.widgetDir, 'chat-sdk.mjs'));
  const { default: WebSocket } = await import('ws');
  const client = createChatClient({
    gateways,
    requestTimeoutMs: 10000,
    tokenProvider: async () => signToken({ sub: user, name }),
    storage: 'memory',
    WebSocket,
  });
  await client.connect();
  return client;
}

/** Every message of a room as stored (the SDK's history, all pages), ascending seq. */
export async function storedMessages(client, room) {
  await client.join(room);
  const all = [];
  let before;
  for (;;) {
    const { msgs, more } = await client.history(room, { before, limit: 100 });
    all.unshift(...msgs);
    if (!more || msgs.length === 0) break;
    before = msgs[0].seq;
  }
  return all;
}

// ---- killing and restoring a gateway (as tests/support/chat.c does) ----

function pidOf(part) {
  const f = join(stack.pidsDir, `${part}.pid`);
  if (!existsSync(f)) return -1;
  const pid = Number.parseInt(readFileSync(f, 'utf8'), 10);
  return pid > 0 ? pid : -1;
}

/** Alive and not a zombie (a killed service stays one until PID 1 reaps it). */
function alive(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

function exists(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Gateways this process killed and has not restored yet. */
export const killedGateways = new Set();

/** kill -9 of gateway i; resolves once it is dead. restoreStack() must follow (try/finally, and
 *  an after() hook for a test that timed out). */
export async function killGateway(i) {
  const pid = pidOf(`gateway-${i}`);
  assert.ok(pid > 0 && alive(pid), `gateway-${i} does not run`);
  killedGateways.add(i);
  process.kill(pid, 'SIGKILL');
  await eventually(() => assert.ok(!alive(pid), `gateway-${i} (pid ${pid}) survived kill -9`),
    { timeout: 10000, interval: 20 });
  return pid;
}

async function readyz(opsUrl) {
  try {
    const r = await fetch(`${opsUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
    return r.status === 200;
  } catch {
    return false;
  }
}

/** Starts what is missing of the stack (scripts/up --no-build) and waits for every gateway's /readyz. */
export async function restoreStack() {
  // scripts/up tells a running service by kill -0: wait until killed ones are reaped.
  const deadline = Date.now() + 10000;
  for (const f of readdirSync(stack.pidsDir).filter((n) => n.endsWith('.pid'))) {
    const pid = pidOf(f.slice(0, -4));
    while (pid > 0 && exists(pid) && !alive(pid) && Date.now() < deadline) await sleep(50);
  }
  const up = join(stack.sourceDir, 'scripts', 'up');
  const args = ['--state-dir', stack.stackDir, '--build-dir', stack.buildDir, '--no-build'];
  const { code, output } = await new Promise((resolve) => {
    const p = spawn(up, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d) => (output += d));
    p.stderr.on('data', (d) => (output += d));
    p.on('close', (code) => resolve({ code, output }));
  });
  assert.equal(code, 0, `scripts/up failed (exit ${code}):\n${output}`);
  for (const ops of stack.opsGateways)
    await eventually(async () => assert.ok(await readyz(ops), `${ops}/readyz is not 200`), { timeout: 30000, interval: 100 });
  killedGateways.clear();
}

/** Gateway index of a ws URL of the stack (-1 if none). */
export function gatewayIndex(wsUrl) {
  const u = new URL(wsUrl);
  return stack.gateways.findIndex((g) => new URL(g).host === u.host);
}
