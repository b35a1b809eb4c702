// Unit tests of the room sequencer: exactly-once, in-order delivery of msg frames, the gaps
// it reports for history to fill, and which update frames apply.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadModule } from './helpers.mjs';

const { RoomSequencer, REPLAY_MAX } = await loadModule('sequencer');
const msg = (seq) => ({ room: 'r', seq, id: String(seq).padStart(24, '0'), from: 'u', ts: seq });
const seqs = (list) => list.map((m) => m.seq);

test('in-order messages are delivered at once, repeats dropped', () => {
  const s = new RoomSequencer();
  s.joinedFresh(4, 0);
  assert.deepEqual(seqs(s.push(msg(5))), [5]);
  assert.deepEqual(seqs(s.push(msg(5))), []);
  assert.deepEqual(seqs(s.push(msg(3))), []);
  assert.deepEqual(seqs(s.push(msg(6))), [6]);
  assert.equal(s.seq, 6);
  assert.equal(s.gap(), 0);
});

test('a gap holds later messages back until history fills it', () => {
  const s = new RoomSequencer();
  s.joinedFresh(1, 0);
  assert.deepEqual(seqs(s.push(msg(4))), []);
  assert.deepEqual(seqs(s.push(msg(6))), []);
  assert.deepEqual(seqs(s.push(msg(4))), []); // a repeat of a buffered one
  assert.equal(s.gap(), 4); // 2 and 3 are missing
  // history of before=4 may overlap what is known
  assert.deepEqual(seqs(s.filled([msg(1), msg(2), msg(3)], 4)), [2, 3, 4]);
  assert.equal(s.gap(), 6); // 5 is missing
  assert.deepEqual(seqs(s.push(msg(5))), [5, 6]);
  assert.equal(s.gap(), 0);
});

test('seqs that history does not have are skipped, not waited for', () => {
  const s = new RoomSequencer();
  s.joinedFresh(0, 0);
  s.push(msg(5));
  assert.deepEqual(seqs(s.filled([msg(2)], 5)), [2, 5]);
  assert.equal(s.seq, 5);
});

test('a resume beyond the replay limit asks for the older part', () => {
  const s = new RoomSequencer();
  s.joinedFresh(10, 0);
  s.joinedResume(10 + REPLAY_MAX + 20, 0);
  // the replay holds 31..530; 11..30 come from history
  assert.equal(s.gap(), 31);
  assert.deepEqual(seqs(s.push(msg(31))), []);
  const got = s.filled(Array.from({ length: 20 }, (_, i) => msg(11 + i)), 31);
  assert.deepEqual(seqs(got), Array.from({ length: 21 }, (_, i) => 11 + i));
  assert.equal(s.gap(), 0);
});

test('a resume within the replay limit needs no history', () => {
  const s = new RoomSequencer();
  s.joinedFresh(10, 0);
  s.joinedResume(10 + REPLAY_MAX, 0);
  assert.equal(s.gap(), 0);
});

test('updates apply in useq order; repeats drop; a gap is reported', () => {
  const s = new RoomSequencer();
  s.joinedFresh(3, 2);
  const u = (useq) => ({ room: 'r', id: 'x', seq: 1, useq, op: 'edit' });
  assert.equal(s.update(u(2)), 'drop');
  assert.equal(s.update(u(3)), 'apply');
  assert.equal(s.update(u(3)), 'drop');
  assert.equal(s.update(u(5)), 'gap');
  assert.equal(s.useq, 3); // the resume asks from 3
  assert.equal(s.update({ room: 'r', id: 'x', op: 'edit' }), 'apply'); // a v1 server: no useq
});

test('after a resume join, the replayed current states apply though their useqs jump', () => {
  const s = new RoomSequencer();
  s.joinedFresh(3, 2);
  s.joinedResume(3, 9);
  const u = (useq) => ({ room: 'r', id: String(useq), seq: 1, useq, op: 'edit' });
  assert.equal(s.update(u(2)), 'drop'); // held before
  assert.equal(s.update(u(5)), 'apply');
  assert.equal(s.update(u(9)), 'apply');
  assert.equal(s.update(u(10)), 'apply'); // live again
  assert.equal(s.update(u(9)), 'drop'); // the window closed
  assert.equal(s.update(u(12)), 'gap');
});
