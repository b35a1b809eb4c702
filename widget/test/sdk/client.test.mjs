// The SDK against the real stack's gateways: connecting, sending, history and rooms, the
// room actions (edit, delete, react, typing, read) and the errors that answer requests.
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { client, closing, gateways, loadSdk, messages, noStack, token, trackingWebSocket, unique, until } from './helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('send: ack and message event, in order, to the other user and back to the sender',
     { skip: noStack }, async (t) => {
  const [a, b] = closing(t, await client('alice'), await client('bob'));
  const states = [];
  a.on('state', (s) => states.push(s));
  const room = unique('send');
  await a.connect();
  assert.deepEqual(states, ['connecting', 'open']);
  assert.equal(a.user, 'alice');
  assert.equal(a.tenant, 'demo');
  await b.connect();
  const joined = await a.join(room);
  assert.equal(joined.room, room);
  assert.equal(joined.seq, 0);
  await b.join(room);
  const atA = messages(a, room), atB = messages(b, room);
  const outboxSizes = [];
  a.on('outbox', (o) => outboxSizes.push(o.length));
  const acks = await Promise.all(['one', 'two', 'three'].map((x) => a.send(room, x)));
  assert.deepEqual(acks.map((k) => k.seq), [1, 2, 3]);
  assert.equal(a.pending().length, 0);
  assert.equal(outboxSizes.at(-1), 0);
  await until(() => atB.length === 3 && atA.length === 3, 'three messages at both');
  assert.deepEqual(atB.map((m) => [m.seq, m.text, m.from, m.cid]),
                   acks.map((k, i) => [k.seq, ['one', 'two', 'three'][i], 'alice', k.cid]));
  assert.deepEqual(atA.map((m) => m.id), acks.map((k) => k.id));
  assert.equal(b.room(room).seq, 3);
  assert.equal(b.room(room).unread, 3);
  assert.deepEqual([...b.room(room).online].sort(), ['alice', 'bob']);
});

test('history pages back with before; rooms lists the room', { skip: noStack }, async (t) => {
  const [a] = closing(t, await client('alice'));
  const room = unique('hist');
  await a.connect();
  await a.join(room);
  for (let i = 1; i <= 7; i++) await a.send(room, `m${i}`);
  const last = await a.history(room, { limit: 3 });
  assert.deepEqual(last.msgs.map((m) => m.text), ['m5', 'm6', 'm7']);
  assert.equal(last.more, true);
  assert.equal(last.msgs[0].type, undefined);
  const older = await a.history(room, { before: last.msgs[0].seq, limit: 10 });
  assert.deepEqual(older.msgs.map((m) => m.seq), [1, 2, 3, 4]);
  assert.equal(older.more, false);
  const { rooms } = await a.rooms({ limit: 100 });
  const mine = rooms.find((r) => r.room === room);
  assert.ok(mine, 'the room is in the list');
  assert.equal(mine.kind, 'public');
  assert.equal(mine.seq, 7);
  assert.equal(mine.last.text, 'm7');
});

test('edit, react and delete resolve on their ack and reach the room as ordered updates',
     { skip: noStack }, async (t) => {
  const [a, b] = closing(t, await client('alice'), await client('bob'));
  const room = unique('upd');
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const updates = [];
  b.on('update', (u) => { if (u.room === room) updates.push(u); });
  const m1 = await a.send(room, 'first');
  const m2 = await a.send(room, 'second');
  await a.edit(room, m1.id, 'first, edited');
  await b.react(room, m1.id, '👍', true);
  await a.delete(room, m2.id);
  await until(() => updates.length === 3, 'three updates');
  assert.deepEqual(updates.map((u) => [u.op, u.id, u.useq]),
                   [['edit', m1.id, 1], ['react', m1.id, 2], ['delete', m2.id, 3]]);
  assert.equal(updates[0].text, 'first, edited');
  assert.deepEqual(updates[1].reactions, { '👍': ['bob'] });
  assert.equal(updates[2].deleted, true);
  assert.equal(b.room(room).useq, 3);
  // Only the author may edit: the request is rejected with the server's error.
  await assert.rejects(b.edit(room, m1.id, 'not mine'), (e) => e.code === 'forbidden' && !!e.message);
  await assert.rejects(a.edit(room, 'f'.repeat(24), 'x'), { code: 'not_found' });
});

test('typing is sent at most once per 2 s; read marks move forward only', { skip: noStack }, async (t) => {
  const ws = trackingWebSocket();
  const [a, b] = closing(t, await client('alice', { WebSocket: ws.WebSocket }), await client('bob'));
  const room = unique('typ');
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const typing = [], reads = [];
  b.on('typing', (e) => typing.push(e));
  b.on('read', (e) => reads.push(e));
  for (let i = 1; i <= 3; i++) await a.send(room, `m${i}`);
  a.typing(room);
  a.typing(room);
  a.typing(room);
  a.read(room, 2);
  await until(() => reads.length === 1, 'the first read event');
  a.read(room, 1); // backwards: not sent
  a.read(room, 2); // no move: not sent
  a.read(room, 3);
  await until(() => reads.length === 2, 'the second read event');
  assert.deepEqual(ws.sent.filter((f) => f.type === 'typing' || f.type === 'read')
    .map((f) => [f.type, f.seq]), [['typing', undefined], ['read', 2], ['read', 3]]);
  assert.deepEqual(typing.map((e) => [e.room, e.user, e.name]), [[room, 'alice', 'alice']]);
  assert.deepEqual(reads.map((e) => [e.user, e.seq]), [['alice', 2], ['alice', 3]]);
  assert.equal(a.room(room).read, 3);
  assert.equal(a.room(room).unread, 0);
});

test('a burst of sends is paced under the gateway rate limit: no rate_limited answers',
     { skip: noStack }, async (t) => {
  const [a] = closing(t, await client('alice'));
  const room = unique('burst');
  await a.connect();
  await a.join(room);
  const errors = [];
  a.on('frame', (f) => { if (f.type === 'error') errors.push(f); });
  const texts = Array.from({ length: 70 }, (_, i) => `b${i + 1}`);
  const acks = await Promise.all(texts.map((x) => a.send(room, x)));
  assert.deepEqual(errors, []);
  assert.deepEqual(acks.map((k) => k.seq), texts.map((_, i) => i + 1));
  const { msgs } = await a.history(room, { limit: 100 });
  assert.deepEqual(msgs.map((m) => m.text), texts);
});

test('a send the server refuses for good leaves the outbox and rejects', { skip: noStack }, async (t) => {
  const [a] = closing(t, await client('alice'));
  const room = unique('big');
  await a.connect();
  await a.join(room);
  const errors = [];
  a.on('error', (e) => errors.push(e));
  await assert.rejects(a.send(room, 'x'.repeat(4001)), (e) => e.code === 'too_large' && !!e.cid);
  assert.deepEqual(a.pending(), []);
  const ok = await a.send(room, 'fits');
  assert.equal(ok.seq, 1);
  assert.deepEqual(errors, []); // the rejection told the caller; no stray error event
});

test('push subscription: only the frame fields are sent; refusals reject with the reason',
     { skip: noStack }, async (t) => {
  const [a] = closing(t, await client('alice'));
  await a.connect();
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const keys = { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') };
  const endpoint = `https://push.example.com/${unique('sub')}`;
  // PushSubscription.toJSON() also has expirationTime, a field the gateway refuses in a frame.
  await a.pushSubscribe({ endpoint, expirationTime: null, keys });
  await assert.rejects(a.pushSubscribe({ endpoint, keys: { p256dh: '!!', auth: keys.auth } }),
                       (e) => e.code === 'bad_request' && /p256dh/.test(e.message));
  await a.pushUnsubscribe(endpoint);
});

test('a refused token is replaced once; a provider that keeps failing backs off', { skip: noStack }, async (t) => {
  const { createChatClient } = await loadSdk();
  const WebSocket = (await import('ws')).default;
  let calls = 0;
  const a = createChatClient({
    gateways, WebSocket, storage: 'memory', backoff: { initialMs: 100, maxMs: 400 },
    tokenProvider: async () => (++calls === 1 ? token('alice').slice(0, -3) + 'AAA' : token('alice')),
  });
  let failing = 0;
  const b = createChatClient({
    gateways, WebSocket, storage: 'memory', backoff: { initialMs: 100, maxMs: 400 },
    tokenProvider: async () => { failing++; throw new Error('token service down'); },
  });
  closing(t, a, b);
  const errors = [];
  a.on('error', (e) => errors.push(e.code));
  await a.connect();
  assert.equal(calls, 2);
  assert.deepEqual(errors, ['unauthorized']);
  const warn = console.warn;
  console.warn = () => {}; // the expected complaints of b
  try {
    b.connect().catch(() => {});
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(b.state, 'reconnecting');
    // backoff (cap 400 ms, full jitter): a few attempts per second, never a tight loop
    assert.ok(failing >= 3 && failing <= 40, `${failing} attempts in 2 s`);
  } finally {
    console.warn = warn;
  }
});

test('tokenUrl: a JSON answer or the JWT as text; a failing endpoint is retried with backoff',
     { skip: noStack }, async (t) => {
  const { createChatClient } = await loadSdk();
  const WebSocket = (await import('ws')).default;
  const asked = [];
  let failing = false;
  const server = createServer((req, res) => {
    asked.push(req.url);
    if (failing) { res.writeHead(503).end(); return; }
    const user = new URL(req.url, 'http://x').searchParams.get('user');
    if (req.url.startsWith('/json')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: token(user) }));
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(token(user) + '\n');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.address().port}`;
  const make = (path) => createChatClient({ gateways, WebSocket, storage: 'memory', tokenUrl: base + path,
                                            backoff: { initialMs: 100, maxMs: 300 } });
  const [a, b] = closing(t, make('/json?user=alice'), make('/text?user=bob'));
  await a.connect();
  await b.connect();
  assert.equal(a.user, 'alice');
  assert.equal(b.user, 'bob');
  assert.deepEqual(asked, ['/json?user=alice', '/text?user=bob']);

  failing = true;
  const [c] = closing(t, make('/json?user=carol'));
  const warn = console.warn, warned = [];
  console.warn = (...x) => warned.push(x);
  try {
    c.connect().catch(() => {});
    await sleep(1500);
    assert.equal(c.state, 'reconnecting');
    // backoff of at most 300 ms: several tries, never a tight loop
    const tries = asked.length - 2;
    assert.ok(tries >= 2 && tries <= 40, `${tries} token requests in 1.5 s`);
    assert.equal(warned.length, 1); // once per outage, not per attempt
    failing = false;
    await until(() => c.state === 'open', 'carol connected once the endpoint answers');
    assert.equal(c.user, 'carol');
  } finally {
    console.warn = warn;
  }
});
