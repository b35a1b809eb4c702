// What the script tag's attributes and the keyboard do, the composer's limits, and a token
// renewed from data-token-url before it expires without dropping the connection.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  byTestId, eventually, expectTexts, luminance, openRoom, panelBackground, run, sdkClient,
  sendText, storedMessages, unique, useBrowserAndSite,
} from './support.mjs';

const fx = useBrowserAndSite();
let sdk;
before(async () => {
  sdk = await sdkClient(`checker-${unique()}`);
});
after(async () => {
  sdk?.close();
});

/** The data-testid of the element focused inside the widget's shadow root. */
const focused = (page) => page.evaluate(() =>
  document.querySelector('[data-chat-widget]').shadowRoot.activeElement?.getAttribute('data-testid') ?? null);

test('data-theme="dark" in a light browser, data-position="left"; Escape closes, the launcher opens from the keyboard', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const user = `dana-${unique()}`;
    const ctx = await s.context({ colorScheme: 'light' });
    const page = await s.openWidget(ctx, 'dana', fx.site.url(user, { name: 'Dana', theme: 'dark', position: 'left', open: true, css: 'plain' }));
    const panel = byTestId(page, 'panel');
    await panel.waitFor({ state: 'visible' });
    const lum = luminance(await panelBackground(page));
    assert.ok(lum < 0.2, `data-theme="dark" wins over a light browser (luminance ${lum.toFixed(2)})`);
    const vp = page.viewportSize();
    const pb = await panel.boundingBox();
    const lb = await byTestId(page, 'launcher').boundingBox();
    assert.ok(pb.x + pb.width / 2 < vp.width / 2, `the panel on the left: ${JSON.stringify(pb)}`);
    assert.ok(lb.x + lb.width / 2 < vp.width / 2, `the launcher on the left: ${JSON.stringify(lb)}`);

    // Escape closes the panel and gives the focus back to the launcher.
    await byTestId(page, 'new-chat-input').focus();
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    assert.equal(await byTestId(page, 'launcher').getAttribute('aria-expanded'), 'false');
    assert.equal(await focused(page), 'launcher');
    // Enter on the focused launcher opens it again.
    await page.keyboard.press('Enter');
    await panel.waitFor({ state: 'visible' });
    assert.equal(await byTestId(page, 'launcher').getAttribute('aria-expanded'), 'true');
    assert.notEqual(await focused(page), null, 'the focus moved into the panel');
  });
});

test('composer: Shift+Enter is a new line; no more than the 4000 characters the protocol takes', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const u = unique();
    const user = `erin-${u}`;
    const room = `composer-${u}`;
    const ctx = await s.context();
    const page = await s.openWidget(ctx, 'erin', fx.site.url(user, { name: 'Erin', rooms: [room], open: true, css: 'plain' }));
    await openRoom(page, room);
    const input = byTestId(page, 'composer-input');
    await input.fill(`line one ${u}`);
    await input.press('Shift+Enter');
    await input.pressSequentially('line two');
    assert.equal(await page.locator('[data-testid="message"]').count(), 0, 'Shift+Enter sent nothing');
    await input.press('Enter');
    const two = `line one ${u}\nline two`;
    await expectTexts(page, [two], { what: 'a two-line message' });
    assert.equal(await input.inputValue(), '', 'the composer is emptied');

    // The protocol's limit is 4000 characters: the composer takes no more.
    await input.fill('x'.repeat(3990) + '0123456789abc');
    assert.equal((await input.inputValue()).length, 4000, 'the composer holds 4000 characters at most');
    await input.press('Enter');
    const long = 'x'.repeat(3990) + '0123456789';
    await expectTexts(page, [two, long], { what: 'the 4000 characters sent' });
    assert.deepEqual((await storedMessages(sdk, room)).map((m) => m.text), [two, long], 'stored as sent');
  });
});

test('a token about to expire is renewed from data-token-url on the same connection', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const u = unique();
    const user = `finn-${u}`;
    const room = `refresh-${u}`;
    const ctx = await s.context();
    // 65 s tokens: the SDK renews 60 s before exp, so about 5 s after connecting.
    const page = await s.openWidget(ctx, 'finn', fx.site.url(user, { name: 'Finn', rooms: [room], open: true, ttl: 65, css: 'plain' }));
    const asked = () => fx.site.tokenRequests.filter((q) => q.user === user).length;
    assert.equal(asked(), 1);
    await eventually(() => assert.ok(asked() >= 2, `token requests: ${asked()}`), { timeout: 20000, interval: 200, what: 'a second token asked for' });
    await eventually(() => {
      const f = s.frames(page);
      assert.ok(f.some((x) => x.dir === 'out' && x.type === 'refresh'), 'a refresh frame sent');
      assert.ok(f.some((x) => x.dir === 'in' && x.type === 'ok'), 'answered ok');
    }, { what: 'the new token given to the gateway' });
    assert.equal(s.sockets(page).length, 1, 'the same connection');
    assert.equal(await byTestId(page, 'connection-status').getAttribute('data-state'), 'open');
    await openRoom(page, room);
    await sendText(page, `still here ${u}`);
    await expectTexts(page, [`still here ${u}`]);
  });
});
