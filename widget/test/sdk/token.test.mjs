// Unit tests of getting tokens: the exp claim read for the refresh schedule, the tid claim
// sent as ?tenant=, and a token
// provider that gives nothing being a failure (retried with backoff), not an empty auth.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModule } from './helpers.mjs';

const { gatewayUrl, tokenExp, tokenSource, tokenTenant } = await loadModule('token');
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

test('tokenExp reads exp from the payload, whatever its base64url padding', () => {
  for (const sub of ['a', 'ab', 'abc', 'user-with-a-longer-name']) {
    const jwt = `${b64url({ alg: 'HS256' })}.${b64url({ sub, exp: 1800000000 })}.sig`;
    assert.equal(tokenExp(jwt), 1800000000);
  }
  assert.equal(tokenExp('not a jwt'), undefined);
  assert.equal(tokenExp(`x.${b64url({ sub: 'a' })}.y`), undefined);
});

test('the tenant for ?tenant= comes from the token\'s tid, added to the gateway URL', () => {
  assert.equal(tokenTenant(`${b64url({ alg: 'HS256' })}.${b64url({ tid: 'acme', sub: 'a' })}.s`), 'acme');
  assert.equal(tokenTenant(`x.${b64url({ sub: 'a' })}.y`), undefined);
  assert.equal(tokenTenant('not a jwt'), undefined);
  assert.equal(gatewayUrl('wss://gw.example/v1/ws', 'acme'), 'wss://gw.example/v1/ws?tenant=acme');
  assert.equal(gatewayUrl('ws://h/v1/ws?x=1', 'a b'), 'ws://h/v1/ws?x=1&tenant=a%20b');
  assert.equal(gatewayUrl('ws://h/v1/ws', undefined), 'ws://h/v1/ws');
});

test('a provider that returns no token fails; one that does is used as is', async () => {
  await assert.rejects(tokenSource(undefined, async () => '')(), /no token/);
  assert.equal(await tokenSource(undefined, async () => 'a.b.c')(), 'a.b.c');
  assert.throws(() => tokenSource(undefined, undefined), /tokenUrl or tokenProvider/);
});
