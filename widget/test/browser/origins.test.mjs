// Allowed origins in a real browser (README "Tenant settings: origins and quotas"): a page on
// an origin its tenant did not list cannot open a chat connection with a valid token -- with
// ?tenant= the upgrade fails (HTTP 403: the browser sees a failed handshake, close 1006, no
// open); without it the auth frame is refused (error forbidden, close 4004). Once the tenant
// lists the page's origin (chat-admin tenant origins), the same page gets welcome.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { eventually, launchBrowser, stack, unique } from './support.mjs';

const admin = join(stack.buildDir, 'tools', 'chat-admin', 'chat-admin');
// chat-admin reaches MongoDB and Redis through the stack's variables (stack.env: KEY='value').
const adminEnv = { ...process.env };
for (const line of readFileSync(process.env.CHAT_STACK_ENV, 'utf8').split('\n')) {
  const m = /^([A-Z0-9_]+)='?(.*?)'?$/.exec(line);
  if (m && !(m[1] in process.env)) adminEnv[m[1]] = m[2];
}
const chatAdmin = (...args) =>
  execFileSync(admin, args, { encoding: 'utf8', timeout: 60000, env: adminEnv });

function token(tenant, secret, sub) {
  const b64url = (x) => Buffer.from(x).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ tid: tenant, sub, iat: now, exp: now + 600 }));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** In the page: opens url, sends auth, and resolves what happened: {opened, frame, code}. */
function tryConnect(page, url, jwt) {
  return page.evaluate(([u, t]) => new Promise((resolve) => {
    const out = { opened: false, frame: null, code: null };
    const ws = new WebSocket(u);
    ws.onopen = () => { out.opened = true; ws.send(JSON.stringify({ type: 'auth', token: t })); };
    ws.onmessage = (ev) => {
      out.frame = JSON.parse(ev.data);
      if (out.frame.type === 'welcome') { ws.close(); resolve(out); }
    };
    ws.onclose = (ev) => { out.code = ev.code; resolve(out); };
  }), [url, jwt]);
}

test('a page on a foreign origin cannot connect; once listed it can', { timeout: 90000 }, async (t) => {
  const tenant = `origins-${unique()}`;
  const secret = randomBytes(16).toString('hex');
  chatAdmin('tenant', 'put', tenant, secret);
  chatAdmin('tenant', 'origins', tenant, 'https://app.example.com');

  const site = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>another site</title>');
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  t.after(() => site.close());
  const origin = `http://127.0.0.1:${site.address().port}`;
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(origin + '/');

  const gw = stack.gateways[0];
  const jwt = () => token(tenant, secret, `u-${unique()}`);
  const atAuth = await tryConnect(page, gw, jwt());
  assert.equal(atAuth.opened, true, 'without ?tenant= the upgrade goes through');
  assert.deepEqual([atAuth.frame?.code, atAuth.frame?.message, atAuth.code],
    ['forbidden', 'origin not allowed', 4004], JSON.stringify(atAuth));

  const atUpgrade = await tryConnect(page, `${gw}?tenant=${tenant}`, jwt());
  assert.deepEqual([atUpgrade.opened, atUpgrade.frame, atUpgrade.code], [false, null, 1006],
    `with ?tenant= the handshake fails (403): ${JSON.stringify(atUpgrade)}`);

  chatAdmin('tenant', 'origins', tenant, 'https://app.example.com', origin);
  await eventually(async () => {
    const r = await tryConnect(page, `${gw}?tenant=${tenant}`, jwt());
    return r.frame?.type === 'welcome';
  }, { timeout: 10000, what: 'welcome once the origin is listed' });
});
