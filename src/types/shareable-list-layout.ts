/**
 * The bytes of a trellis::ShareableList: one blob, laid out so that any process (or another
 * language) can read an item with two fixed-offset loads and no parsing of what comes before it.
 *
 * All integers are little-endian. Offsets count from the start of the blob, which the store
 * aligns to 64 bytes, so every 8-aligned offset below is 8-aligned in memory too.
 *
 *   Header, 16 bytes
 *     0  u32  magic      0x4c535254, the bytes "TRSL"
 *     4  u16  version    1; a reader refuses versions it does not know
 *     6  u16  reserved   0
 *     8  u32  count      number of slots (items)
 *    12  u32  reserved   0
 *
 *   Slot table, `count` slots of 16 bytes, slot i at 16 + 16 * i
 *     0  u8   tag        what the slot holds now: 0 null, 1 false, 2 true, 3 int64,
 *                        4 float64, 5 UTF-8 string, 6 bytes
 *     1  u8   flags      bit 0 (FLAG_ASCII): a string whose bytes are all below 0x80. A hint
 *                        for faster decoding; writers may leave it 0, readers may ignore it
 *     2  u16  reserved   0
 *     4  u32  length     payload bytes in use: the byte length of a string or bytes, 8 for
 *                        int64 and float64, 0 for null, false and true
 *     8  u32  offset     where the payload starts; a multiple of 8
 *    12  u32  capacity   payload bytes reserved for this slot; a multiple of 8, fixed at creation
 *
 *   Payloads, each slot's `capacity` bytes at its `offset`, in slot order. int64 is two's
 *   complement, float64 is IEEE 754, strings are UTF-8, bytes are as given. Bytes past `length`
 *   are unspecified.
 *
 * Reserved fields are written as 0 and ignored by readers of version 1; a change that readers
 * must not ignore gets a new version. The whole blob is under 4 GiB, so u32 offsets suffice (a
 * segment is smaller than that anyway). A frozen list is a sealed blob: it never changes, which
 * is what makes caching decoded items safe.
 */
import { TrellisError } from '../errors';
import { decodeAscii, decodeUtf8, viewOf } from './shareable-list-text';

export const SHAREABLE_LIST_TYPENAME = 'trellis::ShareableList';

export const LIST_MAGIC = 0x4c535254;
export const LAYOUT_VERSION = 1;
export const HEADER_BYTES = 16;
export const SLOT_BYTES = 16;
export const PAYLOAD_ALIGNMENT = 8;
/** Every offset and capacity must fit a u32. */
export const MAX_LIST_BYTES = 2 ** 32 - PAYLOAD_ALIGNMENT;
/** What a number, a boolean or null reserves, so that any of them can later hold a number. */
export const SCALAR_CAPACITY = 8;

export const TAG_NULL = 0;
export const TAG_FALSE = 1;
export const TAG_TRUE = 2;
export const TAG_INT64 = 3;
export const TAG_FLOAT64 = 4;
export const TAG_UTF8 = 5;
export const TAG_BYTES = 6;

export const FLAG_ASCII = 1;

// Field offsets inside the header and inside a slot.
const MAGIC_AT = 0;
const VERSION_AT = 4;
const COUNT_AT = 8;
const TAG_AT = 0;
const FLAGS_AT = 1;
const LENGTH_AT = 4;
const OFFSET_AT = 8;
const CAPACITY_AT = 12;

const TWO_POW_32 = 2 ** 32;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export type ShareableItem = Buffer | Uint8Array | string | number | bigint | boolean | null;

/** An item ready to be written: its tag, flags and payload length. */
export interface EncodedItem {
  tag: number;
  flags: number;
  length: number;
  value: ShareableItem;
}

/** The encoding of `value`, or a sentence saying why it cannot be a list item. */
export function encodeItem(value: unknown): EncodedItem | string {
  switch (typeof value) {
    case 'string': {
      const length = Buffer.byteLength(value, 'utf8');
      // UTF-8 takes one byte per UTF-16 unit only when every unit is ASCII.
      return { tag: TAG_UTF8, flags: length === value.length ? FLAG_ASCII : 0, length, value };
    }
    case 'number':
      // -0 is an integer to Number.isSafeInteger but an int64 would lose its sign.
      if (Number.isSafeInteger(value) && !Object.is(value, -0)) return { tag: TAG_INT64, flags: 0, length: 8, value };
      return { tag: TAG_FLOAT64, flags: 0, length: 8, value };
    case 'bigint':
      if (value < INT64_MIN || value > INT64_MAX) return `bigint ${value} is outside the int64 range`;
      return { tag: TAG_INT64, flags: 0, length: 8, value };
    case 'boolean':
      return { tag: value ? TAG_TRUE : TAG_FALSE, flags: 0, length: 0, value };
    case 'object':
      if (value === null) return { tag: TAG_NULL, flags: 0, length: 0, value };
      if (value instanceof Uint8Array) return { tag: TAG_BYTES, flags: 0, length: value.byteLength, value };
      return `unsupported type object (${value.constructor?.name ?? 'null prototype'})`;
    default:
      return `unsupported type ${typeof value}`;
  }
}

/** The capacity a slot gets at creation: the item's size, at least `reserved`, rounded to 8. */
export function initialCapacity(item: EncodedItem, reserved: number): number {
  const natural = item.tag === TAG_UTF8 || item.tag === TAG_BYTES ? item.length : SCALAR_CAPACITY;
  return roundUp(Math.max(natural, reserved), PAYLOAD_ALIGNMENT);
}

/** Bytes the whole list takes, for slots of these capacities. */
export function listBytes(capacities: readonly number[]): number {
  let size = slotAt(capacities.length);
  for (const capacity of capacities) size += capacity;
  return size;
}

function slotAt(index: number): number {
  return HEADER_BYTES + index * SLOT_BYTES;
}

/**
 * One list's bytes, read and written by slot index. The hot path lives in this class's methods
 * rather than in exported functions: a method call stays cheap however the module is compiled
 * (esbuild's CommonJS output turns every exported-function call into a getter call).
 */
export class ListBytes {
  private readonly view: DataView;
  /** The memory under `bytes`, kept so that viewing a payload skips the Buffer's getter. */
  private readonly memory: ArrayBufferLike;

  private constructor(
    readonly bytes: Buffer,
    readonly id: string,
    readonly count: number,
    /** A sealed blob never changes: its bytes are viewed, not copied. */
    readonly sealed: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.memory = bytes.buffer;
  }

  /** Lays out an empty list of `capacities.length` slots (all null) in zeroed `bytes`. */
  static format(bytes: Buffer, id: string, capacities: readonly number[]): ListBytes {
    const list = new ListBytes(bytes, id, capacities.length, false);
    const view = list.view;
    view.setUint32(MAGIC_AT, LIST_MAGIC, true);
    view.setUint16(VERSION_AT, LAYOUT_VERSION, true);
    view.setUint32(COUNT_AT, capacities.length, true);
    let offset = slotAt(capacities.length);
    for (let i = 0; i < capacities.length; i++) {
      view.setUint32(slotAt(i) + OFFSET_AT, offset, true);
      view.setUint32(slotAt(i) + CAPACITY_AT, capacities[i], true);
      offset += capacities[i];
    }
    return list;
  }

  /** The list in the sealed blob `bytes`, after checking magic, version and count. Errors: TypeMismatch. */
  static open(bytes: Buffer, id: string): ListBytes {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < HEADER_BYTES || view.getUint32(MAGIC_AT, true) !== LIST_MAGIC) {
      throw corrupt(
        `object ${id} is not a ShareableList: its ${bytes.length} bytes do not start with the TRSL magic number`,
      );
    }
    const version = view.getUint16(VERSION_AT, true);
    if (version !== LAYOUT_VERSION) {
      throw corrupt(`ShareableList ${id} has layout version ${version}; this trellis reads version ${LAYOUT_VERSION}`);
    }
    const count = view.getUint32(COUNT_AT, true);
    if (slotAt(count) > bytes.length) {
      throw corrupt(`ShareableList ${id} claims ${count} slots, more than its ${bytes.length} bytes can hold`);
    }
    return new ListBytes(bytes, id, count, true);
  }

  capacityAt(index: number): number {
    return this.view.getUint32(slotAt(index) + CAPACITY_AT, true);
  }

  /** Writes an item into a slot; the caller has checked that it fits. */
  writeAt(index: number, item: EncodedItem): void {
    const { bytes, view } = this;
    const at = slotAt(index);
    const offset = view.getUint32(at + OFFSET_AT, true);
    const { value } = item;
    if (item.tag === TAG_UTF8)
      bytes.write(value as string, offset, item.length, item.flags & FLAG_ASCII ? 'latin1' : 'utf8');
    else if (item.tag === TAG_BYTES) bytes.set(value as Uint8Array, offset);
    else if (item.tag === TAG_FLOAT64) view.setFloat64(offset, value as number, true);
    else if (item.tag === TAG_INT64 && typeof value === 'bigint') view.setBigInt64(offset, value, true);
    else if (item.tag === TAG_INT64) {
      // Two halves instead of BigInt(value): exact for safe integers, and no allocation.
      const high = Math.floor((value as number) / TWO_POW_32);
      view.setUint32(offset, (value as number) - high * TWO_POW_32, true);
      view.setInt32(offset + 4, high, true);
    }
    view.setUint8(at + TAG_AT, item.tag);
    view.setUint8(at + FLAGS_AT, item.flags);
    view.setUint32(at + LENGTH_AT, item.length, true);
  }

  /**
   * The item in a slot. Bytes come back as a view of the blob when it is sealed, else as a copy.
   * A slot is checked as it is read, not all at open, so that opening stays one round trip.
   * Errors: TypeMismatch (a corrupt slot).
   */
  itemAt(index: number): ShareableItem {
    const { bytes, view } = this;
    const at = slotAt(index);
    const tag = view.getUint8(at + TAG_AT);
    if (tag === TAG_NULL) return null;
    if (tag === TAG_FALSE || tag === TAG_TRUE) return tag === TAG_TRUE;
    const offset = view.getUint32(at + OFFSET_AT, true);
    const isNumber = tag === TAG_INT64 || tag === TAG_FLOAT64;
    const end = offset + (isNumber ? 8 : view.getUint32(at + LENGTH_AT, true));
    if (end > bytes.length)
      throw corrupt(
        `ShareableList ${this.id}: slot ${index} ends at byte ${end}, past the end of the ${bytes.length}-byte list`,
      );
    switch (tag) {
      case TAG_FLOAT64:
        return view.getFloat64(offset, true);
      case TAG_INT64:
        return this.int64At(offset);
      case TAG_UTF8:
        if ((view.getUint8(at + FLAGS_AT) & FLAG_ASCII) === 0) return decodeUtf8(bytes, offset, end);
        return decodeAscii(bytes, offset, end);
      case TAG_BYTES:
        return this.sealed
          ? viewOf(this.memory, bytes.byteOffset + offset, end - offset)
          : Buffer.from(bytes.subarray(offset, end));
      default:
        throw corrupt(`ShareableList ${this.id}: slot ${index} has unknown tag ${tag}`);
    }
  }

  /** A number when the int64 is a safe integer, else a bigint. */
  private int64At(offset: number): number | bigint {
    const high = this.view.getInt32(offset + 4, true);
    const value = high * TWO_POW_32 + this.view.getUint32(offset, true);
    // Exact whenever the result is a safe integer; anything else is re-read as a bigint.
    return Number.isSafeInteger(value) ? value : this.view.getBigInt64(offset, true);
  }
}

function roundUp(value: number, granule: number): number {
  return Math.ceil(value / granule) * granule;
}

/** A blob that does not hold what a ShareableList header or slot says it should. */
function corrupt(message: string): TrellisError {
  return new TrellisError('TypeMismatch', message);
}
