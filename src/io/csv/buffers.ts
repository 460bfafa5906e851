/**
 * The growable typed arrays the column builders fill, and what they hand back: arrow's buffers
 * for one column of one chunk, as typed arrays whose ArrayBuffers a worker can transfer.
 */
import type { CsvColumnType } from './options';

/** One column of one chunk, laid out as arrow lays it out. */
export interface ColumnBuffers {
  type: CsvColumnType;
  length: number;
  nullCount: number;
  /**
   * int64: two Int32 words per value (low word first, little-endian); float64: Float64Array;
   * bool: a bitmap; date: days since the epoch; string: the UTF-8 bytes of all values.
   */
  values: Int32Array | Float64Array | Uint8Array;
  /** string: length + 1 offsets into `values`. */
  offsets?: Int32Array;
  /** Bit i set when value i is valid; absent when there are no nulls. */
  validity?: Uint8Array;
}

/** The ArrayBuffers to list when posting `columns` to another thread. */
export function transferList(columns: readonly ColumnBuffers[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const column of columns) {
    for (const view of [column.values, column.offsets, column.validity])
      if (view) buffers.add(view.buffer as ArrayBuffer);
  }
  return [...buffers];
}

type TypedArray = Int32Array | Float64Array | Uint8Array;

/** A copy of `array` with room for at least `needed` elements: doubling keeps appends amortized O(1). */
export function grow<T extends TypedArray>(array: T, needed: number): T {
  const next = new (array.constructor as new (length: number) => T)(Math.max(needed, array.length * 2, 16));
  next.set(array as never);
  return next;
}

/**
 * The first `length` elements. A view when little space would be wasted; otherwise a copy, so a
 * batch does not pin a buffer twice its size for as long as the user keeps it.
 */
export function trim<T extends TypedArray>(array: T, length: number): T {
  const view = array.subarray(0, length) as T;
  return length >= array.length * 0.75 ? view : (view.slice() as T);
}

export function bitmapBytes(bits: number): number {
  return (bits + 7) >>> 3;
}

/** A validity bitmap that exists only once the first null arrives. */
export class Validity {
  private bits: Uint8Array | undefined;
  nullCount = 0;

  markNull(index: number): void {
    if (!this.bits || this.bits.length < bitmapBytes(index + 1)) this.widen(index + 1);
    this.bits![index >>> 3] &= ~(1 << (index & 7));
    this.nullCount++;
  }

  /** The bitmap for `length` values, or undefined when all are valid. */
  finish(length: number): Uint8Array | undefined {
    if (this.nullCount === 0) return undefined;
    if (this.bits!.length < bitmapBytes(length)) this.widen(length);
    return trim(this.bits!, bitmapBytes(length));
  }

  /** Values not yet marked null are valid, so new bytes start as all ones. */
  private widen(bits: number): void {
    const old = this.bits ?? new Uint8Array(0);
    const next = new Uint8Array(Math.max(bitmapBytes(bits), old.length * 2, 64)).fill(0xff);
    next.set(old);
    this.bits = next;
  }
}
