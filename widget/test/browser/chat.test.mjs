// The widget embedded by a tenant site on its own origin with the README's script tag, and two
// users chatting through different gateways: dm and group room, order and exactly-once on both
// sides, typing, seen marks, edit, delete, reactions, presence, unread badges.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backToRooms, byTestId, deleteMessage, editMessage, eventually, expectTexts, gatewayHttp,
  messageById, messages, openPanel, openRoom, reactTo, roomItem, run, sendText, tid,
  typeUntilIndicated, unique, useBrowserAndSite, waitConnected,
} from './support.mjs';

const fx = useBrowserAndSite();

test('the README snippet embeds the widget on another origin; the site\'s CSS does not reach it', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const user = `carol-${unique()}`;
    const room = `lobby-${user}`;
    const ctx = await s.context();
    const page = await s.page(ctx, 'carol');
    const scriptResponse = page.waitForResponse((r) => r.url().endsWith('/v1/widget.js'));
    await page.goto(fx.site.url(user, { name: 'Carol', css: 'aggressive', rooms: [room] }));

    // Exactly the README's form: src on the gateway (another origin), data-token-url, async.
    const tag = await page.evaluate(() => {
      const s = document.querySelector('script[src$="/v1/widget.js"]');
      return { src: s.src, tokenUrl: s.getAttribute('data-token-url'), async: s.async };
    });
    assert.deepEqual(tag, { src: `${gatewayHttp(0)}/v1/widget.js`, tokenUrl: '/chat/token', async: true });
    assert.notEqual(new URL(tag.src).origin, fx.site.origin);
    const r = await scriptResponse;
    assert.equal(r.status(), 200);
    assert.match(r.headers()['content-type'], /^text\/javascript/);

    await waitConnected(page);
    // The token came from the site's backend with the site's cookie.
    assert.ok(fx.site.tokenRequests.some((q) => q.user === user), 'the widget asked the site for a token');

    // Mounted in an open shadow root of <div data-chat-widget> appended to <body>.
    const host = await page.evaluate(() => {
      const h = document.querySelector('body > div[data-chat-widget]');
      return h && { open: h.shadowRoot !== null, count: document.querySelectorAll('[data-chat-widget]').length };
    });
    assert.deepEqual(host, { open: true, count: 1 });

    // Closed at start (no data-open): the launcher shows, the panel does not.
    const launcher = byTestId(page, 'launcher');
    await launcher.waitFor({ state: 'visible' });
    assert.equal(await launcher.getAttribute('aria-expanded'), 'false');
    assert.equal(await byTestId(page, 'panel').isVisible(), false);
    const box = await launcher.boundingBox();
    const vp = page.viewportSize();
    assert.ok(box.width >= 24 && box.width <= 120 && box.height >= 24 && box.height <= 120,
      `launcher of a sane size despite the site's CSS: ${JSON.stringify(box)}`);
    assert.ok(box.x + box.width <= vp.width && box.y + box.height <= vp.height && box.x > vp.width / 2,
      `launcher inside the viewport, at the right: ${JSON.stringify(box)} in ${JSON.stringify(vp)}`);

    await launcher.click();
    await byTestId(page, 'panel').waitFor({ state: 'visible' });
    assert.equal(await launcher.getAttribute('aria-expanded'), 'true');

    // The site's `* { color: red !important; font-size: 40px !important; ... }` and friends
    // must not reach the widget's text, in the room list and in a conversation.
    const leaks = async (ids) => {
      for (const id of ids) {
        const el = byTestId(page, id).first();
        await el.waitFor({ state: 'visible' });
        const st = await el.evaluate((e) => {
          const c = getComputedStyle(e);
          return { color: c.color, fontSize: c.fontSize, textTransform: c.textTransform, fontFamily: c.fontFamily,
                   letterSpacing: c.letterSpacing, visibility: c.visibility, boxShadow: c.boxShadow };
        });
        assert.notEqual(st.color, 'rgb(255, 0, 0)', `${id}: the site's color leaked in`);
        assert.notEqual(st.fontSize, '40px', `${id}: the site's font-size leaked in`);
        assert.notEqual(st.textTransform, 'uppercase', `${id}: the site's text-transform leaked in`);
        assert.notEqual(st.letterSpacing, '4px', `${id}: the site's letter-spacing leaked in`);
        assert.doesNotMatch(st.fontFamily, /Comic Sans/, `${id}: the site's font leaked in`);
        assert.equal(st.visibility, 'visible', `${id}: the site's [data-testid] rule leaked in`);
        assert.doesNotMatch(st.boxShadow, /255, 0, 255/, `${id}: the site's box-shadow leaked in`);
      }
    };
    await leaks(['room-name', 'new-chat-input']);
    await openRoom(page, room);
    await sendText(page, `hello ${user}`);
    await expectTexts(page, [`hello ${user}`]);
    await leaks(['room-title', 'message-text', 'composer-input']);
    const panelBox = await byTestId(page, 'panel').boundingBox();
    assert.ok(panelBox.width <= vp.width && panelBox.height <= vp.height,
      `the panel fits the viewport: ${JSON.stringify(panelBox)}`);

    // The SDK imports as an ES module from the gateway's origin (CORS).
    const sdkExports = await page.evaluate(async (url) => Object.keys(await import(url)).sort(),
      `${gatewayHttp(0)}/v1/chat-sdk.mjs`);
    assert.ok(sdkExports.includes('createChatClient'), `chat-sdk.mjs exports: ${sdkExports}`);

    // With subresource integrity (the gateway's integrity.json, crossorigin): it loads and mounts;
    // with a wrong hash the browser refuses it.
    const integrity = await (await fetch(`${gatewayHttp(0)}/v1/integrity.json`)).json();
    assert.match(integrity['widget.js'], /^sha384-[A-Za-z0-9+/]{64}$/);
    const good = await s.page(ctx, 'carol-sri');
    await good.goto(fx.site.url(user, { name: 'Carol', css: 'plain', integrity: integrity['widget.js'] }));
    await waitConnected(good);
    const bad = await s.page(ctx, 'carol-bad-sri');
    const refused = bad.waitForEvent('console', (m) => /integrity/i.test(m.text()));
    await bad.goto(fx.site.url(user, { name: 'Carol', css: 'plain', integrity: `sha384-${'A'.repeat(64)}` }));
    await refused;
    assert.equal(await bad.evaluate(() => document.querySelector('[data-chat-widget]') === null && !('ChatWidget' in window)), true,
      'a widget.js that fails its integrity check does not run');
  });
});

test('two users chat through two gateways: dm and group, typing, seen, edit, delete, reaction, presence, unread', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const u = unique();
    const alice = `alice-${u}`;
    const bob = `bob-${u}`;
    const group = `grp-${u}`;
    const dm = `dm:${[alice, bob].sort().join(':')}`;
    const rooms = [group, dm];

    const aCtx = await s.context();
    const a = await s.openWidget(aCtx, 'alice', fx.site.url(alice, { name: 'Alice', gw: [0], rooms, open: true, css: 'plain' }));
    await roomItem(a, group).waitFor();
    await roomItem(a, dm).waitFor();
    // Bob has not connected yet: offline in the dm.
    const aDot = roomItem(a, dm).locator(tid('presence-dot'));
    await eventually(async () => assert.equal(await aDot.getAttribute('data-online'), 'false'));

    const bCtx = await s.context();
    const b = await s.openWidget(bCtx, 'bob', fx.site.url(bob, { name: 'Bob', gw: [1], rooms, open: true, css: 'plain' }));
    await roomItem(b, group).waitFor();
    // Presence: bob came online (he is on the other gateway).
    await eventually(async () => assert.equal(await aDot.getAttribute('data-online'), 'true'), { what: 'alice sees bob online' });
    await eventually(async () =>
      assert.equal(await roomItem(b, dm).locator(tid('presence-dot')).getAttribute('data-online'), 'true'),
    { what: 'bob sees alice online' });

    // Alice writes in the group; bob, on his room list, gets an unread badge (room and launcher).
    await openRoom(a, group);
    await sendText(a, `g1 ${u}`);
    await sendText(a, `g2 ${u}`);
    await expectTexts(a, [`g1 ${u}`, `g2 ${u}`], { what: 'alice: her two group messages' });
    const bGroupUnread = roomItem(b, group).locator(tid('room-unread'));
    await eventually(async () => {
      assert.equal(await bGroupUnread.isVisible(), true, 'room-unread visible');
      assert.equal((await bGroupUnread.textContent()).trim(), '2');
      assert.equal((await byTestId(b, 'launcher-badge').textContent()).trim(), '2');
    }, { what: 'bob: unread 2 on the group and the launcher' });
    assert.equal(await roomItem(b, dm).locator(tid('room-unread')).isVisible(), false, 'no unread in the dm');
    // Not read yet: no seen mark on alice's side.
    assert.equal((await messages(a)).filter((m) => m.seen).length, 0);

    // Bob opens the group: both messages once, in order; his unread goes; alice sees "seen" on g2.
    await openRoom(b, group);
    await expectTexts(b, [`g1 ${u}`, `g2 ${u}`], { what: 'bob: the group messages' });
    await eventually(async () => {
      assert.equal(await byTestId(b, 'launcher-badge').isVisible(), false, 'launcher badge hidden at 0');
    });
    await eventually(async () => {
      const ms = await messages(a);
      assert.deepEqual(ms.map((m) => m.seen), [false, true]);
    }, { what: 'alice: seen mark on her newest message only' });

    // Typing: alice types (not sent yet), bob sees "Alice is typing…". The SDK tells the room
    // at most once per 2 s, so she keeps typing until it shows.
    await typeUntilIndicated(a, b, /Alice/, 'bob: typing indicator');
    const aInput = byTestId(a, 'composer-input');
    await aInput.fill(`g3 ${u}`);
    await aInput.press('Enter');
    await sendText(b, `b1 ${u}`);
    const seq = [`g1 ${u}`, `g2 ${u}`, `g3 ${u}`, `b1 ${u}`];
    const aMsgs = await expectTexts(a, seq, { what: 'alice: group after bob replied' });
    const bMsgs = await expectTexts(b, seq, { what: 'bob: group after his reply' });
    assert.deepEqual(aMsgs.map((m) => [m.id, m.seq, m.from]), bMsgs.map((m) => [m.id, m.seq, m.from]),
      'same ids, seqs and senders on both sides');
    assert.deepEqual(aMsgs.map((m) => m.from), [alice, alice, alice, bob]);
    // Screen readers hear bob's message (polite live region, visually hidden).
    const live = byTestId(a, 'live-region');
    assert.equal(await live.getAttribute('aria-live'), 'polite');
    await eventually(async () => assert.match(await live.textContent(), new RegExp(`b1 ${u}`)),
      { what: 'alice: bob\'s message announced' });
    const liveBox = await live.boundingBox();
    assert.ok(liveBox === null || (liveBox.width <= 1 && liveBox.height <= 1), `visually hidden: ${JSON.stringify(liveBox)}`);
    // Own messages carry edit/delete buttons, others' do not.
    assert.equal(await messageById(a, aMsgs[0].id).locator(tid('edit-button')).count(), 1);
    assert.equal(await messageById(a, aMsgs[3].id).locator(tid('edit-button')).count(), 0);
    assert.equal(await messageById(b, aMsgs[0].id).locator(tid('delete-button')).count(), 0);
    // The typing indicator ends (shown 5 s at most).
    await eventually(async () => assert.equal((await byTestId(b, 'typing-indicator').textContent()).trim(), ''),
      { timeout: 8000, what: 'bob: typing indicator cleared' });

    // Alice edits g2 and deletes g3: both sides see it.
    const [g1, g2, g3] = aMsgs;
    await editMessage(a, g2.id, `g2 edited ${u}`);
    await deleteMessage(a, g3.id);
    for (const [p, who] of [[a, 'alice'], [b, 'bob']]) {
      await eventually(async () => {
        const ms = await messages(p);
        assert.deepEqual(ms.map((m) => m.id), aMsgs.map((m) => m.id), 'the same messages, no more');
        assert.deepEqual(ms.map((m) => m.text), [`g1 ${u}`, `g2 edited ${u}`, null, `b1 ${u}`]);
        assert.deepEqual(ms.map((m) => m.edited), [false, true, false, false]);
        assert.deepEqual(ms.map((m) => m.deleted), [false, false, true, false]);
      }, { what: `${who}: edit and delete shown` });
    }

    // Bob reacts to g1: alice sees the reaction (count 1, not pressed by her).
    await reactTo(b, g1.id, '👍');
    await eventually(async () => {
      const m = (await messages(a)).find((x) => x.id === g1.id);
      assert.deepEqual(Object.keys(m.reactions), ['👍']);
      assert.match(m.reactions['👍'].text, /1/);
      assert.equal(m.reactions['👍'].pressed, 'false');
    }, { what: 'alice: bob\'s reaction' });
    const bg1 = (await messages(b)).find((x) => x.id === g1.id);
    assert.equal(bg1.reactions['👍']?.pressed, 'true', 'bob: his own reaction is pressed');

    // The dm: alice writes while bob stays in the group; bob's dm gets an unread badge.
    await openRoom(a, dm);
    await sendText(a, `d1 ${u}`);
    await sendText(a, `d2 ${u}`);
    await expectTexts(a, [`d1 ${u}`, `d2 ${u}`], { what: 'alice: her dm messages' });
    await eventually(async () => assert.equal((await byTestId(b, 'launcher-badge').textContent()).trim(), '2'),
      { what: 'bob: launcher badge counts the dm' });
    await backToRooms(b);
    await eventually(async () =>
      assert.equal((await roomItem(b, dm).locator(tid('room-unread')).textContent()).trim(), '2'),
    { what: 'bob: unread 2 on the dm' });
    assert.equal((await messages(a)).filter((m) => m.seen).length, 0, 'alice: nothing seen yet in the dm');
    await openRoom(b, dm);
    await expectTexts(b, [`d1 ${u}`, `d2 ${u}`], { what: 'bob: the dm' });
    await eventually(async () => assert.deepEqual((await messages(a)).map((m) => m.seen), [false, true]),
      { what: 'alice: seen mark in the dm' });
    await sendText(b, `d3 ${u}`);
    const dSeq = [`d1 ${u}`, `d2 ${u}`, `d3 ${u}`];
    await expectTexts(a, dSeq, { what: 'alice: bob\'s dm reply' });
    await expectTexts(b, dSeq);

    // Bob leaves (closes his browser): alice sees him offline.
    await bCtx.close();
    await backToRooms(a);
    await eventually(async () => assert.equal(await aDot.getAttribute('data-online'), 'false'),
      { timeout: 35000, what: 'alice sees bob offline' });
    // Nothing arrived twice meanwhile.
    await openRoom(a, dm);
    await expectTexts(a, dSeq);
    await openPanel(a);
  });
});
