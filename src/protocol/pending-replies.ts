/**
 * The requests of one connection waiting for their replies, by seq. Every request adds one and
 * every reply takes one, so this is on the path of every round trip: a Map that keeps going from
 * one entry to none makes V8 allocate a new table each time. Seqs are handed out in order and
 * most replies come back soon, so a request lives in the slot `seq % slots`; one whose slot is
 * still taken by an older request (one that waits long: a name to appear, a stream) goes in a
 * Map beside it. Nothing is allocated per request in the usual case.
 */
export class PendingReplies<T> {
  private readonly seqs: number[];
  private readonly waiters: Array<T | undefined>;
  /** Requests whose slot was taken when they were made. */
  private readonly overflow = new Map<number, T>();
  private count = 0;

  constructor(private readonly slots = 64) {
    this.seqs = new Array<number>(slots).fill(-1);
    this.waiters = new Array<T | undefined>(slots).fill(undefined);
  }

  get size(): number {
    return this.count;
  }

  set(seq: number, waiter: T): void {
    const slot = seq % this.slots;
    if (this.waiters[slot] === undefined) {
      this.seqs[slot] = seq;
      this.waiters[slot] = waiter;
    } else {
      this.overflow.set(seq, waiter);
    }
    this.count++;
  }

  /** The waiter of `seq`, still pending; undefined when there is none. */
  get(seq: number): T | undefined {
    const slot = seq % this.slots;
    const waiter = this.waiters[slot];
    return waiter !== undefined && this.seqs[slot] === seq ? waiter : this.overflow.get(seq);
  }

  /** The waiter of `seq`, no longer pending; undefined when there is none. */
  take(seq: number): T | undefined {
    const slot = seq % this.slots;
    const waiter = this.waiters[slot];
    if (waiter !== undefined && this.seqs[slot] === seq) {
      this.waiters[slot] = undefined;
      this.seqs[slot] = -1;
      this.count--;
      return waiter;
    }
    const other = this.overflow.get(seq);
    if (other !== undefined) {
      this.overflow.delete(seq);
      this.count--;
    }
    return other;
  }

  /** Calls `visit` with every waiter still pending, in no particular order. */
  forEach(visit: (waiter: T) => void): void {
    if (this.count === 0) return;
    for (const waiter of this.waiters) if (waiter !== undefined) visit(waiter);
    for (const waiter of this.overflow.values()) visit(waiter);
  }

  /** Every waiter, no longer pending, oldest request first. */
  takeAll(): T[] {
    const all: Array<[number, T]> = [...this.overflow];
    for (let slot = 0; slot < this.slots; slot++) {
      const waiter = this.waiters[slot];
      if (waiter !== undefined) all.push([this.seqs[slot], waiter]);
      this.waiters[slot] = undefined;
      this.seqs[slot] = -1;
    }
    this.overflow.clear();
    this.count = 0;
    return all.sort((a, b) => a[0] - b[0]).map(([, waiter]) => waiter);
  }
}
