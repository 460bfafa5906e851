/**
 * The client's hold counters for pinned views from the read index (docs/read-index.md, "Pinned
 * views"): one 32-bit counter per index slot, in a segment the daemon made for this client
 * alone and reads before it frees an indexed blob's bytes. A get of a small blob from the index
 * adds 1 to the slot's counter, then checks that the slot still names the object (the read
 * index's seq did not move): if so the bytes stay put until this client lets go, so they can be
 * handed out as a view of shared memory, with no copy and no round trip.
 *
 * One hold per object and slot: a second get of the same object through the same slot takes no
 * second hold, as the daemon keeps one reference per blob per client. release(id), a delete by
 * this client, and disconnecting let go of them all.
 */
import { SLOT_WAITING, S_STATE, HEADER_WORDS, SLOT_WORDS } from '../protocol/read-index-layout';

export class IndexHolds {
  /** Object id -> the slots this client holds it through (almost always one). */
  private readonly held = new Map<string, number[]>();

  /**
   * `counters`: this client's segment, mapped read-write. `index`: the read index's words, for
   * the slot states. `tell`: sends the daemon slots it waits on (a release with indexSlots).
   */
  constructor(
    private readonly counters: Int32Array,
    private readonly index: Int32Array,
    private readonly tell: (slots: number[]) => void,
  ) {}

  /** Whether this client already holds the object through the slot. */
  holds(id: string, slot: number): boolean {
    const slots = this.held.get(id);
    return slots !== undefined && (slots.length === 1 ? slots[0] === slot : slots.includes(slot));
  }

  /**
   * Announces a hold before the caller re-checks the slot (seq_cst: either the daemon's withdraw
   * sees this, or the re-check sees the withdraw). Follow with keep() or undo().
   */
  add(slot: number): void {
    Atomics.add(this.counters, slot, 1);
  }

  /** The re-check passed: the hold is the object's until released. */
  keep(id: string, slot: number): void {
    const slots = this.held.get(id);
    if (slots) slots.push(slot);
    else this.held.set(id, [slot]);
  }

  /** The re-check failed: takes the hold back, telling the daemon if it waits on the slot. */
  undo(slot: number): void {
    if (this.drop(slot)) this.tell([slot]);
  }

  /** Lets go of these objects' holds; returns the slots to tell the daemon about (waiting ones). */
  release(ids: readonly string[]): number[] {
    const waiting: number[] = [];
    for (const id of ids) {
      const slots = this.held.get(id);
      if (!slots) continue;
      this.held.delete(id);
      for (const slot of slots) if (this.drop(slot)) waiting.push(slot);
    }
    return waiting;
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
