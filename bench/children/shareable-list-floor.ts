/**
 * The floor for a ShareableList's first pass in JavaScript: one hand-written loop that decodes
 * every slot of a sealed list's blob (layout in src/types/shareable-list-layout.ts) into the same
 * values the reader returns (strings by Node's decoders, Buffers viewing the blob, numbers, bigints
 * past 2^53) and hands each to the caller's `consume`, as the bench's list and array passes do.
 *
 * No API, no cache, no call per item but the decoders and `consume`, no checks beyond the
 * layout's: what any JS reader of this layout costs at least in a fresh process, so the gap
 * between it and the cold array is what native decoding alone could close, and the gap between
 * the reader and it is what the reader's own layers cost. A bench baseline only: it trusts the blob
 * (a sealed list the bench just wrote) and needs a little-endian machine.
 */
type Item = Buffer | string | number | bigint | boolean | null;

type BufferView = new (memory: ArrayBufferLike, byteOffset: number, length: number) => Buffer;
/** Node's FastBuffer (as the reader uses it): a Buffer over existing memory with no argument checks. */
const FastBuffer = (Buffer as unknown as { [Symbol.species]: BufferView })[Symbol.species];

interface Decoders extends Buffer {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Every item of the list in `blob`, in order, to `consume`. */
export function decodeEveryItem(blob: Buffer, consume: (item: Item) => void): void {
  const bytes = blob as Decoders;
  const memory = bytes.buffer;
  const base = bytes.byteOffset;
  const words = new Uint32Array(memory, base, bytes.length >>> 2);
  const signedWords = new Int32Array(memory, base, bytes.length >>> 2);
  const floats = new Float64Array(memory, base, bytes.length >>> 3);
  const view = new DataView(memory, base, bytes.length);
  // Header: the count is word 2; slots (four words: tag and flags, length, offset, capacity) follow it.
  const count = words[2];
  for (let i = 0, at = 4; i < count; i++, at += 4) {
    const head = words[at];
    const tag = head & 0xff;
    let item: Item;
    if (tag <= 2) item = tag === 0 ? null : tag === 2;
    else {
      const offset = words[at + 2];
      if (tag === 3) {
        const word = offset >>> 2;
        const high = signedWords[word + 1];
        const low = signedWords[word];
        if (high === low >> 31) item = low;
        else {
          const value = high * 4294967296 + words[word];
          item = value <= MAX_SAFE && value >= -MAX_SAFE ? value : view.getBigInt64(offset, true);
        }
      } else if (tag === 4) item = floats[offset >>> 3];
      else if (tag === 5) {
        const end = offset + words[at + 1];
        // Flags bit 0: all ASCII, which Latin-1 decodes the same and faster.
        item = (head & 0x100) === 0 ? bytes.utf8Slice(offset, end) : bytes.latin1Slice(offset, end);
      } else item = new FastBuffer(memory, base + offset, words[at + 1]);
    }
    consume(item);
  }
}
