/**
 * The daemon's side of pinned views from the read index (docs/read-index.md, "Pinned views"):
 * each local client that maps the index is given a segment of its own with one 32-bit hold
 * counter per index slot, which the client writes (Atomics.add before it hands out a view of
 * the slot's bytes, Atomics.sub when it releases it) and the daemon only ever reads.
 *
 * The counters come from an untrusted process: any value but 0 means "held", so a client that
 * writes garbage only keeps bytes in memory, as a client that never releases its references
 * does, and the daemon never writes, trusts or indexes anything with what it reads. Work per
 * question is one load per connected client.
 *
 * After the counters, the same segment has one use count per slot, which the client adds 1 to
 * when it lets a hold go: a get from the index is not a request, so this is how the daemon learns
 * that an object nobody holds now was used (the spill order, docs/read-index.md "Use"). A hold
 * kept until the client disconnects is counted here as it goes (close), and its use counts stay
 * in the sums (departed), so that its going neither hides a use nor looks like one.
 */
import { readSync } from 'node:fs';
import { native, type NativeSegment } from '../native';
import { CHUNK_WORDS, WRITTEN_MAP_MAGIC, holdCounterWords, writtenMapWords } from '../protocol/hold-counters-layout';
import { READ_INDEX_HOLDS_SEGMENT } from '../protocol/read-index-layout';

/** A departing client's counters are scanned a chunk (16 KiB) at a time, zero ones skipped by one compare. */
const ZEROS = Buffer.alloc(CHUNK_WORDS * 4);
/** Chunks read at most in one pread (1 MiB): the scratch buffer stays that size, whatever the slots. */
const RUN_CHUNKS = 64;

interface ClientHolds {
  readonly memory: NativeSegment;
  /** The daemon's read-only view of the counters. */
  readonly counters: Int32Array;
  /** ...and of the use counts after them. */
  readonly uses: Int32Array;
}

export class IndexHolds {
  private readonly clients = new Map<number, ClientHolds>();
  /** The same counters as a list, for the per-withdraw scan (no Map iterator on that path). */
  private all: Int32Array[] = [];
  private allUses: Int32Array[] = [];
  /** Where a departing client's counters are read (readDeparting), grown as needed. */
  private scratch?: Buffer;
  /** Use counts of clients that went, summed per slot (made at the first departure). */
  private departed?: Int32Array;

  /** `slots`: one counter per read-index slot. `shmDir`: as the pool's ('' for a memfd). */
  constructor(
    private readonly slots: number,
    private readonly shmDir: string,
  ) {}

  /**
   * Bytes of one client's counter segment: a hold counter, then a use count, per slot, then the
   * written-chunk map (hold-counters-layout.ts). A client that predates the use counts maps it
   * all and uses the first slots words (its counters); one that predates the map, the first 2 x slots.
   */
  get bytes(): number {
    return holdCounterWords(this.slots) * 4;
  }

  /**
   * The counter segment of a client, made at its first ask; granted to it as segment
   * READ_INDEX_HOLDS_SEGMENT. Errors: OutOfMemory (no memory for the segment).
   */
  open(clientId: number): { fd: number; size: number; segment: number } {
    let holds = this.clients.get(clientId);
    if (!holds) {
      const memory = new native.Segment(this.bytes, 'trellis-index-holds', this.shmDir);
      // Read-only here: the daemon never writes a client's counters.
      const mapping = new native.Mapping(memory.fd, this.bytes, false);
      const buffer = mapping.sharedBuffer ?? mapping.buffer;
      const uses = new Int32Array(buffer, this.slots * 4, this.slots);
      holds = { memory, counters: new Int32Array(buffer, 0, this.slots), uses };
      this.clients.set(clientId, holds);
      this.listClients();
    }
    return { fd: holds.memory.fd, size: this.bytes, segment: READ_INDEX_HOLDS_SEGMENT };
  }

  /**
   * Whether any client holds the slot. Seq_cst loads: called after the slot was rewritten (an
   * Atomics.store), so that a client's Atomics.add either shows here or its re-check of the slot
   * sees the rewrite (the Dekker argument in docs/read-index.md).
   */
  held(slot: number): boolean {
    const all = this.all;
    for (let i = 0; i < all.length; i++) if (Atomics.load(all[i], slot) !== 0) return true;
    return false;
  }

  /**
   * Forgets a client that went away: its counters no longer count. Returns the slots it still
   * held (views it kept until it left, never released: used, though no use count says so).
   */
  close(clientId: number): number[] {
    const holds = this.clients.get(clientId);
    if (!holds) return [];
    this.clients.delete(clientId);
    this.listClients();
    const kept = this.readDeparting(holds.memory.fd);
    holds.memory.close();
    return kept;
  }

  /**
   * Reads a departing client's segment: returns the slots whose counter is not 0, and adds its
   * use counts to `departed`. Read with pread rather than through the read-only mapping, where
   * the first load of each page the daemon never touched is a page fault (~0.7 ms for 64 Ki
   * slots, against ~15 us). Only the chunks its written-chunk map names, when it keeps one: one
   * pread per run of them. Else all (~25-40 us at 64 Ki slots); zero chunks, most of them, are
   * skipped by a native compare.
   */
  private readDeparting(fd: number): number[] {
    const words = 2 * this.slots;
    const held: number[] = [];
    const chunks = Math.ceil(words / CHUNK_WORDS);
    const map = this.writtenMap(fd, chunks);
    for (let chunk = 0; chunk < chunks;) {
      if (map !== undefined && !isWritten(map, chunk)) {
        chunk++;
        continue;
      }
      let end = chunk + 1;
      while (end < chunks && end - chunk < RUN_CHUNKS && (map === undefined || isWritten(map, end))) end++;
      const first = chunk * CHUNK_WORDS;
      const count = Math.min(end * CHUNK_WORDS, words) - first;
      // As large as the longest run read so far, at most RUN_CHUNKS.
      if (this.scratch === undefined || this.scratch.length < count * 4) this.scratch = Buffer.alloc(count * 4);
      const bytes = this.scratch;
      const length = readSync(fd, bytes, 0, count * 4, first * 4);
      this.scan(bytes, length >> 2, first, held);
      chunk = end;
    }
    return held;
  }

  /** The departing client's written-chunk map (a copy), or undefined: it keeps none. */
  private writtenMap(fd: number, chunks: number): Int32Array | undefined {
    const mapWords = writtenMapWords(this.slots);
    const bytes = Buffer.alloc(mapWords * 4);
    const length = readSync(fd, bytes, 0, bytes.length, 2 * this.slots * 4);
    if (length < bytes.length) return undefined;
    const map = new Int32Array(bytes.buffer, bytes.byteOffset, mapWords);
    return map[0] === WRITTEN_MAP_MAGIC && chunks <= (mapWords - 1) * 32 ? map.subarray(1) : undefined;
  }

  /** Scans `count` words read into `bytes`, word `first` of the segment first. */
  private scan(bytes: Buffer, count: number, first: number, held: number[]): void {
    const words = new Int32Array(bytes.buffer, bytes.byteOffset, count);
    const slots = this.slots;
    for (let start = 0; start < count; start += CHUNK_WORDS) {
      const end = Math.min(start + CHUNK_WORDS, count);
      if (ZEROS.compare(bytes, start * 4, end * 4, 0, (end - start) * 4) === 0) continue;
      for (let i = start; i < end; i++) {
        if (words[i] === 0) continue;
        const word = first + i;
        if (word < slots) held.push(word);
        else {
          const departed = (this.departed ??= new Int32Array(slots));
          departed[word - slots] = (departed[word - slots] + words[i]) | 0;
        }
      }
    }
  }

  /**
   * The slot's use counts summed over every client, connected or gone (wrapping at 32 bits): it
   * changes when a client counts a use at the slot, and only then.
   * Plain loads: a count read a little late is a use seen at the next look.
   */
  uses(slot: number): number {
    const all = this.allUses;
    let sum = this.departed === undefined ? 0 : this.departed[slot];
    for (let i = 0; i < all.length; i++) sum = (sum + all[i][slot]) | 0;
    return sum;
  }

  closeAll(): void {
    for (const holds of this.clients.values()) holds.memory.close();
    this.clients.clear();
    this.listClients();
  }

  private listClients(): void {
    this.all = [...this.clients.values()].map((client) => client.counters);
    this.allUses = [...this.clients.values()].map((client) => client.uses);
  }
}

/** Whether the map's bit for `chunk` is set. */
function isWritten(map: Int32Array, chunk: number): boolean {
  return (map[chunk >>> 5] & (1 << (chunk & 31))) !== 0;
}
