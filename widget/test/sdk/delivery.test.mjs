// Exactly-once, in-order delivery against the real stack's gateways: gaps filled from
// history, repeated frames and resent cids not doubled, and the outbox (sends while
// disconnected, and a second client over the same store after a "reload").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  apiPost, client, closing, loadSdk, messages, noStack, sendAll, trackingWebSocket, unique, until,
} from './helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

test('lost msg frames are fetched from history and delivered in order, once', { skip: noStack }, async (t) => {
  const lost = new Set([3, 4, 7]);
  let room;
  const ws = trackingWebSocket({ drop: (f) => f.type === 'msg' && f.room === room && lost.delete(f.seq) });
  const [a, b] = closing(t, await client('alice', { WebSocket: ws.WebSocket }), await client('bob'));
  room = unique('gap');
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const got = messages(a, room);
  const texts = range(10).map((i) => `g${i}`);
  await sendAll(b, room, texts, 20);
  await until(() => got.length >= 10, 'ten messages');
  await sleep(200);
  assert.equal(lost.size, 0, 'the transport lost the frames');
  assert.deepEqual(got.map((m) => [m.seq, m.text]), texts.map((x, i) => [i + 1, x]));
  // one history read per gap, each just below the first message after it
  assert.deepEqual(ws.sent.filter((f) => f.type === 'history').map((f) => [f.before, f.limit]),
                   [[5, 2], [8, 1]]);
  assert.equal(a.room(room).seq, 10);
});

test('a resume beyond the 500 replayed messages reads the older part from history', { skip: noStack }, async (t) => {
  const ws = trackingWebSocket();
  const [a] = closing(t, await client('alice', { WebSocket: ws.WebSocket }));
  const room = unique('deep');
  await a.connect();
  await a.join(room);
  const got = messages(a, room);
  ws.offline = true;
  ws.cut();
  await until(() => a.state === 'reconnecting', 'the cut');
  // 520 messages while alice is away, 8 posts at a time
  const N = 520, posted = [];
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < N) {
      const i = next++;
      posted.push(await apiPost(room, 'bob', `d${i}`, `${room}-${i}`));
    }
  }));
  ws.offline = false;
  await until(() => got.length >= N, `${N} messages`, 60000);
  await sleep(300);
  assert.deepEqual(got.map((m) => m.seq), range(N));
  const cidOf = new Map(posted.map((p) => [p.seq, p.cid]));
  assert.deepEqual(got.map((m) => m.cid), got.map((m) => cidOf.get(m.seq)));
  const resume = ws.sent.filter((f) => f.type === 'join')[1];
  assert.deepEqual([resume.since, resume.usince], [0, 0]);
  // the replay brought 21..520; 1..20 came from one history read
  assert.deepEqual(ws.sent.filter((f) => f.type === 'history').map((f) => [f.before, f.limit]), [[21, 20]]);
});

test('repeated msg frames and a resent cid give one message', { skip: noStack }, async (t) => {
  let room, cutting = true;
  // alice's first connection loses her acks and her own messages: the send stays pending
  const wa = trackingWebSocket({
    drop: (f) => cutting && (f.type === 'ack' || (f.type === 'msg' && f.from === 'alice')),
  });
  // bob's transport hands every msg frame over twice
  const wb = trackingWebSocket({ twice: (f) => f.type === 'msg' });
  const [a, b] = closing(t, await client('alice', { WebSocket: wa.WebSocket }),
                         await client('bob', { WebSocket: wb.WebSocket }));
  room = unique('dedup');
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const atB = messages(b, room);
  const sending = a.send(room, 'only once');
  await until(() => atB.length === 1, 'the message at bob');
  assert.equal(a.pending().length, 1);
  cutting = false;
  wa.cut(); // the reconnect resends the pending cid
  const ack = await sending;
  const sends = wa.sent.filter((f) => f.type === 'send');
  assert.equal(sends.length, 2);
  assert.equal(sends[0].cid, sends[1].cid);
  assert.equal(ack.cid, sends[0].cid);
  assert.equal(ack.seq, atB[0].seq); // the original ack
  await b.send(room, 'next');
  await until(() => atB.length === 2, 'the next message');
  await sleep(200);
  assert.deepEqual(atB.map((m) => [m.seq, m.text]), [[1, 'only once'], [2, 'next']]);
  const { msgs } = await b.history(room);
  assert.deepEqual(msgs.map((m) => m.text), ['only once', 'next']);
});

test('sends while disconnected are delivered once, in order, when back', { skip: noStack }, async (t) => {
  const ws = trackingWebSocket();
  const [a, b] = closing(t, await client('alice', { WebSocket: ws.WebSocket }), await client('bob'));
  const room = unique('offline');
  await Promise.all([a.connect(), b.connect()]);
  await a.join(room);
  await b.join(room);
  const atB = messages(b, room);
  const outbox = [];
  a.on('outbox', (o) => outbox.push(o.map((m) => m.text)));
  ws.offline = true;
  ws.cut();
  await until(() => a.state === 'reconnecting', 'the cut');
  const texts = range(5).map((i) => `o${i}`);
  const sending = texts.map((x) => a.send(room, x));
  await until(() => a.pending(room).length === 5, 'the outbox');
  assert.deepEqual(a.pending(room).map((m) => m.text), texts);
  assert.deepEqual(outbox.at(-1), texts);
  assert.equal(ws.sent.filter((f) => f.type === 'send').length, 0);
  ws.offline = false;
  const acks = await Promise.all(sending);
  assert.deepEqual(acks.map((k) => k.seq), range(5));
  await until(() => atB.length === 5, 'five messages at bob');
  await sleep(200);
  assert.deepEqual(atB.map((m) => m.text), texts);
  assert.deepEqual(a.pending(), []);
  assert.deepEqual(outbox.at(-1), []);
  // sent after the resume join, each once
  const frames = ws.sent.filter((f) => f.type === 'send' || f.type === 'join').map((f) => f.type);
  assert.deepEqual(frames, ['join', 'join', 'send', 'send', 'send', 'send', 'send']);
});

test('a reload (new client, same store) resends the stored cids; the server keeps each once',
     { skip: noStack }, async (t) => {
  const { MemoryOutboxStore } = await loadSdk();
  const store = new MemoryOutboxStore();
  let room;
  // the first client's acks and own messages never arrive: its sends stay in the store
  const w1 = trackingWebSocket({ drop: (f) => f.type === 'ack' || (f.type === 'msg' && f.from === 'alice') });
  const a1 = await client('alice', { WebSocket: w1.WebSocket, storage: store });
  const [b] = closing(t, await client('bob'));
  room = unique('reload');
  await Promise.all([a1.connect(), b.connect()]);
  await a1.join(room);
  await b.join(room);
  const atB = messages(b, room);
  const lost = [a1.send(room, 'r1'), a1.send(room, 'r2')].map((p) => p.catch((e) => e));
  await until(() => atB.length === 2, 'the two stored messages at bob');
  w1.offline = true;
  w1.cut();
  await until(() => a1.state === 'reconnecting', 'the cut');
  lost.push(a1.send(room, 'r3').catch((e) => e)); // never sent before the reload
  await until(async () => (await store.load()).length === 3, 'three messages in the store');
  const stored = await store.load();
  assert.deepEqual(stored.map((m) => m.text), ['r1', 'r2', 'r3']);
  a1.close();
  assert.deepEqual((await Promise.all(lost)).map((e) => e.code), ['closed', 'closed', 'closed']);

  const a2 = await client('alice', { storage: store });
  closing(t, a2);
  const acks = [];
  a2.on('ack', (k) => acks.push(k));
  await sleep(50); // the store is read at creation
  assert.deepEqual(a2.pending().map((m) => m.cid), stored.map((m) => m.cid));
  await a2.connect();
  await until(() => acks.length === 3, 'the acks of the stored messages');
  assert.deepEqual(acks.map((k) => k.cid), stored.map((m) => m.cid));
  assert.deepEqual(acks.slice(0, 2).map((k) => k.seq), atB.slice(0, 2).map((m) => m.seq)); // the original acks
  assert.equal(acks[2].seq, 3);
  assert.deepEqual(await store.load(), []);
  await until(() => atB.length === 3, 'the third message at bob');
  await sleep(200);
  const { msgs } = await b.history(room);
  assert.deepEqual(msgs.map((m) => [m.text, m.cid]), stored.map((m) => [m.text, m.cid]));
  assert.deepEqual(atB.map((m) => m.text), ['r1', 'r2', 'r3']);
});
