// Unit tests of the outbox stores: oldest first, put replaces, remove, and the IndexedDB
// store keeping its messages for a new store object over the same database (a reload).
// fake-indexeddb stands in for the browser's IndexedDB in this unit test only; the browser
// tests use the real one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IDBFactory } from 'fake-indexeddb';
import { loadModule } from './helpers.mjs';

const { IndexedDbOutboxStore, MemoryOutboxStore } = await loadModule('outbox');
const pm = (cid, createdAt, text = cid) => ({ cid, room: 'r', text, createdAt, attempts: 0 });

for (const [name, make] of [
  ['memory', () => new MemoryOutboxStore()],
  ['indexeddb', () => new IndexedDbOutboxStore('t', new IDBFactory())],
]) {
  test(`${name}: load is oldest first; put replaces; remove`, async () => {
    const s = make();
    await s.put(pm('c', 3));
    await s.put(pm('a', 1));
    await s.put(pm('b', 2));
    assert.deepEqual((await s.load()).map((m) => m.cid), ['a', 'b', 'c']);
    await s.put({ ...pm('b', 2), attempts: 2 });
    await s.remove('a');
    await s.remove('nothing');
    const left = await s.load();
    assert.deepEqual(left.map((m) => [m.cid, m.attempts]), [['b', 2], ['c', 0]]);
  });
}

test('indexeddb: a new store over the same database (a reload) has the messages', async () => {
  const idb = new IDBFactory();
  const first = new IndexedDbOutboxStore('chat-sdk-outbox:site', idb);
  await first.put(pm('x1', 10, 'one'));
  await first.put(pm('x2', 11, 'two'));
  const again = new IndexedDbOutboxStore('chat-sdk-outbox:site', idb);
  assert.deepEqual((await again.load()).map((m) => [m.cid, m.text]), [['x1', 'one'], ['x2', 'two']]);
  const other = new IndexedDbOutboxStore('chat-sdk-outbox:other', idb);
  assert.deepEqual(await other.load(), []);
});
