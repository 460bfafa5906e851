/**
 * The client's half of the read index (layout in protocol/read-index-layout.ts, why it is
 * correct in docs/read-index.md): a get of a small sealed Value or of a sealed blob of any size
 * by id, answered in this process with no round trip. The index is the daemon's read-only segment; a lookup finds the
 * object's slot. A Value's bytes (decoded anyway) are copied out, and the copy kept only if the
 * slot's seqlock did not move meanwhile. A blob's bytes are pinned instead (index-holds.ts: a
 * hold counter per slot that the daemon reads before it frees them) and handed out as a view of
 * shared memory, as a get through the daemon would; or copied when the caller asks for a copy.
 * Any doubt is a miss (undefined), and the caller asks the daemon as before: not in the index, a
 * slot being written, a segment this process was never sent, a slot changed under the read.
 */
import { TrellisError } from '../errors';
import {
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
  READ_INDEX_SEGMENT,
  S_KEY_HIGH,
  S_KEY_LOW,
  S_KIND,
  S_OFFSET,
  S_SEGMENT,
  S_SEQ,
  S_SIZE,
  S_STATE,
  READ_INDEX_HOLDS_SEGMENT,
  SLOT_EMPTY,
  SLOT_LIVE,
  SLOT_WORDS,
  firstSlot,
  indexKey,
  unpackIndexedObject,
  type IndexedObjectRecord,
} from '../protocol/read-index-layout';
import { holdCounterWords } from '../protocol/hold-counters-layout';
import { IndexHolds } from './index-holds';
import type { IpcChannel } from './ipc';
import type { SegmentMappings } from './mappings';

/** How an object's member blobs are viewed: plain Uint8Arrays or Buffers (ReadIndexReader.objectViews). */
export type MemberViews = 'plain' | 'buffer';

/**
 * What a hit gives: a blob's bytes (a private copy, or a pinned view of shared memory), or a
 * Value's msgpack bytes (a copy).
 */
export interface IndexedObject {
  /** 'list': a frozen ShareableList's blob, a pinned view as a blob's. */
  kind: 'blob' | 'value' | 'object' | 'list';
  bytes: Buffer;
  /**
   * kind 'object' (a DataFrame, a Tensor): its record, with a pinned view of each member blob by
   * id: Buffers, or, where objectViews asked for 'plain', plain Uint8Arrays typed as Buffers
   * where the segment's mapping allows (SegmentMappings.view's `plain`; read them as Uint8Arrays).
   */
  object?: IndexedObjectRecord;
  views?: Map<string, Buffer>;
  /** kind 'object': the member blobs this read took a new hold on (let go if it is not used). */
  taken?: string[];
}

/** Lookups that found nothing usable, by reason; for tests and the bench. */
export interface ReadIndexStats {
  hits: number;
  /** Of the hits: blobs handed out as pinned views of shared memory (no copy). */
  views: number;
  misses: number;
  /** The slot changed while it was read or copied. */
  raced: number;
  /** The object is in a segment this process has not been sent yet. */
  unmapped: number;
}

/**
 * The lock-free read relies on loads not passing each other: the copy's plain reads must be done
 * before the seq load that checks them. x86-64 orders loads so (TSO); elsewhere the index is not
 * used until a native fence backs it (docs/read-index.md).
 */
export const READ_INDEX_SUPPORTED = process.arch === 'x64';

export class ReadIndexReader {
  readonly stats: ReadIndexStats = { hits: 0, views: 0, misses: 0, raced: 0, unmapped: 0 };
  private readonly words: Int32Array;
  private readonly slots: number;
  /**
   * How a metadata object of this typename (KIND_OBJECT) from the index wants its member views
   * ('plain' Uint8Arrays for a resolver that only makes typed arrays over them, SegmentMappings.view;
   * else Buffers), or undefined when it cannot be resolved from the index (its resolver is not the
   * built-in one): then its members are not pinned and the get asks the daemon.
   */
  objectViews: (typename: string) => MemberViews | undefined = () => undefined;

  /**
   * `index`: a view of the whole index segment, mapped read-only. `isOpen`: false once the
   * connection is gone, when the index (of a daemon that may be gone too) must not answer.
   * `counters`: this client's hold counters (read-write) and how to tell the daemon of slots it
   * waits on; without them, blobs come only as copies. Errors: ProtocolError.
   */
  constructor(
    private readonly index: Buffer,
    private readonly mappings: SegmentMappings,
    private readonly isOpen: () => boolean = () => true,
    counters?: { words: Int32Array; tell: (slots: number[]) => void },
  ) {
    this.words = new Int32Array(index.buffer, index.byteOffset, Math.floor(index.byteLength / 4));
    if (Atomics.load(this.words, H_MAGIC) !== READ_INDEX_MAGIC || this.words[H_VERSION] !== READ_INDEX_LAYOUT_VERSION)
      throw new TrellisError('ProtocolError', 'the read index segment has no index of a layout this client reads');
    this.slots = this.words[H_SLOTS];
    if (HEADER_WORDS + this.slots * SLOT_WORDS > this.words.length)
      throw new TrellisError('ProtocolError', `the read index claims ${this.slots} slots, more than its segment holds`);
    if (counters && counters.words.length >= this.slots) {
      // The use counts follow the counters, and the written-chunk map the use counts, when the
      // daemon made room for them (hold-counters-layout.ts).
      const all = counters.words;
      const uses = all.length >= 2 * this.slots ? all.subarray(this.slots, 2 * this.slots) : undefined;
      const written =
        all.length >= holdCounterWords(this.slots)
          ? all.subarray(2 * this.slots, holdCounterWords(this.slots))
          : undefined;
      this.holds = new IndexHolds(all.subarray(0, this.slots), this.words, counters.tell, uses, written);
    }
  }

  /** This client's pinned views (undefined when the daemon gave it no counters). */
  readonly holds?: IndexHolds;

  /**
   * The object's bytes, or undefined: ask the daemon. A Value's are copied out. A blob's are a
   * pinned view of shared memory, as get hands blobs out, or with `copyBlobs` a private copy.
   * `blobsOnly` (getBlob): anything but a blob is a miss, and the daemon answers it (TypeMismatch).
   * `plainViews` (an object's members): a blob's view is a plain Uint8Array where it can be,
   * not a Buffer (SegmentMappings.view), though typed as one: only pinMembers asks for it.
   */
  read(id: string, copyBlobs: boolean, blobsOnly = false, plainViews = false): IndexedObject | undefined {
    const key = indexKey(id);
    if (key === undefined || !this.isOpen()) return undefined;
    const words = this.words;
    const { high, low } = key;
    const mask = this.slots - 1;
    const start = firstSlot(high, low, this.slots);
    for (let i = 0; i < MAX_PROBE; i++) {
      const base = HEADER_WORDS + ((start + i) & mask) * SLOT_WORDS;
      const seq = Atomics.load(words, base + S_SEQ);
      if (seq & 1) return this.raced();
      const state = Atomics.load(words, base + S_STATE);
      if (state === SLOT_EMPTY) break;
      if (state !== SLOT_LIVE || Atomics.load(words, base + S_KEY_HIGH) !== high) continue;
      if (Atomics.load(words, base + S_KEY_LOW) !== low) continue;
      const kind = Atomics.load(words, base + S_KIND);
      const segment = Atomics.load(words, base + S_SEGMENT);
      const offset = Atomics.load(words, base + S_OFFSET);
      const size = Atomics.load(words, base + S_SIZE);
      if (Atomics.load(words, base + S_SEQ) !== seq) return this.raced();
      // isBlobKind, written out: one call less on every lookup (see indexKey on V8's baseline queue).
      const blob = kind === KIND_BLOB || kind === KIND_LIST;
      if (blobsOnly && !blob) break;
      const slot = (start + i) & mask;
      if (blob && !copyBlobs) return this.pin(id, slot, base, seq, kind, segment, offset, size, plainViews);
      // A list's copy is no list (get with copy asks the daemon, as before).
      if (kind === KIND_LIST) break;
      const source = this.source(id, segment, offset, size);
      if (!source) return undefined;
      // Its own ArrayBuffer for a blob (get hands it out, .buffer and all); a value's bytes are
      // decoded and dropped, so the pool is fine. TypedArray set, not Buffer copy: the same memmove,
      // without the JS of Node's buffer.js, whose first run cost a fresh process's first get ~0.1 ms.
      const copy = kind === KIND_BLOB ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
      copy.set(source);
      if (Atomics.load(words, base + S_SEQ) !== seq) return this.raced();
      if (kind === KIND_OBJECT && !copyBlobs) return this.pinMembers(copy, base, seq);
      if (kind !== KIND_BLOB && kind !== KIND_VALUE) break;
      // A copy takes no hold, so there is no release to count its use at (the spill order).
      if (kind === KIND_BLOB) this.holds?.countUse(slot);
      this.stats.hits++;
      return { kind: kind === KIND_BLOB ? 'blob' : 'value', bytes: copy };
    }
    this.stats.misses++;
    return undefined;
  }

  /**
   * A view of a blob's bytes, pinned: a hold on the slot, then the slot checked again. The hold
   * is taken once per object; a get of an object this client already holds found it live just
   * now, which is all a get must check.
   */
  private pin(
    id: string,
    slot: number,
    base: number,
    seq: number,
    kind: number,
    segment: number,
    offset: number,
    size: number,
    plain: boolean,
  ): IndexedObject | undefined {
    const holds = this.holds;
    if (!holds) return undefined;
    // Mapping a segment is the daemon's to do (the get through it sends the fd).
    if (!this.mappings.has(segment)) {
      this.stats.unmapped++;
      return undefined;
    }
    if (!holds.holds(id)) {
      holds.add(slot);
      if (Atomics.load(this.words, base + S_SEQ) !== seq) {
        holds.undo(slot);
        return this.raced();
      }
      holds.keep(id, slot);
    }
    let bytes: Buffer;
    try {
      const location = { id, segment, offset, size };
      bytes = plain ? (this.mappings.view(location, true) as Buffer) : this.mappings.view(location);
    } catch {
      // Out of the segment's bounds: the daemon wrote no such entry. The hold goes with release(id).
      return this.raced();
    }
    this.stats.hits++;
    this.stats.views++;
    return { kind: kind === KIND_LIST ? 'list' : 'blob', bytes };
  }

  /**
   * A metadata object whose members are all blobs: each member pinned as a view (as a get of
   * the blob would), all or none: at the first member that misses, the holds this read took go
   * and the get asks the daemon. The object's slot is checked again once all are held, so the
   * object was live, its record true, while every member was held.
   */
  private pinMembers(record: Buffer, base: number, seq: number): IndexedObject | undefined {
    let object: IndexedObjectRecord;
    try {
      object = unpackIndexedObject(record);
    } catch {
      return this.raced();
    }
    if (typeof object?.typename !== 'string' || typeof object.members !== 'object' || object.members === null)
      return this.raced();
    const viewsAs = this.objectViews(object.typename);
    if (viewsAs === undefined || !this.holds) return this.missed();
    const plain = viewsAs === 'plain';
    const holds = this.holds;
    const views = new Map<string, Buffer>();
    const taken: string[] = [];
    const members = object.members;
    for (const key in members) {
      const id = members[key];
      const held = typeof id === 'string' && holds.holds(id);
      const hit = typeof id === 'string' ? this.read(id, false, true, plain) : undefined;
      if (!held && holds.holds(id)) taken.push(id);
      if (hit === undefined) return this.letGo(taken);
      views.set(id, hit.bytes);
    }
    if (Atomics.load(this.words, base + S_SEQ) !== seq) {
      this.letGo(taken);
      return this.raced();
    }
    this.stats.hits++;
    return { kind: 'object', bytes: record, object, views, taken };
  }

  /** A member missed: the holds this read took go (their views were never handed out). */
  private letGo(taken: string[]): undefined {
    if (taken.length > 0) this.holds?.releaseAndTell(taken);
    return undefined;
  }

  private missed(): undefined {
    this.stats.misses++;
    return undefined;
  }

  /** Where to copy from: the index's own arena, or a segment this process maps. */
  private source(id: string, segment: number, offset: number, size: number): Buffer | undefined {
    if (segment === READ_INDEX_SEGMENT) {
      if (offset < 0 || size < 0 || offset + size > this.index.byteLength) return this.raced();
      return this.index.subarray(offset, offset + size);
    }
    if (!this.mappings.has(segment)) {
      this.stats.unmapped++;
      return undefined;
    }
    try {
      return this.mappings.view({ id, segment, offset, size });
    } catch {
      // Out of the segment's bounds: only a torn read gives that, and the seq check would catch it.
      return this.raced();
    }
  }

  private raced(): undefined {
    this.stats.raced++;
    return undefined;
  }
}

/**
 * Asks the daemon for its index and maps it; undefined where there is none to use (not x86-64,
 * a daemon started without one). Errors: as any request (ConnectionClosed).
 */
export async function openReadIndex(channel: IpcChannel): Promise<ReadIndexReader | undefined> {
  if (!READ_INDEX_SUPPORTED) return undefined;
  let size: number;
  let holds: number | undefined;
  try {
    // `segments`: the pool's fds come with it, so a first get of a blob needs no request.
    ({ size, holds } = await channel.request('openReadIndex', { holds: true, segments: true }));
  } catch (error) {
    // A daemon of an earlier version does not know the request: gets go through it as before.
    if (error instanceof TrellisError && error.code !== 'ConnectionClosed') return undefined;
    throw error;
  }
  if (size === 0) return undefined;
  const index = channel.mappings.view({ id: 'read-index', segment: READ_INDEX_SEGMENT, offset: 0, size });
  const counters = holds === undefined ? undefined : holdCounters(channel, holds);
  return new ReadIndexReader(index, channel.mappings, () => !channel.closed, counters);
}

/** This client's hold counters, mapped read-write (pages faulted as they are first written). */
function holdCounters(channel: IpcChannel, size: number): { words: Int32Array; tell: (slots: number[]) => void } {
  const location = { id: 'read-index-holds', segment: READ_INDEX_HOLDS_SEGMENT, offset: 0, size };
  return {
    words: new Int32Array(channel.mappings.writable(location, false)),
    // A message of its own that nobody waits for: the daemon frees what waited on these slots.
    tell: (slots) => void channel.request('release', { ids: [], indexSlots: slots }).catch(() => {}),
  };
}
