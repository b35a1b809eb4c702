// A room with more history than one page: the closed widget's launcher counts the unread
// messages, the conversation opens on the newest page and older pages load at the top until the
// beginning, each message once and in order. The same user on a second device sees the same.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  byTestId, eventually, expectTexts, messages, openRoom, run, sdkClient, sendText, stack, unique,
  useBrowserAndSite,
} from './support.mjs';

const fx = useBrowserAndSite();
const clients = [];
after(async () => {
  for (const c of clients) c.close();
});

const N = 75; // two and a half of the widget's history pages, whatever their size up to 50

test('history beyond a page: unread on the launcher, older pages loaded at the top, once and in order', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const u = unique();
    const alice = `alice-${u}`;
    const room = `history-${u}`;
    const bob = await sdkClient(`bob-${u}`, { name: 'Bob' });
    clients.push(bob);
    // Alice is a member before bob writes (so that all of it is unread for her).
    const first = await sdkClient(alice, { name: 'Alice' });
    clients.push(first);
    await first.join(room);
    first.close();
    await bob.join(room);
    const texts = Array.from({ length: N }, (_, i) => `m${String(i + 1).padStart(3, '0')} ${u}`);
    // Queued at once: the outbox sends them in this order over one connection.
    await Promise.all(texts.map((x) => bob.send(room, x)));

    const ctx = await s.context();
    const a = await s.openWidget(ctx, 'alice', fx.site.url(alice, { name: 'Alice', rooms: [room], css: 'plain' }));
    // Closed panel: the launcher's badge counts them.
    const badge = byTestId(a, 'launcher-badge');
    await eventually(async () => {
      assert.equal(await badge.isVisible(), true, 'badge visible');
      assert.equal((await badge.textContent()).trim(), String(N));
    }, { what: 'the launcher badge counts the unread messages' });
    const shot = join(stack.artefacts, 'widget-launcher-unread-badge.png');
    await a.screenshot({ path: shot, clip: { x: 1100 - 160, y: 800 - 160, width: 160, height: 160 } });
    console.log(`# screenshot: ${shot}`);

    await openRoom(a, room);
    await eventually(async () => {
      const ms = await messages(a);
      assert.ok(ms.length > 0 && ms.length < N, `a first page, not everything (${ms.length})`);
      assert.equal(ms.at(-1).text, texts.at(-1));
    }, { what: 'the newest page' });
    const list = byTestId(a, 'message-list');
    const older = byTestId(a, 'load-older');
    await eventually(async () => {
      // At the top, the sentinel loads the next page; a visible button may be clicked too.
      await list.evaluate((el) => { el.scrollTop = 0; });
      if (await older.isVisible()) await older.click({ timeout: 2000 }).catch(() => {});
      assert.equal((await messages(a)).length, N);
    }, { timeout: 30000, interval: 300, what: 'older pages loaded up to the first message' });
    const all = await expectTexts(a, texts, { what: 'every message once, in order' });
    assert.deepEqual(all.map((m) => m.seq), texts.map((_, i) => i + 1));
    await eventually(async () => assert.equal(await older.isVisible(), false, 'no more history: load-older hidden'));
    // Opened and read: the badge is gone.
    await eventually(async () => assert.equal(await badge.isVisible(), false));

    // Alice's second device: her reply shows once on both, and on bob's client.
    const ctx2 = await s.context();
    const a2 = await s.openWidget(ctx2, 'alice-phone', fx.site.url(alice, { name: 'Alice', rooms: [room], open: true, css: 'plain' }));
    await openRoom(a2, room);
    await sendText(a, `reply ${u}`);
    const withReply = [...texts, `reply ${u}`];
    await expectTexts(a, withReply, { what: 'alice: her reply once' });
    await eventually(async () => {
      const ms = await messages(a2);
      assert.deepEqual(ms.map((m) => m.text).slice(-2), withReply.slice(-2));
      assert.equal(ms.filter((m) => m.text === `reply ${u}`).length, 1);
      assert.equal(ms.at(-1).state, 'sent');
      assert.equal(ms.at(-1).from, alice);
    }, { what: 'alice\'s other device: the reply once' });
    const stored = await bob.history(room, { limit: 2 });
    assert.deepEqual(stored.msgs.map((m) => m.text), withReply.slice(-2));
  });
});
