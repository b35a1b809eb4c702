// Accessibility (axe-core over the page with the widget open: light and dark, room list and
// conversation; no serious or critical violation) and screenshots of the widget kept in
// CHAT_TEST_ARTEFACTS: light, dark, phone width, conversation, on a hostile site.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  byTestId, eventually, luminance, messages, openRoom, panelBackground, run, sdkClient, stack,
  unique, useBrowserAndSite,
} from './support.mjs';

const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

const fx = useBrowserAndSite();
let u;
let alice;
let room;
const clients = [];
before(async () => {
  // A conversation to look at, written through the SDK: bob's and alice's messages, a link, an
  // edit, a reaction, a long text, and bob's read mark (alice's seen mark).
  u = unique();
  alice = `alice-${u}`;
  const bob = `bob-${u}`;
  room = `team-${u}`;
  const a = await sdkClient(alice, { name: 'Alice', gateways: [stack.gateways[0]] });
  const b = await sdkClient(bob, { name: 'Bob', gateways: [stack.gateways[1]] });
  clients.push(a, b);
  await a.join(room);
  await b.join(room);
  await b.send(room, 'Hi Alice! Are we still on for the design review at 3?');
  const mine = await a.send(room, 'Yes. The agenda: https://example.com/agenda');
  await b.send(room, 'Great. I will bring the numbers from last week; the new onboarding flow cut drop-offs by a third, ' +
    'which is more than we hoped for, so I would like to talk about rolling it out to every tenant next sprint.');
  const last = await a.send(room, 'See you there');
  await a.edit(room, mine.id, 'Yes. The agenda is here: https://example.com/agenda');
  await b.react(room, mine.id, '👍', true);
  await b.read(room, last.seq);
});
after(async () => {
  for (const c of clients) c.close();
});

const EXPECTED = 4;

async function conversationShown(page) {
  await openRoom(page, room);
  await eventually(async () => {
    const ms = await messages(page);
    assert.equal(ms.length, EXPECTED);
    assert.ok(ms.some((m) => m.edited) && ms.some((m) => Object.keys(m.reactions).length));
  }, { what: 'the conversation with its edit and reaction' });
}

/** axe-core over the whole page; returns the violations (printed); asserts none serious/critical. */
async function axe(page, label) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: axePath });
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 5) }));
  });
  for (const v of violations)
    console.log(`# axe ${label}: ${v.impact} ${v.id}: ${v.help} (${v.targets.join(', ')})`);
  if (violations.length === 0) console.log(`# axe ${label}: no violations`);
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${label}: serious or critical accessibility violations`);
}

for (const scheme of ['light', 'dark']) {
  test(`axe: ${scheme} theme, room list and conversation: no serious or critical violation`, { timeout: 90000 }, async (t) => {
    await run(fx.browser, t, async (s) => {
      const ctx = await s.context({ colorScheme: scheme });
      const page = await s.openWidget(ctx, `alice-${scheme}`, fx.site.url(alice, { name: 'Alice', rooms: [room], open: true, css: 'plain' }));
      await byTestId(page, 'room-list').waitFor({ state: 'visible' });
      // data-theme defaults to auto: it follows prefers-color-scheme.
      const lum = luminance(await panelBackground(page));
      if (scheme === 'dark') assert.ok(lum < 0.2, `a dark panel (luminance ${lum.toFixed(2)})`);
      else assert.ok(lum > 0.6, `a light panel (luminance ${lum.toFixed(2)})`);
      await axe(page, `${scheme} room list`);
      await conversationShown(page);
      await axe(page, `${scheme} conversation`);
    });
  });
}

test('screenshots: light, dark, phone width, conversation, on a hostile site', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const saved = [];
    const shot = async (locatorOrPage, name) => {
      const path = join(stack.artefacts, name);
      await locatorOrPage.screenshot({ path, animations: 'disabled' });
      saved.push(path);
    };
    for (const scheme of ['light', 'dark']) {
      const ctx = await s.context({ colorScheme: scheme, deviceScaleFactor: 2 });
      const page = await s.openWidget(ctx, `alice-${scheme}`, fx.site.url(alice, { name: 'Alice', rooms: [room], open: true, css: 'plain' }));
      await byTestId(page, 'room-list').waitFor({ state: 'visible' });
      await shot(byTestId(page, 'panel'), `widget-${scheme}-room-list.png`);
      await conversationShown(page);
      await shot(byTestId(page, 'panel'), `widget-${scheme}-conversation.png`);
      await shot(page, `widget-${scheme}-conversation-page.png`);
    }

    // A phone: 360x740; the open panel must fit the screen.
    const phone = await s.context({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const p = await s.openWidget(phone, 'alice-phone', fx.site.url(alice, { name: 'Alice', rooms: [room], open: true, css: 'plain' }));
    await byTestId(p, 'room-list').waitFor({ state: 'visible' });
    await shot(p, 'widget-phone-360x740-room-list.png');
    await conversationShown(p);
    await shot(p, 'widget-phone-360x740-conversation.png');
    const box = await byTestId(p, 'panel').boundingBox();
    assert.ok(box.x >= 0 && box.y >= 0 && box.x + box.width <= 360.5 && box.y + box.height <= 740.5,
      `the panel fits a 360x740 screen: ${JSON.stringify(box)}`);
    const composer = await byTestId(p, 'composer-input').boundingBox();
    assert.ok(composer && composer.y + composer.height <= 740.5, `the composer is on screen: ${JSON.stringify(composer)}`);

    // On a site with hostile global CSS: launcher, then the open panel.
    const h = await s.context({ deviceScaleFactor: 1 });
    const hp = await s.openWidget(h, 'alice-hostile', fx.site.url(alice, { name: 'Alice', rooms: [room], css: 'aggressive' }));
    await byTestId(hp, 'launcher').waitFor({ state: 'visible' });
    await shot(hp, 'widget-hostile-site-launcher.png');
    await conversationShown(hp);
    await shot(hp, 'widget-hostile-site-conversation.png');

    for (const path of saved) console.log(`# screenshot: ${path}`);
    assert.equal(saved.length, 10);
  });
});
