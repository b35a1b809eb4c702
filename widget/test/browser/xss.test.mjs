// Markup in message texts and in a display name (the token's `name` claim) is shown as text:
// nothing runs, no element is made of it; only http(s) URLs become links.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  expectTexts, messages, openRoom, run, sendText, tid, typeUntilIndicated, unique,
  useBrowserAndSite,
} from './support.mjs';

const fx = useBrowserAndSite();

/** What the widget's shadow root holds that markup could have made. */
function injected(page) {
  return page.evaluate(() => {
    const root = document.querySelector('[data-chat-widget]').shadowRoot;
    const all = [...root.querySelectorAll('*')];
    return {
      xss: window.__xss ?? null,
      scripts: root.querySelectorAll('script').length + document.querySelectorAll('body script:not([src])').length,
      imgs: root.querySelectorAll('img[src="x"], img[onerror], svg[onload], iframe').length,
      handlers: all.filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).map((e) => e.outerHTML.slice(0, 120)),
      bold: root.querySelectorAll('b, marquee').length,
      jsLinks: [...root.querySelectorAll('a')].filter((a) => !/^https?:/i.test(a.href)).map((a) => a.href),
    };
  });
}

test('markup in texts and display names is shown literally; only http(s) URLs become links', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const u = unique();
    const mallory = `mallory-${u}`;
    const bob = `bob-${u}`;
    const room = `xss-${u}`;
    const evilName = `<img src=x onerror="window.__xss=3"><b>Mallory</b>`;
    const texts = [
      `<img src=x onerror="window.__xss=1"> ${u}`,
      `<script>window.__xss=2</script> ${u}`,
      `<svg onload="window.__xss=4"></svg><marquee>x</marquee> ${u}`,
      `javascript:window.__xss=5 ${u}`,
      `[click](javascript:window.__xss=6) ${u}`,
      `see https://example.com/a?b=1&c=<i>2</i> and javascript:alert(1) ${u}`,
    ];
    const mCtx = await s.context();
    const m = await s.openWidget(mCtx, 'mallory', fx.site.url(mallory, { name: evilName, gw: [0], rooms: [room], open: true, css: 'plain' }));
    const bCtx = await s.context();
    const b = await s.openWidget(bCtx, 'bob', fx.site.url(bob, { name: 'Bob', gw: [1], rooms: [room], open: true, css: 'plain' }));
    await openRoom(m, room);
    await openRoom(b, room);
    for (const text of texts) await sendText(m, text);

    for (const [page, who] of [[b, 'bob'], [m, 'mallory']]) {
      const ms = await expectTexts(page, texts, { what: `${who}: the texts, literally` });
      // Whatever the widget shows as the author, it is the name as text (or the user id).
      // (a run of messages may show the author once).
      if (who === 'bob') {
        const authors = ms.map((x) => x.author).filter((x) => x !== null);
        assert.ok(authors.length >= 1, 'the author is shown');
        for (const x of authors) assert.ok(x.includes('<img src=x onerror="window.__xss=3"><b>Mallory</b>'),
          `the author shown literally: ${JSON.stringify(x)}`);
      }
      const found = await injected(page);
      assert.deepEqual(found, { xss: null, scripts: 0, imgs: 0, handlers: [], bold: 0, jsLinks: [] }, `${who}: nothing injected`);
      // Exactly one link: the https URL, safe attributes, its text the URL itself.
      const links = await page.locator(`${tid('message-text')} a`).evaluateAll((as) =>
        as.map((a) => ({ href: a.getAttribute('href'), text: a.textContent, rel: (a.getAttribute('rel') ?? '').split(/\s+/).sort(), target: a.target })));
      assert.equal(links.length, 1, `${who}: one link: ${JSON.stringify(links)}`);
      assert.match(links[0].href, /^https:\/\/example\.com\/a\?b=1&c=/);
      assert.ok(links[0].rel.includes('noopener') && links[0].rel.includes('noreferrer'), `rel: ${links[0].rel}`);
      assert.equal(links[0].target, '_blank');
      // No element inside a text but that link.
      const inner = await page.locator(tid('message-text')).evaluateAll((els) =>
        els.flatMap((e) => [...e.querySelectorAll('*')].map((c) => c.tagName)));
      assert.deepEqual(inner, ['A'], `${who}: elements inside texts`);
    }
    // The display name made no element in the room list or the typing indicator either.
    await typeUntilIndicated(m, b, /<img src=x onerror="window.__xss=3"><b>Mallory<\/b>/, 'bob: the typing indicator names mallory literally');
    assert.equal((await injected(b)).xss, null);
    assert.equal((await messages(b)).length, texts.length);
  });
});
