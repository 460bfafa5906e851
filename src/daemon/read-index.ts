/**
 * The daemon's half of the read index (layout in protocol/read-index-layout.ts, the argument
 * for its correctness in docs/read-index.md): small sealed objects are published into a
 * shared-memory hash table when sealed, and withdrawn before their bytes can be freed (deleted,
 * expired, spilled). Clients read it without a round trip and copy the bytes out, then check
 * that the slot did not change while they copied; so the daemon never has to wait for readers,
 * and holds no reference for them.
 *
 * Only the daemon writes the table, and only on its one thread: every slot write is a seqlock
 * write (seq to odd, fields, seq to the next even), each word stored with Atomics.
 */
import { TrellisError } from '../errors';
import { native, type NativeAllocator, type NativeSegment } from '../native';
import { daemonLog } from './log';
import {
  H_ARENA_BYTES,
  H_ARENA_OFFSET,
  H_MAGIC,
  H_SLOTS,
  H_VERSION,
  HEADER_WORDS,
  KIND_BLOB,
  KIND_VALUE,
  MAX_PROBE,
  READ_INDEX_LAYOUT_VERSION,
  READ_INDEX_MAGIC,
  READ_INDEX_MAX_BYTES,
  READ_INDEX_SEGMENT,
  S_KEY_HIGH,
  S_KEY_LOW,
  S_KIND,
  S_OFFSET,
  S_SEGMENT,
  S_SEQ,
  S_SIZE,
  S_STATE,
  SLOT_EMPTY,
  SLOT_LIVE,
  SLOT_REMOVED,
  SLOT_WORDS,
  firstSlot,
  keyHigh,
  keyLow,
} from '../protocol/read-index-layout';
import type { StoredObject } from './object-table';

export const READ_INDEX_BLOB_TYPENAME = 'trellis::Blob';
export const READ_INDEX_VALUE_TYPENAME = 'trellis::Value';

/** Defaults: 64 Ki slots (2 MiB) and an 8 MiB arena for small Values' bytes. */
export const DEFAULT_READ_INDEX_SLOTS = 1 << 16;
export const DEFAULT_READ_INDEX_ARENA_BYTES = 8 * 1024 * 1024;

/** A rebuild drops removed slots once live and removed ones fill this share of the table. */
const MAX_FILL = 0.75;

interface Entry {
  slot: number;
  high: number;
  low: number;
  kind: number;
  segment: number;
  offset: number;
  size: number;
}

export interface ReadIndexCounts {
  slots: number;
  live: number;
  removed: number;
  /** Objects that could have been indexed but were not (no slot within MAX_PROBE, arena full). */
  refused: number;
  arenaUsed: number;
}

export class ReadIndex {
  private readonly memory: NativeSegment;
  private readonly words: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly arena: NativeAllocator;
  private readonly arenaOffset: number;
  private readonly entries = new Map<string, Entry>();
  private removed = 0;
  private refused = 0;

  /** `slots`: a power of two. `shmDir`: where segments are made ('' for a memfd), as the pool's. */
  constructor(
    readonly slots: number = DEFAULT_READ_INDEX_SLOTS,
    arenaBytes: number = DEFAULT_READ_INDEX_ARENA_BYTES,
    shmDir = '',
  ) {
    if (!Number.isInteger(Math.log2(slots)) || slots < 2)
      throw new RangeError(`slots must be a power of two: ${slots}`);
    this.arenaOffset = Math.ceil(((HEADER_WORDS + slots * SLOT_WORDS) * 4) / 64) * 64;
    const size = this.arenaOffset + arenaBytes;
    this.memory = new native.Segment(size, 'trellis-read-index', shmDir);
    // The daemon maps no segment of the pool; this one it writes, so it maps it (read-write).
    const buffer = new native.Mapping(this.memory.fd, size, true).slice(0, size);
    this.words = new Int32Array(buffer);
    this.bytes = new Uint8Array(buffer);
    this.arena = new native.Allocator(arenaBytes);
    this.words[H_VERSION] = READ_INDEX_LAYOUT_VERSION;
    this.words[H_SLOTS] = slots;
    this.words[H_ARENA_OFFSET] = this.arenaOffset;
    this.words[H_ARENA_BYTES] = arenaBytes;
    // The magic last: a client that sees it sees the rest.
    Atomics.store(this.words, H_MAGIC, READ_INDEX_MAGIC);
  }

  /** What a client needs to map it (granted as segment READ_INDEX_SEGMENT). */
  get segment(): { fd: number; size: number } {
    return { fd: this.memory.fd, size: this.memory.size };
  }

  get counts(): ReadIndexCounts {
    return {
      slots: this.slots,
      live: this.entries.size,
      removed: this.removed,
      refused: this.refused,
      arenaUsed: this.arena.used,
    };
  }

  /** Publishes a sealed object if it is one clients may read from the index; else nothing. */
  publish(object: StoredObject): void {
    if (!object.sealed || object.deleted || this.entries.has(object.id)) return;
    if (object.blob) {
      if (object.typename !== READ_INDEX_BLOB_TYPENAME || !object.placement) return;
      if (object.nbytes > READ_INDEX_MAX_BYTES) return;
      const { segment, offset } = object.placement;
      this.insert(object.id, KIND_BLOB, segment, offset, object.nbytes);
      return;
    }
    const data = object.fields.data;
    if (object.typename !== READ_INDEX_VALUE_TYPENAME || !(data instanceof Uint8Array)) return;
    if (data.byteLength > READ_INDEX_MAX_BYTES || Object.keys(object.members).length > 0) return;
    const offset = this.arena.allocate(data.byteLength);
    if (offset < 0) {
      this.refused++;
      return;
    }
    this.bytes.set(data, this.arenaOffset + offset);
    if (!this.insert(object.id, KIND_VALUE, READ_INDEX_SEGMENT, this.arenaOffset + offset, data.byteLength))
      this.arena.free(offset);
  }

  /**
   * Takes an object out of the index. Must be called before its bytes are freed or moved: once
   * this returns, no client's copy of them can pass its check (docs/read-index.md).
   */
  withdraw(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.writeSlot(entry.slot, SLOT_REMOVED, entry.high, entry.low, 0, 0, 0, 0);
    this.removed++;
    if (entry.kind === KIND_VALUE) this.arena.free(entry.offset - this.arenaOffset);
  }

  close(): void {
    this.memory.close();
  }

  private insert(id: string, kind: number, segment: number, offset: number, size: number): boolean {
    const limit = this.slots * MAX_FILL;
    if (this.entries.size + this.removed + 1 > limit && this.removed > 0) this.rebuild();
    const high = keyHigh(id);
    const low = keyLow(id);
    const slot = this.entries.size + this.removed + 1 > limit ? -1 : this.freeSlot(high, low);
    if (slot < 0) {
      this.refused++;
      return false;
    }
    if (this.stateOf(slot) === SLOT_REMOVED) this.removed--;
    this.writeSlot(slot, SLOT_LIVE, high, low, kind, segment, offset, size);
    this.entries.set(id, { slot, high, low, kind, segment, offset, size });
    return true;
  }

  /** The first empty or removed slot on the key's probe path, or -1. */
  private freeSlot(high: number, low: number): number {
    const mask = this.slots - 1;
    const start = firstSlot(high, low, this.slots);
    for (let i = 0; i < MAX_PROBE && i < this.slots; i++) {
      const slot = (start + i) & mask;
      if (this.stateOf(slot) !== SLOT_LIVE) return slot;
    }
    return -1;
  }

  /**
   * Empties the table and puts the live entries back, so removed slots stop lengthening probes.
   * A reader that probes meanwhile may miss (and asks the daemon); it never finds a wrong entry,
   * since every slot write is a whole seqlock write of a true entry or of none.
   */
  private rebuild(): void {
    for (let slot = 0; slot < this.slots; slot++)
      if (this.stateOf(slot) !== SLOT_EMPTY) this.writeSlot(slot, SLOT_EMPTY, 0, 0, 0, 0, 0, 0);
    this.removed = 0;
    for (const [id, entry] of this.entries) {
      const slot = this.freeSlot(entry.high, entry.low);
      if (slot < 0) {
        this.entries.delete(id);
        if (entry.kind === KIND_VALUE) this.arena.free(entry.offset - this.arenaOffset);
        this.refused++;
        continue;
      }
      entry.slot = slot;
      this.writeSlot(slot, SLOT_LIVE, entry.high, entry.low, entry.kind, entry.segment, entry.offset, entry.size);
    }
  }

  private stateOf(slot: number): number {
    return this.words[HEADER_WORDS + slot * SLOT_WORDS + S_STATE];
  }

  private writeSlot(
    slot: number,
    state: number,
    high: number,
    low: number,
    kind: number,
    segment: number,
    offset: number,
    size: number,
  ): void {
    const words = this.words;
    const base = HEADER_WORDS + slot * SLOT_WORDS;
    const seq = words[base + S_SEQ];
    Atomics.store(words, base + S_SEQ, (seq + 1) | 0);
    Atomics.store(words, base + S_KEY_HIGH, high);
    Atomics.store(words, base + S_KEY_LOW, low);
    Atomics.store(words, base + S_STATE, state);
    Atomics.store(words, base + S_KIND, kind);
    Atomics.store(words, base + S_SEGMENT, segment);
    Atomics.store(words, base + S_OFFSET, offset);
    Atomics.store(words, base + S_SIZE, size);
    Atomics.store(words, base + S_SEQ, (seq + 2) | 0);
  }
}

/**
 * The daemon's index, or undefined with `slots` 0, or when its memory cannot be had: a daemon on a
 * full tmpfs still starts (and answers OutOfMemory), and gets then all go through it, as before.
 */
export function openReadIndex(slots: number, shmDir: string): ReadIndex | undefined {
  if (slots === 0) return undefined;
  try {
    return new ReadIndex(slots, DEFAULT_READ_INDEX_ARENA_BYTES, shmDir);
  } catch (error) {
    if (!(error instanceof TrellisError)) throw error;
    daemonLog().warn(`no read index: ${error.message}; every get asks the daemon`);
    return undefined;
  }
}
