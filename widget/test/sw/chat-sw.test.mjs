// Unit tests of the notifications service worker (chat-sw.js): its push and
// notificationclick handlers run in a node vm context whose `self` is a fake service
// worker scope recording notifications, windows and messages.
//
// Why a fake: headless Chromium cannot receive a real Web Push (it has no push service to
// subscribe to), so the browser tests cannot deliver a push to this worker; what the
// worker does with one is checked here instead, on the built file the gateway serves.
//
// The worker under test is ${CHAT_WIDGET_DIR}/chat-sw.js when CHAT_WIDGET_DIR is set (the
// build tree), else src/sw/chat-sw.ts built by esbuild into a temporary directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const here = dirname(fileURLToPath(import.meta.url));
let source;
let tempDir;

before(async () => {
  if (process.env.CHAT_WIDGET_DIR) {
    source = readFileSync(join(process.env.CHAT_WIDGET_DIR, 'chat-sw.js'), 'utf8');
    return;
  }
  const { build } = await import('esbuild');
  tempDir = mkdtempSync(join(tmpdir(), 'chat-sw-test-'));
  const outfile = join(tempDir, 'chat-sw.js');
  await build({ entryPoints: [join(here, '../../src/sw/chat-sw.ts')], bundle: true, format: 'iife',
                target: ['es2020'], outfile, logLevel: 'error' });
  source = readFileSync(outfile, 'utf8');
});

after(() => {
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
});

const SCOPE = 'https://shop.example/app/';

/** A fresh worker: the script evaluated against a fake scope; returns the fake's records. */
function loadWorker({ windows = [] } = {}) {
  const listeners = new Map();
  const shown = [];
  const opened = [];
  const scope = {
    registration: {
      scope: SCOPE,
      async showNotification(title, options = {}) {
        const n = { title, ...options, closed: false, close() { this.closed = true; } };
        shown.push(n);
      },
      async getNotifications(filter = {}) {
        return shown.filter((n) => !n.closed && (filter.tag === undefined || n.tag === filter.tag));
      },
    },
    clients: {
      async matchAll(options) {
        assert.equal(options.type, 'window');
        return windows;
      },
      async openWindow(url) {
        opened.push(url);
        return null;
      },
    },
    addEventListener(type, fn) {
      listeners.set(type, fn);
    },
  };
  const context = vm.createContext({ self: scope, console });
  vm.runInContext(source, context, { filename: 'chat-sw.js' });

  /** Fires `type` like the browser would and waits for what the handler gave waitUntil. */
  async function dispatch(type, event) {
    const fn = listeners.get(type);
    assert.ok(fn, `the worker listens for ${type}`);
    const waits = [];
    fn({ ...event, waitUntil: (p) => waits.push(p) });
    assert.equal(waits.length, 1, `${type} extends the event's lifetime with waitUntil`);
    await Promise.all(waits);
  }
  const push = (payload) => dispatch('push', {
    data: { text: () => (typeof payload === 'string' ? payload : JSON.stringify(payload)) },
  });
  return { dispatch, push, shown, opened };
}

function fakeWindow(url, focused = false) {
  const w = { url, focused, focusCalls: 0, messages: [],
              async focus() { w.focusCalls++; return w; },
              postMessage(m) { w.messages.push(JSON.parse(JSON.stringify(m))); } };
  return w;
}

const plain = (v) => JSON.parse(JSON.stringify(v));

const message = (over = {}) => ({
  type: 'message', tenant: 'acme', room: 'lobby', seq: 41, id: 'm41', from: 'bob',
  name: 'Bob', text: 'hello there', count: 3, ts: 1765000000000, ...over,
});

test('a message push shows one notification: sender and room, text and count, tag = room', async () => {
  const w = loadWorker();
  const payload = message();
  await w.push(payload);
  assert.equal(w.shown.length, 1);
  const n = w.shown[0];
  assert.equal(n.title, 'Bob in lobby');
  assert.equal(n.body, 'hello there (3 new)');
  assert.equal(n.tag, 'lobby');
  assert.equal(n.renotify, true);
  assert.deepEqual(plain(n.data), payload);
});

test('a dm is titled by the sender alone; one unread adds no count; no name falls back to the id', async () => {
  const w = loadWorker();
  await w.push(message({ room: 'dm:alice:bob', count: 1, name: undefined, text: 'psst' }));
  assert.equal(w.shown.length, 1);
  assert.equal(w.shown[0].title, 'bob');
  assert.equal(w.shown[0].body, 'psst');
  assert.equal(w.shown[0].tag, 'dm:alice:bob');
});

test('a close push closes exactly that room\'s notifications up to its seq', async () => {
  const w = loadWorker();
  await w.push(message({ room: 'lobby', seq: 10 }));
  await w.push(message({ room: 'dm:alice:bob', seq: 7 }));
  await w.push(message({ room: 'lobby-2', seq: 3 }));
  await w.push({ type: 'close', tenant: 'acme', room: 'lobby', seq: 10 });
  assert.deepEqual(w.shown.map((n) => [n.tag, n.closed]),
                   [['lobby', true], ['dm:alice:bob', false], ['lobby-2', false]]);
  assert.equal(w.shown.length, 3, 'a close push shows nothing itself');

  // Read up to 7 elsewhere while message 9 is what the notification shows: it stays.
  await w.push(message({ room: 'dm:alice:bob', seq: 9 }));
  await w.push({ type: 'close', tenant: 'acme', room: 'dm:alice:bob', seq: 8 });
  assert.equal(w.shown[3].closed, false);
  await w.push({ type: 'close', tenant: 'acme', room: 'dm:alice:bob', seq: 9 });
  assert.equal(w.shown[3].closed, true);
  assert.equal(w.shown[1].closed, true);
});

test('malformed payloads show nothing and do not throw', async () => {
  const w = loadWorker();
  const bad = [
    'not json', '', 'null', '[]', '42', '{}',
    { type: 'message', tenant: 'acme', seq: 1, from: 'bob', text: 'no room' },
    { type: 'message', tenant: 'acme', room: 'lobby', seq: 1, text: 'no sender' },
    { type: 'message', tenant: 'acme', room: 'lobby', seq: 1, from: 'bob' },
    { type: 'message', tenant: 'acme', room: 'lobby', seq: '1', from: 'bob', text: 'seq as text' },
    { type: 'shout', tenant: 'acme', room: 'lobby', seq: 1, from: 'bob', text: 'unknown type' },
    { type: 'close', tenant: 'acme', seq: 1 },
  ];
  for (const p of bad) await w.push(p);
  await w.dispatch('push', { data: null });
  await w.dispatch('push', {});
  await w.dispatch('push', { data: { text() { throw new Error('undecryptable'); } } });
  assert.equal(w.shown.length, 0);
  // The worker still works after all that.
  await w.push(message());
  assert.equal(w.shown.length, 1);
});

test('a click focuses an open window of the scope and posts the room to it', async () => {
  const other = fakeWindow('https://elsewhere.example/app/');
  const page = fakeWindow(SCOPE + 'orders?id=3');
  const w = loadWorker({ windows: [other, page] });
  await w.push(message({ room: 'dm:alice:bob' }));
  const n = w.shown[0];
  await w.dispatch('notificationclick', { notification: n });
  assert.equal(n.closed, true);
  assert.equal(page.focusCalls, 1);
  assert.deepEqual(page.messages, [{ type: 'chat-open', room: 'dm:alice:bob' }]);
  assert.equal(other.focusCalls, 0);
  assert.deepEqual(w.opened, []);
});

test('a click prefers the focused window when several are open', async () => {
  const a = fakeWindow(SCOPE + 'a');
  const b = fakeWindow(SCOPE + 'b', true);
  const w = loadWorker({ windows: [a, b] });
  await w.push(message());
  await w.dispatch('notificationclick', { notification: w.shown[0] });
  assert.equal(b.focusCalls, 1);
  assert.deepEqual(b.messages, [{ type: 'chat-open', room: 'lobby' }]);
  assert.equal(a.focusCalls, 0);
});

test('a click with no window of the scope opens the scope', async () => {
  const w = loadWorker({ windows: [fakeWindow('https://elsewhere.example/')] });
  await w.push(message());
  await w.dispatch('notificationclick', { notification: w.shown[0] });
  assert.deepEqual(w.opened, [SCOPE]);
  assert.equal(w.shown[0].closed, true);
});
