// The browser's offline/online events (window), here from an EventTarget standing in for
// window in node: offline drops the connection at once; online reconnects at once instead
// of when the backoff says. The browser tests fire the real ones (context.setOffline).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, closing, messages, noStack, trackingWebSocket, unique, until } from './helpers.mjs';

globalThis.window = new EventTarget();

test('offline drops the socket at once; online reconnects without waiting for the backoff',
     { skip: noStack }, async (t) => {
  const ws = trackingWebSocket();
  // a backoff of 20 s or more: only the online event can bring the client back in time
  const [a, b] = closing(t, await client('alice', { WebSocket: ws.WebSocket, backoff: { initialMs: 40000, maxMs: 40000 } }),
                         await client('bob'));
  const room = unique('online');
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const got = messages(a, room);
  const states = [];
  a.on('state', (s) => states.push(s));
  ws.offline = true; // the network is gone; the socket itself has not noticed
  window.dispatchEvent(new Event('offline'));
  assert.equal(a.state, 'reconnecting');
  assert.equal(ws.sockets[0].readyState >= 2, true, 'the socket is closing or closed');
  await b.send(room, 'while offline');
  const waiting = a.send(room, 'queued offline');
  await until(() => a.pending(room).length === 1, 'the queued message');
  ws.offline = false;
  const t0 = Date.now();
  window.dispatchEvent(new Event('online'));
  await waiting;
  await until(() => got.length === 2, 'both messages');
  assert.ok(Date.now() - t0 < 5000, 'reconnected at once');
  assert.deepEqual(got.map((m) => m.text), ['while offline', 'queued offline']);
  assert.deepEqual(states, ['reconnecting', 'connecting', 'open']);
  assert.equal(ws.sockets.length, 2);
});

test('online while connected changes nothing', { skip: noStack }, async (t) => {
  const ws = trackingWebSocket();
  const [a] = closing(t, await client('alice', { WebSocket: ws.WebSocket }));
  await a.connect();
  window.dispatchEvent(new Event('online'));
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(a.state, 'open');
  assert.equal(ws.sockets.length, 1);
});
