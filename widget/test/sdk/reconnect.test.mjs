// Losing the connection against the real stack's gateways: the SDK reconnects (rotating
// over the gateways), resumes its rooms with since/usince and delivers what it missed once,
// in order; the token is renewed before it expires.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import {
  client, closing, env, gateways, messages, noStack, sendAll, token, trackingWebSocket, unique,
  until,
} from './helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const withTenant = (url) => `${url}?tenant=${env?.CHAT_DEMO_TENANT}`;

test('cut twice while another user keeps sending: every message once, in order, over both gateways',
     { skip: noStack }, async (t) => {
  const ws = trackingWebSocket();
  const [a, b] = closing(t, await client('alice', { WebSocket: ws.WebSocket }), await client('bob'));
  const room = unique('cut');
  const states = [];
  a.on('state', (s) => states.push(s));
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const got = messages(a, room);
  const texts = Array.from({ length: 40 }, (_, i) => `n${i + 1}`);
  const sending = sendAll(b, room, texts, 40);
  await until(() => got.length >= 8, 'the first messages');
  ws.cut();
  await until(() => ws.sockets.length === 2 && a.state === 'open' && got.length >= 20, 'the second connection');
  ws.cut();
  await sending;
  await until(() => got.length >= 40, 'all 40 messages');
  await sleep(300); // a late duplicate would show here
  assert.deepEqual(got.map((m) => m.text), texts);
  assert.deepEqual(got.map((m) => m.seq), texts.map((_, i) => i + 1));
  assert.equal(ws.sockets.length, 3);
  assert.equal(a.room(room).unread, 40); // the resumed joins' counts, not doubled by the replay
  // the SDK names its tenant (the token's tid) for the gateway's origin check at the upgrade
  assert.deepEqual(new Set(ws.sockets.map((s) => s.target)), new Set(gateways.map(withTenant)));
  assert.deepEqual(states, ['connecting', 'open', 'reconnecting', 'connecting', 'open',
                            'reconnecting', 'connecting', 'open']);
  // each reconnect resumed the room from the last seq delivered
  const joins = ws.sent.filter((f) => f.type === 'join');
  assert.equal(joins.length, 3);
  assert.equal(joins[0].since, undefined);
  for (const j of joins.slice(1)) assert.ok(j.since >= 8 && j.usince === 0, JSON.stringify(j));
});

test('edits, reactions and deletes made while disconnected arrive after the resume',
     { skip: noStack }, async (t) => {
  const ws = trackingWebSocket();
  const [a, b] = closing(t, await client('alice', { WebSocket: ws.WebSocket }), await client('bob'));
  const room = unique('resume');
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const got = messages(a, room);
  const updates = [];
  a.on('update', (u) => updates.push(u));
  const [m1, m2, m3] = await sendAll(b, room, ['m1', 'm2', 'm3'], 0);
  await b.edit(room, m1.id, 'm1 edited');
  await until(() => updates.length === 1 && got.length === 3, 'the live edit');
  assert.deepEqual([updates[0].op, updates[0].useq, updates[0].text], ['edit', 1, 'm1 edited']);

  ws.offline = true;
  ws.cut();
  await until(() => a.state === 'reconnecting', 'the cut');
  await b.edit(room, m2.id, 'm2 edited');
  await b.react(room, m1.id, '🎉', true);
  await b.delete(room, m3.id);
  await b.send(room, 'm4');
  await sleep(200);
  assert.equal(updates.length, 1); // nothing while disconnected
  ws.offline = false;
  await until(() => updates.length === 4 && got.length === 4, 'the resumed updates');
  const byId = new Map(updates.slice(1).map((u) => [u.id, u]));
  assert.equal(byId.size, 3); // one per message changed, in its current state
  assert.equal(byId.get(m1.id).text, 'm1 edited');
  assert.deepEqual(byId.get(m1.id).reactions, { '🎉': ['bob'] });
  assert.equal(byId.get(m2.id).text, 'm2 edited');
  assert.equal(byId.get(m3.id).deleted, true);
  assert.equal(byId.get(m3.id).text, undefined);
  assert.deepEqual(got.map((m) => m.text), ['m1', 'm2', 'm3', 'm4']);
  assert.equal(a.room(room).useq, 4);
  // live updates continue from there
  await b.edit(room, m2.id, 'm2 again');
  await until(() => updates.length === 5, 'a live update after the resume');
  assert.deepEqual([updates[4].useq, updates[4].text], [5, 'm2 again']);
});

test('a lost update frame is noticed by its useq and recovered by a re-join with usince',
     { skip: noStack }, async (t) => {
  let room;
  let seen = 0; // update frames of useq 2: the first is lost
  const ws = trackingWebSocket({
    drop: (f) => f.type === 'update' && f.room === room && f.useq === 2 && seen++ === 0,
  });
  const [a, b] = closing(t, await client('alice', { WebSocket: ws.WebSocket }), await client('bob'));
  room = unique('ugap');
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const updates = [];
  a.on('update', (u) => updates.push(u));
  const [m1, m2] = await sendAll(b, room, ['m1', 'm2'], 0);
  await b.edit(room, m1.id, 'm1 v2'); // useq 1
  await b.edit(room, m2.id, 'm2 v2'); // useq 2: lost in transit
  await b.edit(room, m1.id, 'm1 v3'); // useq 3: shows the gap
  await until(() => updates.some((u) => u.id === m2.id), 'the lost change, recovered');
  await sleep(300);
  assert.equal(seen, 2); // lost live, then resent by the re-join
  const joins = ws.sent.filter((f) => f.type === 'join');
  assert.equal(joins.length, 2);
  assert.deepEqual([joins[1].since, joins[1].usince], [2, 1]);
  // useq 3 was not applied on its own (it came after a gap): the re-join resent both
  // messages changed since useq 1 in their current state
  assert.deepEqual(updates[0].useq, 1);
  assert.equal(updates.length, 3);
  const last = new Map(updates.map((u) => [u.id, u.text]));
  assert.deepEqual([last.get(m1.id), last.get(m2.id)], ['m1 v3', 'm2 v2']);
  assert.equal(a.room(room).useq, 3);
  await b.edit(room, m2.id, 'm2 v3'); // and live updates go on from there
  await until(() => updates.at(-1).text === 'm2 v3', 'the next live update');
  assert.equal(updates.at(-1).useq, 4);
});

test('the token is renewed before it expires without losing anything', { skip: noStack }, async (t) => {
  const ws = trackingWebSocket();
  let tokens = 0;
  const [a, b] = closing(t, await client('alice', {
    WebSocket: ws.WebSocket,
    // a 70 s token renewed 68 s before expiry: renewed 2 s after welcome, by a 1 h one
    tokenProvider: async () => token('alice', { ttlSec: tokens++ === 0 ? 70 : 3600 }),
    refreshBeforeExpirySec: 68,
  }), await client('bob'));
  const room = unique('refresh');
  const welcomes = [], frames = [];
  a.on('welcome', (w) => welcomes.push(w));
  a.on('frame', (f) => frames.push(f));
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const got = messages(a, room);
  await b.send(room, 'before');
  await until(() => ws.sent.some((f) => f.type === 'refresh'), 'the refresh frame', 6000);
  const refresh = ws.sent.find((f) => f.type === 'refresh');
  assert.deepEqual(Object.keys(refresh).sort(), ['rid', 'token', 'type']);
  assert.equal(tokens, 2);
  await until(() => frames.some((f) => f.rid === refresh.rid), 'the answer to refresh');
  const answer = frames.find((f) => f.rid === refresh.rid);
  if (answer.type === 'ok') {
    assert.equal(welcomes.length, 1); // a gateway with refresh: the same connection goes on
  } else {
    // A gateway without refresh (error): reconnected at once with the new token.
    assert.equal(answer.type, 'error');
    await until(() => welcomes.length === 2 && a.state === 'open', 'the reconnect with the new token');
    await sleep(2500); // and no further renewal: the new token lasts an hour
    assert.equal(welcomes.length, 2);
    assert.equal(ws.sockets.length, 2);
    const auths = ws.sent.filter((f) => f.type === 'auth');
    assert.equal(auths[1].token, refresh.token);
  }
  await b.send(room, 'after');
  await until(() => got.length === 2, 'the message after the refresh');
  await sleep(200);
  assert.deepEqual(got.map((m) => m.text), ['before', 'after']);
});

test('a gateway that accepts but never answers is given up after the connect deadline',
     { skip: noStack }, async (t) => {
  // A TCP server that takes connections and says nothing (no WebSocket handshake).
  const held = [];
  const silent = createServer((sock) => held.push(sock));
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  t.after(() => { for (const s of held) s.destroy(); silent.close(); });
  const dead = `ws://127.0.0.1:${silent.address().port}/v1/ws`;
  const ws = trackingWebSocket();
  const [a] = closing(t, await client('alice', {
    WebSocket: ws.WebSocket, gateways: [dead, gateways[0]], connectTimeoutMs: 700,
  }));
  const started = Date.now();
  await a.connect();
  const targets = ws.sockets.map((s) => s.target.replace(/\?tenant=[^&]*$/, ''));
  // whichever came first, the connection is on the live gateway; the silent one, if tried,
  // was dropped at the deadline
  assert.equal(targets.at(-1), gateways[0]);
  assert.deepEqual(targets, targets[0] === dead ? [dead, gateways[0]] : [gateways[0]]);
  if (targets[0] === dead) assert.ok(Date.now() - started >= 700);

  const [b] = closing(t, await client('bob', { WebSocket: ws.WebSocket, gateways: [dead], connectTimeoutMs: 300 }));
  const states = [];
  b.on('state', (s) => states.push(s));
  b.connect().catch(() => {});
  await sleep(2000);
  assert.ok(held.length >= 3, `${held.length} attempts in 2 s`);
  assert.deepEqual(states.slice(0, 4), ['connecting', 'reconnecting', 'connecting', 'reconnecting']);
});
