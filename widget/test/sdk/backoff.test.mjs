// Unit tests of the reconnect backoff: exponential caps with full jitter, reset.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModule } from './helpers.mjs';

const { Backoff } = await loadModule('backoff');

test('the cap doubles up to maxMs; the delay is a random part of it', () => {
  const top = new Backoff(500, 30000, () => 0.999999);
  const caps = Array.from({ length: 8 }, () => top.next());
  assert.deepEqual(caps, [499, 999, 1999, 3999, 7999, 15999, 29999, 29999]);
  const bottom = new Backoff(500, 30000, () => 0);
  assert.deepEqual(Array.from({ length: 3 }, () => bottom.next()), [0, 0, 0]);
  const half = new Backoff(500, 30000, () => 0.5);
  assert.deepEqual(Array.from({ length: 3 }, () => half.next()), [250, 500, 1000]);
});

test('reset starts again from initialMs', () => {
  const b = new Backoff(100, 1000, () => 0.999999);
  b.next(); b.next(); b.next();
  b.reset();
  assert.equal(b.next(), 99);
});

test('real jitter spreads the delays', () => {
  const b = new Backoff(1000, 1000);
  const delays = new Set(Array.from({ length: 50 }, () => b.next()));
  assert.ok(delays.size > 10, `only ${delays.size} distinct delays`);
  for (const d of delays) assert.ok(d >= 0 && d < 1000);
});
