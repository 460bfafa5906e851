/**
 * The daemon's half of the read index (layout in protocol/read-index-layout.ts, the argument
 * for its correctness in docs/read-index.md): small sealed Values and sealed blobs of any size
 * are published into a shared-memory hash table when sealed, and withdrawn before their bytes
 * can be freed (deleted, expired, spilled, recycled). Clients read it without a round trip: a Value's bytes they copy
 * out (and check that the slot did not change meanwhile); a blob's bytes they pin, with a hold
 * counter of their own per slot (index-holds.ts), and hand out as a view of shared memory. A
 * withdraw that finds a slot held keeps the slot as a tombstone (SLOT_WAITING) and the object's
 * memory pinned in the table until every counter for the slot is back at 0.
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
  KIND_LIST,
  KIND_OBJECT,
  KIND_VALUE,
  MAX_PROBE,
  READ_INDEX_LAYOUT_VERSION,
  READ_INDEX_MAGIC,
  READ_INDEX_MAX_BLOB_END,
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
  SLOT_WAITING,
  SLOT_WORDS,
  firstSlot,
  isBlobKind,
  indexKey,
  packIndexedObject,
  type IndexedObjectRecord,
} from '../protocol/read-index-layout';
import { IndexHolds } from './index-holds';
import type { StoredObject } from './object-table';

/** What the table does for a tombstone: keeps the object's memory until the slot is let go. */
export interface IndexPins {
  pin(object: StoredObject, slot: number): void;
  unpin(object: StoredObject, slot: number): void;
}

export const READ_INDEX_BLOB_TYPENAME = 'trellis::Blob';
export const READ_INDEX_VALUE_TYPENAME = 'trellis::Value';
/** A frozen ShareableList's blob: indexed as KIND_LIST, so that a client's get resolves it as a list. */
export const READ_INDEX_LIST_TYPENAME = 'trellis::ShareableList';
/**
 * Metadata objects indexed when every member is an indexed blob (KIND_OBJECT): the arrow types,
 * whose get is otherwise a request with a ~1 KB reply, and Tensors (`trellis::Tensor<dtype>`).
 * Others are not packed at every put.
 */
export const READ_INDEX_OBJECT_TYPENAMES: ReadonlySet<string> = new Set(['trellis::DataFrame', 'trellis::RecordBatch']);
const READ_INDEX_TENSOR_PREFIX = 'trellis::Tensor<';

/** Whether a metadata object of this typename is indexed as a record (KIND_OBJECT). */
export function isIndexedObjectTypename(typename: string): boolean {
  return READ_INDEX_OBJECT_TYPENAMES.has(typename) || typename.startsWith(READ_INDEX_TENSOR_PREFIX);
}

/** Defaults: 64 Ki slots (2 MiB) and an 8 MiB arena for small Values' bytes. */
export const DEFAULT_READ_INDEX_SLOTS = 1 << 16;
export const DEFAULT_READ_INDEX_ARENA_BYTES = 8 * 1024 * 1024;

/** A rebuild drops removed slots once live and removed ones fill this share of the table. */
const MAX_FILL = 0.75;
/**
 * ...and only once at least this share of the table is removed slots: a rebuild rewrites every
 * live slot, so a table full of live entries that rebuilt for each removed slot paid that at
 * every put after a delete (0.4 to 0.8 ms at 49 Ki live entries, against 7 us without: a
 * delete and a publish, measured on the table alone). Until then, new entries are refused (read
 * through the daemon); at most this share of the slots is lost to them.
 */
const REBUILD_SHARE = 1 / 16;

interface Entry {
  readonly object: StoredObject;
  slot: number;
  high: number;
  low: number;
  kind: number;
  segment: number;
  offset: number;
  size: number;
  /**
   * A blob's: its slot's use counts as last seen (usedSince), and whether it was used in a way
   * those counts no longer show: at its slot before a rebuild moved it, through a tombstone of it,
   * or by a client that kept it until it disconnected (dropClient).
   */
  usesSeen: number;
  usedUnseen: boolean;
}

/**
 * A slot in SLOT_WAITING: the object whose bytes its holders view, and the slot's use counts
 * when it became the tombstone. Releases through it count there (a client's hold stays on the
 * slot it took), so when it ends, counts that moved are uses of its object.
 */
interface Tombstone {
  readonly object: StoredObject;
  readonly usesSeen: number;
}

export interface ReadIndexCounts {
  slots: number;
  live: number;
  removed: number;
  /** Objects that could have been indexed but were not (no slot within MAX_PROBE, arena full). */
  refused: number;
  arenaUsed: number;
  /** Removed slots whose bytes some client still holds a view of (their memory waits). */
  waiting: number;
}

export class ReadIndex {
  private readonly memory: NativeSegment;
  private readonly words: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly arena: NativeAllocator;
  private readonly arenaOffset: number;
  private readonly entries = new Map<string, Entry>();
  /** The same entries by slot, to tell what a departing client held (dropClient). */
  private readonly bySlot = new Map<number, Entry>();
  /** Slots in SLOT_WAITING: what their object was, until no client holds them. */
  private readonly tombstones = new Map<number, Tombstone>();
  /**
   * Blobs used (through a tombstone of theirs, or kept by a client until it went) while out of
   * the index, not deleted: a tombstone's object, until it is published again or asked about.
   */
  private readonly usedOutside = new Set<string>();
  private readonly holds: IndexHolds;
  private pins?: IndexPins;
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
    this.holds = new IndexHolds(slots, shmDir);
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
      waiting: this.tombstones.size,
    };
  }

  /** The table, which keeps a tombstone's object in memory (set once, when the table is made). */
  usePins(pins: IndexPins): void {
    this.pins = pins;
  }

  /** A client's hold counters (index-holds.ts), made at its first ask. Errors: OutOfMemory. */
  openHolds(clientId: number): { fd: number; size: number; segment: number } {
    return this.holds.open(clientId);
  }

  /** Bytes of a client's hold counters (and use counts), as granted. */
  get holdsBytes(): number {
    return this.holds.bytes;
  }

  /**
   * Whether a client let go of a hold on the blob since the last ask (or since it was indexed):
   * it was got from the index, with no request the daemon could count, so the spill order counts
   * it as used now. Its slot's use counts summed over the clients, against the sum seen before.
   */
  usedSince(id: string): boolean {
    // One that never got back into the index (no slot was free for it).
    const outside = this.usedOutside.size > 0 && this.usedOutside.delete(id);
    const entry = this.entries.get(id);
    if (entry === undefined || !isBlobKind(entry.kind)) return outside;
    const uses = this.holds.uses(entry.slot);
    const used = entry.usedUnseen || uses !== entry.usesSeen;
    entry.usesSeen = uses;
    entry.usedUnseen = false;
    return used || outside;
  }

  /** Whether a client holds a view of the object through the index now (spill passes it by). */
  isHeld(id: string): boolean {
    const entry = this.entries.get(id);
    return entry !== undefined && isBlobKind(entry.kind) && this.holds.held(entry.slot);
  }

  /**
   * Clients dropped their holds on these slots and saw them waiting (release's indexSlots): the
   * ones no client holds any more are freed. Anything else in the list is ignored.
   */
  holdsDropped(slots: readonly number[]): void {
    for (const slot of slots) if (this.tombstones.has(slot)) this.letGo(slot);
  }

  /** Frees every tombstone no client holds any more (before OutOfMemory); true if one was. */
  sweep(): boolean {
    let freed = false;
    for (const slot of [...this.tombstones.keys()]) freed = this.letGo(slot) || freed;
    return freed;
  }

  /**
   * A client went away: its counters no longer count, and frees that waited on them alone are
   * done. Every tombstone is looked at again, not only those its counters held at the end: a
   * client killed between a release's decrement and its message (or one that zeroed its counters
   * without a word) dropped holds that nothing else would tell of before OutOfMemory.
   */
  dropClient(clientId: number): void {
    // What it held to the end it used, with no request and no release to count it at: the spill
    // order counts it now, before the sweep ends the tombstones it held.
    for (const slot of this.holds.close(clientId)) {
      const object = this.bySlot.get(slot)?.object ?? this.tombstones.get(slot)?.object;
      if (object) this.markUsed(object);
    }
    this.sweep();
  }

  /** A use of a blob that its slot's counts do not show (now, or once it is back in the index). */
  private markUsed(object: StoredObject): void {
    const entry = this.entries.get(object.id);
    if (entry) entry.usedUnseen = true;
    else if (!object.deleted) this.usedOutside.add(object.id);
  }

  /** Publishes a sealed object if it is one clients may read from the index; else nothing. */
  publish(object: StoredObject): void {
    if (!object.sealed || object.deleted || this.entries.has(object.id)) return;
    if (object.blob) {
      const kind =
        object.typename === READ_INDEX_BLOB_TYPENAME
          ? KIND_BLOB
          : object.typename === READ_INDEX_LIST_TYPENAME
            ? KIND_LIST
            : 0;
      if (kind === 0 || !object.placement) return;
      const { segment, offset } = object.placement;
      // Any size: a client pins the bytes and views them, it never copies them for a get.
      if (offset + object.nbytes > READ_INDEX_MAX_BLOB_END) return;
      this.insert(object, kind, segment, offset, object.nbytes);
      return;
    }
    if (isIndexedObjectTypename(object.typename)) {
      this.publishObject(object);
      return;
    }
    const data = object.fields.data;
    if (object.typename !== READ_INDEX_VALUE_TYPENAME || !(data instanceof Uint8Array)) return;
    if (data.byteLength > READ_INDEX_MAX_BYTES || Object.keys(object.members).length > 0) return;
    this.insertInArena(object, KIND_VALUE, data);
  }

  /**
   * A metadata object whose members are all blobs in the index now (sealed before it, so
   * published first): its record goes in the arena, as a Value's bytes. A member withdrawn later
   * (spilled, force-deleted) makes a client's get of the object miss and ask the daemon.
   */
  private publishObject(object: StoredObject): void {
    const members = object.members;
    for (const key in members) if (this.entries.get(members[key])?.kind !== KIND_BLOB) return;
    const record: IndexedObjectRecord = {
      typename: object.typename,
      nbytes: object.nbytes,
      fields: object.fields,
      members,
    };
    let data: Uint8Array;
    try {
      data = packIndexedObject(record);
    } catch {
      return;
    }
    if (data.byteLength <= READ_INDEX_MAX_BYTES) this.insertInArena(object, KIND_OBJECT, data);
  }

  /** A Value's or an object record's bytes into the arena, and a slot naming them. */
  private insertInArena(object: StoredObject, kind: number, data: Uint8Array): void {
    const offset = this.arena.allocate(data.byteLength);
    if (offset < 0) {
      this.refused++;
      return;
    }
    this.bytes.set(data, this.arenaOffset + offset);
    if (!this.insert(object, kind, READ_INDEX_SEGMENT, this.arenaOffset + offset, data.byteLength))
      this.arena.free(offset);
  }

  /**
   * Takes an object out of the index. Must be called before its bytes are freed or moved: once
   * this returns, no client's copy of them can pass its check, and a client that pinned them is
   * known: the object is then pinned in the table (IndexPins) until it lets go (docs/read-index.md).
   */
  withdraw(id: string): void {
    // Deleted or leaving memory: a use not yet asked about no longer matters (unless a client
    // holds it now, below).
    if (this.usedOutside.size > 0) this.usedOutside.delete(id);
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.bySlot.delete(entry.slot);
    if (isBlobKind(entry.kind)) {
      this.vacate(entry);
      return;
    }
    // A Value's or object record's bytes are only ever copied out: nothing can hold them.
    this.writeSlot(entry.slot, SLOT_REMOVED, entry.high, entry.low, 0, 0, 0, 0);
    this.removed++;
    this.arena.free(entry.offset - this.arenaOffset);
  }

  close(): void {
    this.holds.closeAll();
    this.memory.close();
  }

  /**
   * Rewrites a blob's slot as waiting, then reads every client's counter for it: a client's
   * Atomics.add before its re-check either shows here, or its re-check sees the rewrite (both
   * sides seq_cst); a client that drops a hold after this sees SLOT_WAITING and tells. Held: the
   * slot stays a tombstone and its object pinned. Else: plain removed, free to reuse.
   */
  private vacate(entry: Entry): void {
    this.writeSlot(entry.slot, SLOT_WAITING, entry.high, entry.low, 0, 0, 0, 0);
    if (this.holds.held(entry.slot)) {
      this.entomb(entry);
      return;
    }
    this.writeSlot(entry.slot, SLOT_REMOVED, entry.high, entry.low, 0, 0, 0, 0);
    this.removed++;
  }

  /**
   * The entry's slot, just written as waiting and found held, stays its object's tombstone. Uses
   * at the slot not yet seen go with the object (its entry, if it is put back elsewhere); from
   * here, counts at the slot are uses through the tombstone, told when it ends (letGo).
   */
  private entomb(entry: Entry): void {
    const uses = this.holds.uses(entry.slot);
    if (entry.usedUnseen || uses !== entry.usesSeen) this.markUsed(entry.object);
    this.tombstones.set(entry.slot, { object: entry.object, usesSeen: uses });
    this.pins?.pin(entry.object, entry.slot);
  }

  /** Ends a tombstone no client holds any more: the slot is reusable, its object's memory freed. */
  private letGo(slot: number): boolean {
    const tombstone = this.tombstones.get(slot);
    if (!tombstone || this.holds.held(slot)) return false;
    const object = tombstone.object;
    this.tombstones.delete(slot);
    // Releases through it: a client counts a use before it drops the hold, so all are here now.
    if (this.holds.uses(slot) !== tombstone.usesSeen) this.markUsed(object);
    this.writeSlot(slot, SLOT_REMOVED, 0, 0, 0, 0, 0, 0);
    this.removed++;
    this.pins?.unpin(object, slot);
    // Withdrawn while it stayed (a spill or rebuild that found it held): back in the index.
    if (!object.deleted && object.placement) this.publish(object);
    return true;
  }

  private insert(object: StoredObject, kind: number, segment: number, offset: number, size: number): boolean {
    const limit = this.slots * MAX_FILL;
    if (this.filledAfterOneMore > limit && this.removed >= Math.max(1, this.slots * REBUILD_SHARE)) this.rebuild();
    // Ids the daemon made are object ids, so they all have a key.
    const { high, low } = indexKey(object.id)!;
    const slot = this.filledAfterOneMore > limit ? -1 : this.freeSlot(high, low);
    if (slot < 0) {
      this.refused++;
      return false;
    }
    if (this.stateOf(slot) === SLOT_REMOVED) this.removed--;
    this.writeSlot(slot, SLOT_LIVE, high, low, kind, segment, offset, size);
    // The slot's counts so far are those of objects it held before; uses while it was out count.
    const usesSeen = isBlobKind(kind) ? this.holds.uses(slot) : 0;
    const usedUnseen = this.usedOutside.size > 0 && this.usedOutside.delete(object.id);
    const entry = { object, slot, high, low, kind, segment, offset, size, usesSeen, usedUnseen };
    this.entries.set(object.id, entry);
    this.bySlot.set(slot, entry);
    return true;
  }

  /** Slots in use (live, removed, waiting) once one more is taken. */
  private get filledAfterOneMore(): number {
    return this.entries.size + this.removed + this.tombstones.size + 1;
  }

  /** The first empty or removed slot on the key's probe path, or -1 (tombstones are not free). */
  private freeSlot(high: number, low: number): number {
    const mask = this.slots - 1;
    const start = firstSlot(high, low, this.slots);
    for (let i = 0; i < MAX_PROBE && i < this.slots; i++) {
      const slot = (start + i) & mask;
      const state = this.stateOf(slot);
      if (state === SLOT_EMPTY || state === SLOT_REMOVED) return slot;
    }
    return -1;
  }

  /**
   * Empties the table and puts the live entries back, so removed slots stop lengthening probes.
   * A reader that probes meanwhile may miss (and asks the daemon); it never finds a wrong entry,
   * since every slot write is a whole seqlock write of a true entry or of none. Tombstones stay
   * where they are (the counters are per slot), and so does a live blob's slot a client holds:
   * it becomes a tombstone of its object, which is put back elsewhere as well.
   */
  private rebuild(): void {
    for (const entry of this.entries.values()) {
      if (isBlobKind(entry.kind)) {
        this.writeSlot(entry.slot, SLOT_WAITING, entry.high, entry.low, 0, 0, 0, 0);
        if (this.holds.held(entry.slot)) {
          this.entomb(entry);
          continue;
        }
        // A use at the old slot not seen yet is kept; the counts start over at the new one.
        entry.usedUnseen ||= this.holds.uses(entry.slot) !== entry.usesSeen;
      }
      this.writeSlot(entry.slot, SLOT_EMPTY, 0, 0, 0, 0, 0, 0);
    }
    for (let slot = 0; slot < this.slots; slot++)
      if (this.stateOf(slot) === SLOT_REMOVED) this.writeSlot(slot, SLOT_EMPTY, 0, 0, 0, 0, 0, 0);
    this.removed = 0;
    this.bySlot.clear();
    for (const [id, entry] of this.entries) {
      const slot = this.freeSlot(entry.high, entry.low);
      if (slot < 0) {
        this.entries.delete(id);
        if (!isBlobKind(entry.kind)) this.arena.free(entry.offset - this.arenaOffset);
        else if (entry.usedUnseen) this.usedOutside.add(id);
        this.refused++;
        continue;
      }
      if (isBlobKind(entry.kind)) entry.usesSeen = this.holds.uses(slot);
      entry.slot = slot;
      this.bySlot.set(slot, entry);
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
