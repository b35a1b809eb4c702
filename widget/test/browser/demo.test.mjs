// The local demo page the gateway serves (/v1/demo?user=...): what a new user does first, two
// windows chatting.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  byTestId, eventually, expectTexts, gatewayHttp, launchBrowser, openPanel, roomItem, run, sendText, tid, unique,
  waitConnected,
} from './support.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Joins a room through the widget's new-chat field. */
async function joinThroughNewChat(page, room) {
  await openPanel(page);
  const back = byTestId(page, 'back-button');
  if (await back.isVisible()) await back.click();
  await byTestId(page, 'new-chat-input').fill(room);
  await byTestId(page, 'new-chat-button').click();
  await byTestId(page, 'message-list').waitFor({ state: 'visible' });
  await roomItem(page, room).waitFor({ state: 'attached' });
}

test('the demo page: two windows chat', { timeout: 90000 }, async (t) => {
  await run(browser, t, async (s) => {
    const u = unique();
    const alice = `alice-${u}`;
    const bob = `bob-${u}`;
    const room = `demo-${u}`;
    const open = async (user) => {
      const ctx = await s.context();
      const page = await s.page(ctx, user.split('-')[0]);
      const r = await page.goto(`${gatewayHttp(0)}/v1/demo?user=${user}`);
      assert.equal(r.status(), 200);
      assert.equal(r.headers()['cache-control'], 'no-store');
      await waitConnected(page);
      return page;
    };
    const a = await open(alice);
    const b = await open(bob);
    // The demo puts everyone in the lobby.
    await roomItem(a, 'lobby').waitFor({ state: 'attached' });
    // The demo user is who the URL says.
    const token = await (await fetch(`${gatewayHttp(0)}/v1/demo/token?user=${alice}`)).json();
    assert.equal(token.user, alice);

    await joinThroughNewChat(a, room);
    await joinThroughNewChat(b, room);
    await sendText(a, `hello from alice ${u}`);
    await expectTexts(b, [`hello from alice ${u}`], { what: 'bob sees alice' });
    await sendText(b, `hi alice ${u}`);
    const both = [`hello from alice ${u}`, `hi alice ${u}`];
    const am = await expectTexts(a, both, { what: 'alice sees bob\'s answer' });
    const bm = await expectTexts(b, both);
    assert.deepEqual(am.map((m) => m.from), [alice, bob]);
    assert.deepEqual(bm.map((m) => m.id), am.map((m) => m.id));
    // The dm a new user starts with @user.
    await byTestId(a, 'back-button').click();
    await byTestId(a, 'new-chat-input').fill(`@${bob}`);
    await byTestId(a, 'new-chat-button').click();
    const dm = `dm:${[alice, bob].sort().join(':')}`;
    await roomItem(a, dm).waitFor({ state: 'attached' });
    await sendText(a, `psst ${u}`);
    await expectTexts(a, [`psst ${u}`], { what: 'alice\'s dm' });
    // Bob's window, reloaded, lists the dm with one unread message.
    await b.reload();
    await waitConnected(b);
    await openPanel(b);
    await eventually(async () =>
      assert.equal((await roomItem(b, dm).locator(tid('room-unread')).textContent()).trim(), '1'),
    { what: 'bob: the new dm, one unread' });
  });
});
