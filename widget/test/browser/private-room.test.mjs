// A private room managed by the tenant's backend (server API): its members see it with its
// name (shown as text), a non-member cannot read it, a member removed while looking at it is
// taken out of it at once with a notice, and a deleted room leaves the list.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  byTestId, eventually, messages, openPanel, openRoom, roomItem, run, sendText, serverApi, tid,
  unique, useBrowserAndSite,
} from './support.mjs';

const fx = useBrowserAndSite();

test('a private room: members only, its name as text, a removed member is taken out at once', { timeout: 90000 }, async (t) => {
  await run(fx.browser, t, async (s) => {
    const u = unique();
    const alice = `alice-${u}`;
    const bob = `bob-${u}`;
    const carol = `carol-${u}`;
    const room = `priv-${u}`;
    const name = `Project <img src=x onerror="window.__xss=7"> ${u}`;
    const created = await serverApi('POST', '/rooms', { room, name, members: [alice, bob] });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    // Listed for its members without data-rooms (from the rooms answer), under its name.
    const a = await s.openWidget(await s.context(), 'alice', fx.site.url(alice, { name: 'Alice', open: true, css: 'plain' }));
    const b = await s.openWidget(await s.context(), 'bob', fx.site.url(bob, { name: 'Bob', open: true, css: 'plain' }));
    for (const [p, who] of [[a, 'alice'], [b, 'bob']]) {
      await eventually(async () =>
        assert.equal((await roomItem(p, room).locator(tid('room-name')).textContent()).trim(), name),
      { what: `${who}: the private room listed under its name, as text` });
      assert.equal(await p.evaluate(() => window.__xss ?? null), null);
    }
    await openRoom(a, room);
    await openRoom(b, room);
    assert.equal((await byTestId(b, 'room-title').textContent()).trim(), name);
    await sendText(a, `members only ${u}`);
    // The server API adds notices of its own (from "system": room created, members added).
    const users = async (p) => (await messages(p)).filter((m) => m.from !== 'system');
    await eventually(async () =>
      assert.deepEqual((await users(b)).map((m) => [m.text, m.state]), [[`members only ${u}`, 'sent']]),
    { what: 'bob: the member\'s message' });
    // What those notices look like: not an empty bubble (checked at the end).
    const emptyNotices = (await messages(b)).filter((m) => m.from === 'system' && !m.deleted && !m.removed &&
      !(m.text ?? '').trim());

    // Carol is no member: asking for the room shows an error and nothing of it.
    const c = await s.openWidget(await s.context(), 'carol', fx.site.url(carol, { name: 'Carol', open: true, css: 'plain' }));
    await openPanel(c);
    await byTestId(c, 'new-chat-input').fill(room);
    await byTestId(c, 'new-chat-button').click();
    await eventually(async () => {
      const errors = await c.locator(`${tid('room-error')}, ${tid('new-chat-error')}, ${tid('notice')}`).allTextContents();
      assert.ok(errors.some((e) => e.trim().length > 0), `an error is shown: ${JSON.stringify(errors)}`);
    }, { what: 'carol: the room is refused' });
    assert.equal(await c.locator(tid('message')).count(), 0, 'carol sees no message of it');

    // Bob removed by the tenant while looking at the room: out at once, with a notice.
    const removed = await serverApi('DELETE', `/rooms/${encodeURIComponent(room)}/members/${bob}`);
    assert.ok([200, 204].includes(removed.status), JSON.stringify(removed));
    await eventually(async () => {
      assert.equal(await byTestId(b, 'room-list').isVisible(), true, 'back on the room list');
      assert.match(await byTestId(b, 'notice').textContent(), /\S/, 'a notice says why');
    }, { timeout: 6000, interval: 50, what: 'bob: taken out of the room, with a notice' });
    await eventually(async () => assert.equal(await roomItem(b, room).count(), 0),
      { what: 'bob: the room is gone from his list' });
    await sendText(a, `after bob left ${u}`);
    await eventually(async () =>
      assert.deepEqual((await users(a)).map((m) => [m.text, m.state]),
        [[`members only ${u}`, 'sent'], [`after bob left ${u}`, 'sent']]));
    const bobSees = await b.evaluate(() => document.querySelector('[data-chat-widget]').shadowRoot.textContent);
    assert.ok(!bobSees.includes(`after bob left ${u}`), 'bob gets nothing more of the room');

    // The room deleted: it leaves alice's list too.
    const deleted = await serverApi('DELETE', `/rooms/${encodeURIComponent(room)}`);
    assert.ok([200, 202, 204].includes(deleted.status), JSON.stringify(deleted));
    await eventually(async () => {
      assert.equal(await roomItem(a, room).count(), 0, 'gone from alice\'s list');
      assert.equal(await byTestId(a, 'room-list').isVisible(), true, 'alice back on the list');
    }, { what: 'alice: the deleted room leaves' });

    assert.deepEqual(emptyNotices, [], 'the server\'s notices (from "system") are shown as something, not as empty bubbles');
  });
});
