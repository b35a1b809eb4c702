// The notifications service worker (chat-sw.js) in the real browser: the tenant site hosts it
// on its own origin, the page registers it with notifications granted, and pushes are delivered
// through the DevTools protocol (ServiceWorker.deliverPushMessage, which hands the payload to
// the worker's `push` event as a push service would after decryption). Headless Chromium shows
// notifications to registration.getNotifications() with the permission granted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  byTestId, eventually, run, unique, useBrowserAndSite, waitConnected,
} from './support.mjs';

const fx = useBrowserAndSite();

const notifications = (page) => page.evaluate(async () => {
  const reg = await navigator.serviceWorker.getRegistration('/');
  return (await reg.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }));
});

test('chat-sw.js on the tenant\'s origin: a message push shows a notification, a close push closes it', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const u = unique();
    const user = `alice-${u}`;
    const room = `sw-${u}`;
    const ctx = await s.context();
    await ctx.grantPermissions(['notifications'], { origin: fx.site.origin });
    const page = await s.page(ctx, 'alice');
    const cdp = await ctx.newCDPSession(page);
    const registrations = new Map(); // scopeURL -> registrationId
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
      for (const r of e.registrations) {
        if (r.isDeleted) registrations.delete(r.scopeURL);
        else registrations.set(r.scopeURL, r.registrationId);
      }
    });
    await cdp.send('ServiceWorker.enable');

    // The widget with data-sw-url: the site's copy of the worker.
    await page.goto(fx.site.url(user, { name: 'Alice', rooms: [room], open: true, sw: true, css: 'plain' }));
    await waitConnected(page);
    await byTestId(page, 'notify-button').waitFor({ state: 'attached' });
    const scope = await page.evaluate(async () => {
      const reg = await navigator.serviceWorker.register('/chat-sw.js');
      await navigator.serviceWorker.ready;
      return { scope: reg.scope, permission: Notification.permission, script: reg.active.scriptURL };
    });
    assert.deepEqual(scope, { scope: `${fx.site.origin}/`, permission: 'granted', script: `${fx.site.origin}/chat-sw.js` });
    await eventually(() => assert.ok(registrations.has(scope.scope), 'the DevTools protocol saw the registration'));
    const push = (payload) => cdp.send('ServiceWorker.deliverPushMessage', {
      origin: fx.site.origin, registrationId: registrations.get(scope.scope), data: JSON.stringify(payload),
    });

    const message = { type: 'message', tenant: 'demo', room, seq: 7, id: `m-${u}`, from: `bob-${u}`, name: 'Bob',
                      text: `Are you there? ${u}`, count: 2, ts: Date.now() };
    await push(message);
    let shown;
    await eventually(async () => {
      shown = await notifications(page);
      assert.equal(shown.length, 1, JSON.stringify(shown));
    }, { what: 'the notification is shown' });
    assert.equal(shown[0].tag, room);
    // The body is the text (the worker may add the unread count after it).
    assert.ok(shown[0].body.startsWith(message.text), `body: ${JSON.stringify(shown[0].body)}`);
    assert.match(shown[0].title, /Bob/);
    assert.match(shown[0].title, new RegExp(room));
    assert.deepEqual(shown[0].data, message);

    // A second message of the room replaces it (one notification per room); another room adds one.
    await push({ ...message, seq: 8, id: `m2-${u}`, text: `Hello? ${u}`, count: 3 });
    await push({ ...message, room: `${room}-other`, seq: 1, id: `m3-${u}`, text: `elsewhere ${u}`, count: 1 });
    await eventually(async () => {
      shown = await notifications(page);
      assert.deepEqual(shown.map((n) => [n.tag, n.body.split(' (')[0]]).sort(),
        [[room, `Hello? ${u}`], [`${room}-other`, `elsewhere ${u}`]]);
    }, { what: 'one notification per room' });

    // The close push (a read elsewhere) closes the room's notification only.
    await push({ type: 'close', tenant: 'demo', room, seq: 8 });
    await eventually(async () => {
      shown = await notifications(page);
      assert.deepEqual(shown.map((n) => n.tag), [`${room}-other`]);
    }, { what: 'the close push closed the room\'s notification' });
  });
});

// Playwright's contexts are like incognito windows, where Chromium has no Push API: the widget's
// notify button must say that it did not work and stay off (the subscription itself is tested
// in node against the stack's push service).
test('notify-button where the browser cannot subscribe to push: a notice, the button stays off', { timeout: 60000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const ctx = await s.context();
    await ctx.grantPermissions(['notifications'], { origin: fx.site.origin });
    const page = await s.openWidget(ctx, 'gus', fx.site.url(`gus-${unique()}`, { name: 'Gus', open: true, sw: true, css: 'plain' }));
    const button = byTestId(page, 'notify-button');
    assert.equal(await button.getAttribute('data-state'), 'off');
    await button.click();
    await eventually(async () => {
      assert.ok(['off', 'unavailable'].includes(await button.getAttribute('data-state')), await button.getAttribute('data-state'));
      assert.match(await byTestId(page, 'notice').textContent(), /\S/, 'a notice says it did not work');
    }, { what: 'the failed subscription reported' });
    assert.equal(await button.getAttribute('aria-pressed'), 'false');
    assert.deepEqual(s.frames(page).filter((f) => f.dir === 'out' && f.type === 'push_subscribe'), []);
  });
});
