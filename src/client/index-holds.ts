/**
 * The client's hold counters for pinned views from the read index (docs/read-index.md, "Pinned
 * views"): one 32-bit counter per index slot, in a segment the daemon made for this client
 * alone and reads before it frees an indexed blob's bytes. A get of a blob from the index
 * adds 1 to the slot's counter, then checks that the slot still names the object (the read
 * index's seq did not move): if so the bytes stay put until this client lets go, so they can be
 * handed out as a view of shared memory, with no copy and no round trip.
 *
 * One hold per object: a second get of the same object takes no second hold, as the daemon keeps
 * one reference per blob per client, even when a rebuild of the index has moved the object to
 * another slot (the held slot is then its tombstone, which keeps the bytes; a hold per slot would
 * leave a tombstone per rebuild until release, and fill the index). release(id), a delete by this
 * client, and disconnecting let go of them. Letting go also counts a use of the slot, as does a
 * copy from the index, which is how the daemon learns that an object got only from the index is
 * in use (its spill order); a hold kept until the disconnect the daemon counts itself then.
 */
import { WRITTEN_MAP_MAGIC, chunkOf } from '../protocol/hold-counters-layout';
import { SLOT_WAITING, S_STATE, HEADER_WORDS, SLOT_WORDS } from '../protocol/read-index-layout';

export class IndexHolds {
  /** Object id -> the slot this client holds it through. */
  private readonly held = new Map<string, number>();

  /**
   * `counters`: this client's hold counters, mapped read-write. `index`: the read index's words,
   * for the slot states. `tell`: sends the daemon slots it waits on (a release with indexSlots).
   * `uses`: the use counts after the counters in the same segment (undefined from a daemon that
   * predates them), one added at each release so that the daemon counts the object as used.
   * `written`: the written-chunk map after them (hold-counters-layout.ts), kept so that the daemon
   * reads only those chunks when this client goes; its marker is stored now, at connect, so that
   * its page's first-write fault is paid here rather than at a first get.
   */
  constructor(
    private readonly counters: Int32Array,
    private readonly index: Int32Array,
    private readonly tell: (slots: number[]) => void,
    private readonly uses?: Int32Array,
    private readonly written?: Int32Array,
  ) {
    if (written !== undefined) written[0] = WRITTEN_MAP_MAGIC;
  }

  /**
   * Whether this client already holds the object, through any slot: while that slot names the
   * object, the daemon reads the hold before it frees or moves the bytes; once it is the
   * object's tombstone, the object is pinned until the hold goes (docs/read-index.md).
   */
  holds(id: string): boolean {
    return this.held.has(id);
  }

  /**
   * Announces a hold before the caller re-checks the slot (seq_cst: either the daemon's withdraw
   * sees this, or the re-check sees the withdraw). Follow with keep() or undo().
   */
  add(slot: number): void {
    if (this.written !== undefined) this.markWritten(slot);
    Atomics.add(this.counters, slot, 1);
  }

  /** The re-check passed: the hold is the object's until released. */
  keep(id: string, slot: number): void {
    this.held.set(id, slot);
  }

  /** The re-check failed: takes the hold back, telling the daemon if it waits on the slot. */
  undo(slot: number): void {
    if (this.drop(slot)) this.tell([slot]);
  }

  /** Lets go of these objects' holds; returns the slots to tell the daemon about (waiting ones). */
  release(ids: readonly string[]): number[] {
    const waiting: number[] = [];
    for (const id of ids) {
      const slot = this.held.get(id);
      if (slot === undefined) continue;
      this.held.delete(id);
      // Used until now. Its page is first written here, not at a get, so a new process's first
      // get of a view pays no second page fault.
      this.countUse(slot);
      if (this.drop(slot)) waiting.push(slot);
    }
    return waiting;
  }

  /**
   * Counts a use of the slot's blob that no request told the daemon of (a view let go, a copy
   * from the index): the daemon reads the counts before a spill. A plain store: only this client
   * writes it, and a count read a little late is seen at the next look.
   */
  countUse(slot: number): void {
    if (this.uses === undefined) return;
    if (this.written !== undefined) this.markWritten(this.counters.length + slot);
    this.uses[slot] = (this.uses[slot] + 1) | 0;
  }

  /** Sets the map's bit for the chunk of segment word `word`, before the word is first written. */
  private markWritten(word: number): void {
    const written = this.written!;
    const chunk = chunkOf(word);
    const at = 1 + (chunk >>> 5);
    const bit = 1 << (chunk & 31);
    if ((written[at] & bit) === 0) written[at] |= bit;
  }

  /** As release, telling the daemon itself (after a delete, which had no room for it). */
  releaseAndTell(ids: readonly string[]): void {
    const waiting = this.release(ids);
    if (waiting.length > 0) this.tell(waiting);
  }

  /**
   * Subtracts the hold, then reads the slot's state: a daemon that saw the hold has marked the
   * slot waiting before it read the counter (seq_cst), so either it sees this decrement, or this
   * sees SLOT_WAITING and the daemon is told.
   */
  private drop(slot: number): boolean {
    Atomics.sub(this.counters, slot, 1);
    return Atomics.load(this.index, HEADER_WORDS + slot * SLOT_WORDS + S_STATE) === SLOT_WAITING;
  }
}
