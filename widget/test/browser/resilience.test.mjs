// What a page survives: its gateway killed with -9 mid-conversation, the browser going offline,
// and a reload with messages still queued (the outbox in IndexedDB). Each message must reach
// the other user's page, and the store, exactly once and in order.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  byTestId, eventually, expectTexts, killedGateways, killGateway, messages, openRoom, restoreStack,
  run, sdkClient, sendText, sendTexts, storedMessages, tid, unique, useBrowserAndSite,
  waitConnected,
} from './support.mjs';

const fx = useBrowserAndSite();
let sdk; // an SDK client in node: what the server stored, through history
before(async () => {
  sdk = await sdkClient(`checker-${unique()}`);
});
after(async () => {
  // A test that timed out never reached its finally: the stack is restored here.
  if (killedGateways.size) await restoreStack();
  sdk?.close();
});

/** The stored texts of room (every page of history), ascending seq; seqs must be 1..n. */
async function storedTexts(room) {
  const msgs = await storedMessages(sdk, room);
  assert.deepEqual(msgs.map((m) => m.seq), msgs.map((_, i) => i + 1), 'stored seqs are 1..n');
  return msgs.map((m) => m.text);
}

/** a is a subsequence of b's order: the elements of a appear in b in a's order. */
function assertInOrder(all, part, what) {
  const idx = part.map((x) => all.indexOf(x));
  assert.ok(idx.every((i) => i >= 0), `${what}: all present in ${JSON.stringify(all)}`);
  assert.deepEqual([...idx].sort((x, y) => x - y), idx, `${what}: in order in ${JSON.stringify(all)}`);
}

test('a gateway killed with -9 mid-conversation: the page moves to the other one, misses nothing, sends once', { timeout: 120000 }, async (t) => {
  try {
    await run(fx.browser, t, async (s) => {
      const u = unique();
      const alice = `alice-${u}`;
      const bob = `bob-${u}`;
      const room = `kill-${u}`;
      // Alice's page knows both gateways (it picks one at random); bob's only the other one.
      const aCtx = await s.context();
      const a = await s.openWidget(aCtx, 'alice', fx.site.url(alice, { name: 'Alice', gw: [0, 1], rooms: [room], open: true, css: 'plain' }));
      const g = s.currentGateway(a);
      assert.ok(g === 0 || g === 1, `alice is on gateway 0 or 1 (${g})`);
      const other = 1 - g;
      const bCtx = await s.context();
      const b = await s.openWidget(bCtx, 'bob', fx.site.url(bob, { name: 'Bob', gw: [other], rooms: [room], open: true, css: 'plain' }));
      await openRoom(a, room);
      await openRoom(b, room);
      await sendText(a, `a1 ${u}`);
      await expectTexts(b, [`a1 ${u}`]);
      await sendText(b, `b1 ${u}`);
      const before = [`a1 ${u}`, `b1 ${u}`];
      await expectTexts(a, before);

      // kill -9 of alice's gateway. Her page's scripts are held (DevTools debugger pause) from
      // just before the kill until bob's three messages are stored, so that she surely misses
      // them; then she learns of the lost connection and types two at once.
      const aSockets = s.sockets(a).length;
      const mine = [`a2 ${u}`, `a3 ${u}`];
      const his = [`b2 ${u}`, `b3 ${u}`, `b4 ${u}`];
      const debug = await aCtx.newCDPSession(a);
      await debug.send('Debugger.enable');
      await debug.send('Debugger.pause');
      try {
        await killGateway(g);
        await sendTexts(b, his);
        await expectTexts(b, [...before, ...his], { what: 'bob: his messages stored while alice is away' });
      } finally {
        await debug.send('Debugger.resume').catch(() => {});
        await debug.detach().catch(() => {});
      }
      await sendTexts(a, mine);
      const stateDuringOutage = await byTestId(a, 'connection-status').getAttribute('data-state');

      // Alice is back, through the other gateway; both pages hold the same 7 messages once.
      await waitConnected(a, 30000);
      await eventually(() => assert.equal(s.currentGateway(a), other), { what: 'alice on the other gateway' });
      assert.equal(s.sockets(a).length, aSockets + 1, 'one new connection');
      const n = before.length + mine.length + his.length;
      let aMsgs;
      await eventually(async () => {
        aMsgs = await messages(a);
        assert.equal(aMsgs.length, n, `alice: ${JSON.stringify(aMsgs.map((m) => m.text))}`);
        assert.ok(aMsgs.every((m) => m.state === 'sent'), 'all acknowledged');
      }, { timeout: 30000, what: 'alice: every message once, acknowledged' });
      const order = aMsgs.map((m) => m.text);
      assert.equal(new Set(order).size, n, `no duplicates: ${JSON.stringify(order)}`);
      assert.deepEqual(order.slice(0, 2), before);
      assertInOrder(order, mine, 'alice\'s messages');
      assertInOrder(order, his, 'bob\'s messages');
      assert.deepEqual(aMsgs.map((m) => m.seq), aMsgs.map((_, i) => i + 1), 'alice: seqs 1..n, no gap');
      const bMsgs = await expectTexts(b, order, { what: 'bob: the same sequence' });
      assert.deepEqual(bMsgs.map((m) => m.id), aMsgs.map((m) => m.id));
      assert.deepEqual(await storedTexts(room), order, 'stored once each, in this order');
      // She missed bob's three while away: the join on the new connection replayed them.
      const replayed = s.frames(a).filter((f) => f.socket === aSockets && f.dir === 'in' && f.type === 'msg' &&
        his.includes(f.text) && f.replay).map((f) => f.text);
      assert.deepEqual(replayed, his, 'bob\'s outage messages came with the re-join (since)');
      console.log(`# alice's connection when she typed after the kill: ${stateDuringOutage}`);
    });
  } finally {
    if (killedGateways.size) await restoreStack();
  }
});

test('offline: three messages typed are shown pending, then delivered once each, in order', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const u = unique();
    const alice = `alice-${u}`;
    const bob = `bob-${u}`;
    const room = `offline-${u}`;
    const aCtx = await s.context();
    const a = await s.openWidget(aCtx, 'alice', fx.site.url(alice, { name: 'Alice', gw: [0], rooms: [room], open: true, css: 'plain' }));
    const bCtx = await s.context();
    const b = await s.openWidget(bCtx, 'bob', fx.site.url(bob, { name: 'Bob', gw: [1], rooms: [room], open: true, css: 'plain' }));
    await openRoom(a, room);
    await openRoom(b, room);
    await sendText(a, `first ${u}`);
    await expectTexts(b, [`first ${u}`]);

    // Chromium's offline emulation fails new connections and fires `offline`; an open
    // WebSocket is not cut by it, so the page must act on the event.
    await aCtx.setOffline(true);
    await eventually(async () =>
      assert.notEqual(await byTestId(a, 'connection-status').getAttribute('data-state'), 'open'),
    { what: 'alice\'s widget notices it is offline' });
    const typed = [`o1 ${u}`, `o2 ${u}`, `o3 ${u}`];
    for (const text of typed) await sendText(a, text);
    await eventually(async () => {
      const ms = await messages(a);
      assert.deepEqual(ms.map((m) => m.text), [`first ${u}`, ...typed]);
      assert.deepEqual(ms.map((m) => m.state), ['sent', 'pending', 'pending', 'pending']);
    }, { what: 'alice: the three shown pending' });
    assert.ok(await byTestId(a, 'connection-status').isVisible(), 'the connection status is shown while offline');
    // Nothing left the browser.
    assert.deepEqual((await messages(b)).map((m) => m.text), [`first ${u}`]);

    await aCtx.setOffline(false);
    const all = [`first ${u}`, ...typed];
    await expectTexts(a, all, { timeout: 30000, what: 'alice: delivered after going online' });
    await expectTexts(b, all, { what: 'bob: each once, in order' });
    assert.deepEqual(await storedTexts(room), all, 'stored once each');
  });
});

test('a reload with queued messages: the outbox in IndexedDB sends them once the page is back', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const u = unique();
    const alice = `alice-${u}`;
    const bob = `bob-${u}`;
    const room = `reload-${u}`;
    const url = fx.site.url(alice, { name: 'Alice', gw: [0], rooms: [room], open: true, css: 'plain' });
    const aCtx = await s.context();
    const a = await s.openWidget(aCtx, 'alice', url);
    const bCtx = await s.context();
    const b = await s.openWidget(bCtx, 'bob', fx.site.url(bob, { name: 'Bob', gw: [1], rooms: [room], open: true, css: 'plain' }));
    await openRoom(a, room);
    await openRoom(b, room);
    await sendText(b, `hello ${u}`);
    await expectTexts(a, [`hello ${u}`]);

    await aCtx.setOffline(true);
    await eventually(async () =>
      assert.notEqual(await byTestId(a, 'connection-status').getAttribute('data-state'), 'open'));
    const queued = [`q1 ${u}`, `q2 ${u}`];
    for (const text of queued) await sendText(a, text);
    await eventually(async () =>
      assert.deepEqual((await messages(a)).map((m) => [m.text, m.state]),
        [[`hello ${u}`, 'sent'], [queued[0], 'pending'], [queued[1], 'pending']]),
    { what: 'alice: two queued' });
    await a.close();
    await aCtx.setOffline(false);

    // The same browser (same IndexedDB), a new page: the queued messages go out.
    const a2 = await s.openWidget(aCtx, 'alice-reloaded', url);
    const all = [`hello ${u}`, ...queued];
    await expectTexts(b, all, { timeout: 30000, what: 'bob: the queued messages, once each' });
    await openRoom(a2, room);
    await expectTexts(a2, all, { what: 'alice after the reload' });
    assert.equal(await a2.locator(`${tid('message')}[data-state="pending"]`).count(), 0);
    assert.deepEqual(await storedTexts(room), all, 'stored once each');
  });
});
