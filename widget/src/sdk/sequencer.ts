// The order of one room: delivers each msg once and in seq order (duplicates dropped,
// out-of-order ones buffered until the gap before them is filled from history) and decides
// whether an update frame applies, is a repeat, or shows that updates were lost.
import type { ChatMessage, ChatUpdate } from './types';

/** How far a join's replay reaches (PROTOCOL.md: at most 500 msg frames after since). */
export const REPLAY_MAX = 500;

export class RoomSequencer {
  /** The last seq delivered in order (0: none). */
  seq = 0;
  /** The last useq applied. */
  useq = 0;
  /** Messages received ahead of a gap, by seq. */
  private ahead = new Map<number, ChatMessage>();
  /** A seq known to exist that no frame will bring (beyond a join's replay): fetched. */
  private needTo = 0;
  /** After a resume join, the gateway resends the current state of messages changed since
   *  usince: their useqs are neither consecutive nor above the latest (joined.useq). Updates
   *  in (floor, useq] are accepted until the first live update closes this window. */
  private floor = 0;
  private replaying = false;

  /** A fresh join (no since): the room's history is fetched by the caller, not replayed. */
  joinedFresh(latest: number, latestUseq: number): void {
    this.seq = latest;
    this.useq = this.floor = latestUseq;
    this.replaying = false;
    this.ahead.clear();
    this.needTo = 0;
  }

  /** A join with since = this.seq and usince = this.useq was answered. */
  joinedResume(latest: number, latestUseq: number): void {
    if (latest - this.seq > REPLAY_MAX) this.needTo = latest - REPLAY_MAX;
    this.floor = this.useq;
    this.useq = Math.max(this.useq, latestUseq);
    this.replaying = true;
  }

  /** Takes a msg frame; returns the messages now deliverable, in seq order. */
  push(m: ChatMessage): ChatMessage[] {
    if (m.seq <= this.seq || this.ahead.has(m.seq)) return [];
    this.ahead.set(m.seq, m);
    return this.drain();
  }

  private drain(): ChatMessage[] {
    const out: ChatMessage[] = [];
    for (let m; (m = this.ahead.get(this.seq + 1)); ) {
      this.ahead.delete(m.seq);
      this.seq = m.seq;
      out.push(m);
    }
    return out;
  }

  /** If messages are missing: the seq before which history must be read (the missing ones
   *  are this.seq + 1 ... gap() - 1); 0 if none are. */
  gap(): number {
    if (this.ahead.size) return Math.min(...this.ahead.keys());
    return this.needTo > this.seq ? this.needTo + 1 : 0;
  }

  /** History read for the gap before target (any order, any overlap): returns the messages
   *  now deliverable. Seqs that history does not hold (it holds every stored message, so
   *  this does not happen unless the store lost them) are skipped rather than waited for. */
  filled(msgs: ChatMessage[], target: number): ChatMessage[] {
    for (const m of msgs) {
      if (m.seq > this.seq && m.seq < target && !this.ahead.has(m.seq)) this.ahead.set(m.seq, m);
    }
    const out: ChatMessage[] = [];
    for (const n of [...this.ahead.keys()].filter((n) => n < target).sort((a, b) => a - b)) {
      out.push(this.ahead.get(n)!);
      this.ahead.delete(n);
      this.seq = n;
    }
    this.seq = Math.max(this.seq, target - 1);
    out.push(...this.drain());
    return out;
  }

  /** 'apply' an update, 'drop' it (already applied), or 'gap': some were lost (re-join). */
  update(u: ChatUpdate): 'apply' | 'drop' | 'gap' {
    const n = u.useq;
    if (n === undefined) return 'apply';
    if (n <= this.floor) return 'drop';
    if (n <= this.useq) return this.replaying ? 'apply' : 'drop';
    this.replaying = false;
    if (n !== this.useq + 1) return 'gap';
    this.useq = this.floor = n;
    return 'apply';
  }
}
