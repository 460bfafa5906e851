/**
 * SealedListReader: the fast way to read items of a sealed (frozen) ShareableList.
 *
 * A fresh reader process meets this code cold: V8 interprets it until it has run enough to be
 * optimized, and a first pass over a large list is mostly spent before that. So the common items
 * are read in a small method (itemAt) with few bytecodes each, through typed arrays over the blob
 * (an element load, where a DataView read is a call) and with no allocation for null, booleans
 * and numbers that fit a small integer. Anything unusual (an unaligned or out-of-range payload,
 * an unknown tag) goes to the layout's general reader, ListBytes.itemAt, which decodes
 * every case and reports a corrupt slot; the fast path never decides an error itself.
 *
 * Strings are decoded by Node's native decoders, whose cost is the same from the first call: JS
 * decoders are faster once optimized, but a fresh process interprets them for most of a first
 * pass, and compiling them competes with the pass for the CPU (in a fresh reader pinned to one
 * CPU, V8's background compiles took about a third of a first pass's CPU time). For the same
 * reason they, and Node's FastBuffer, are called directly rather than through helper closures:
 * each closure would be one more function for V8 to optimize during the pass.
 */
import type { ItemSource } from './read-cache';
import {
  FLAG_ASCII,
  HEADER_BYTES,
  SLOT_BYTES,
  TAG_BYTES,
  TAG_FLOAT64,
  TAG_INT64,
  TAG_NULL,
  TAG_TRUE,
  TAG_UTF8,
  type ListBytes,
  type ShareableItem,
} from './shareable-list-layout';
import { hasSliceMethods, ViewBuffer, type BufferClass, type SliceMethods } from './shareable-list-text';

// Imported constants are read once here: esbuild's CommonJS output (tsx, the tests, the bench)
// turns each use of an import into a getter call, which the interpreter pays on every item.
const NULL = TAG_NULL;
const TRUE = TAG_TRUE;
const INT64 = TAG_INT64;
const FLOAT64 = TAG_FLOAT64;
const UTF8 = TAG_UTF8;
const BYTES = TAG_BYTES;
const ASCII_BIT = FLAG_ASCII << 8;
/** Node's FastBuffer; the fast reader is only used where it exists (see over). */
const Bytes = ViewBuffer as BufferClass;

/** A slot's four u32 words: tag and flags, length, offset, capacity. */
const SLOT_WORDS = SLOT_BYTES / 4;
const FIRST_SLOT_WORD = HEADER_BYTES / 4;
const LENGTH_WORD = 1;
const OFFSET_WORD = 2;

const TWO_POW_32 = 2 ** 32;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Typed arrays read the platform's byte order; the layout is little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export class SealedListReader implements ItemSource<ShareableItem> {
  readonly count: number;
  /** The blob, with Node's decoders as methods (see over). */
  private readonly bytes: SliceMethods;
  /** The blob as u32, i32 and f64 elements (each as many as fit whole). */
  private readonly words: Uint32Array;
  private readonly signedWords: Int32Array;
  private readonly floats: Float64Array;
  /** For int64s past 2^53, which come back as bigints. */
  private readonly view: DataView;
  private readonly memory: ArrayBufferLike;
  private readonly base: number;
  private readonly size: number;

  private constructor(private readonly slots: ListBytes) {
    const bytes = slots.bytes;
    this.count = slots.count;
    this.bytes = bytes as SliceMethods;
    this.memory = bytes.buffer;
    this.base = bytes.byteOffset;
    this.size = bytes.length;
    this.words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
    this.signedWords = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
    this.floats = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 3);
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  /**
   * A fast reader over a sealed list, or undefined when typed arrays cannot view its bytes (a
   * big-endian machine, or bytes not 8-aligned in memory: the store aligns blobs to 64 bytes, so
   * only a caller's own buffer can be) or when this Node lacks the Buffer internals it calls
   * directly (FastBuffer, latin1Slice, utf8Slice). Read such a list with slots.itemAt.
   */
  static over(slots: ListBytes): SealedListReader | undefined {
    if (!slots.sealed || !LITTLE_ENDIAN || slots.bytes.byteOffset % 8 !== 0) return undefined;
    if (ViewBuffer === undefined || !hasSliceMethods) return undefined;
    return new SealedListReader(slots);
  }

  /** The item at `index` (0 <= index < count; the caller checks). Errors: TypeMismatch (a corrupt slot). */
  itemAt(index: number): ShareableItem {
    const words = this.words;
    const at = FIRST_SLOT_WORD + SLOT_WORDS * index;
    const head = words[at];
    const tag = head & 0xff;
    if (tag <= TRUE) return tag === NULL ? null : tag === TRUE;
    const offset = words[at + OFFSET_WORD];
    if (tag === INT64) {
      if ((offset & 7) === 0 && offset + 8 <= this.size) {
        const word = offset >>> 2;
        const high = this.signedWords[word + 1];
        const low = this.signedWords[word];
        // An int32 (the high word only its sign) as is: V8 keeps it a small integer with no
        // allocation even while the reader is interpreted, where the arithmetic below boxes each step.
        if (high === low >> 31) return low;
        const value = high * TWO_POW_32 + words[word];
        // Exact whenever it is a safe integer; anything else is re-read as a bigint.
        return value <= MAX_SAFE && value >= -MAX_SAFE ? value : this.view.getBigInt64(offset, true);
      }
      return this.slots.itemAt(index);
    }
    if (tag === FLOAT64) {
      return (offset & 7) === 0 && offset + 8 <= this.size ? this.floats[offset >>> 3] : this.slots.itemAt(index);
    }
    const end = offset + words[at + LENGTH_WORD];
    if (end > this.size) return this.slots.itemAt(index);
    if (tag === UTF8) {
      if ((head & ASCII_BIT) === 0) return this.bytes.utf8Slice(offset, end);
      return this.bytes.latin1Slice(offset, end);
    }
    if (tag === BYTES) return new Bytes(this.memory, this.base + offset, end - offset);
    return this.slots.itemAt(index);
  }
}
