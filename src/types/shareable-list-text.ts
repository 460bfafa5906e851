/**
 * Turning a ShareableList's payload bytes into JS values cheaply: Buffers that view shared memory
 * and strings decoded from it. Shared by the layout's general reader (ListBytes) and the sealed
 * list's fast reader (SealedListReader).
 */
/**
 * The class behind Buffer.from(arrayBuffer, offset, length): Node's FastBuffer, whose prototype
 * is Buffer.prototype, published as Buffer[Symbol.species] so that subarray() makes Buffers.
 * Constructing it directly skips Buffer.from's argument checks, about three quarters of the
 * cost of viewing a few bytes; Buffer.from stays as the fallback.
 */
export type BufferClass = new (memory: ArrayBufferLike, byteOffset: number, length: number) => Buffer;

const species: unknown = (Buffer as unknown as { [Symbol.species]?: unknown })[Symbol.species];
export const ViewBuffer: BufferClass | undefined =
  typeof species === 'function' && species.prototype === Buffer.prototype ? (species as BufferClass) : undefined;

export const viewOf: (memory: ArrayBufferLike, byteOffset: number, length: number) => Buffer = ViewBuffer
  ? (memory, byteOffset, length) => new ViewBuffer(memory, byteOffset, length)
  : (memory, byteOffset, length) => Buffer.from(memory as ArrayBuffer, byteOffset, length);

/**
 * Node's Buffer methods behind toString('latin1' | 'utf8', start, end), there since Node's early
 * days but not in its type definitions. Calling them skips toString's argument handling, about a
 * fifth of the cost of decoding a short string; toString stays as the fallback.
 */
export interface SliceMethods extends Buffer {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

export const hasSliceMethods =
  typeof (Buffer.prototype as SliceMethods).latin1Slice === 'function' &&
  typeof (Buffer.prototype as SliceMethods).utf8Slice === 'function';

export const sliceLatin1: (bytes: Buffer, start: number, end: number) => string = hasSliceMethods
  ? (bytes, start, end) => (bytes as SliceMethods).latin1Slice(start, end)
  : (bytes, start, end) => bytes.toString('latin1', start, end);

export const sliceUtf8: (bytes: Buffer, start: number, end: number) => string = hasSliceMethods
  ? (bytes, start, end) => (bytes as SliceMethods).utf8Slice(start, end)
  : (bytes, start, end) => bytes.toString('utf8', start, end);

/**
 * Strings of up to SHORT_TEXT UTF-16 units are built in JS, by one String.fromCharCode call
 * with a unit per argument: about 1 ns a unit, where a call into Node's decoders costs about
 * 40 ns at any length. Longer strings go to Node's decoders.
 */
const SHORT_TEXT = 16;

/** The UTF-16 units of the short UTF-8 string being decoded. */
const units = new Uint16Array(SHORT_TEXT);

/** ASCII bytes are their own UTF-16 units; Latin-1, Node's cheapest decoder, reads them the same. */
export function decodeAscii(bytes: Buffer, start: number, end: number): string {
  return end - start <= SHORT_TEXT ? textOf(bytes, start, end - start) : sliceLatin1(bytes, start, end);
}

/**
 * UTF-8 as Buffer's toString decodes it. Short strings of 1-, 2- and 3-byte sequences (every
 * character of the Basic Multilingual Plane) are decoded here; anything else, including
 * malformed bytes and their replacement characters, is left to Node.
 */
export function decodeUtf8(bytes: Buffer, start: number, end: number): string {
  if (end - start > 3 * SHORT_TEXT) return sliceUtf8(bytes, start, end);
  let count = 0;
  let i = start;
  while (i < end) {
    if (count === SHORT_TEXT) return sliceUtf8(bytes, start, end);
    const lead = bytes[i];
    if (lead < 0x80) {
      units[count++] = lead;
      i += 1;
    } else if (lead >= 0xc2 && lead <= 0xdf && i + 1 < end && (bytes[i + 1] & 0xc0) === 0x80) {
      units[count++] = ((lead & 0x1f) << 6) | (bytes[i + 1] & 0x3f);
      i += 2;
    } else if (
      lead >= 0xe0 &&
      lead <= 0xef &&
      i + 2 < end &&
      isSecondOfThree(lead, bytes[i + 1]) &&
      (bytes[i + 2] & 0xc0) === 0x80
    ) {
      units[count++] = ((lead & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f);
      i += 3;
    } else {
      return sliceUtf8(bytes, start, end);
    }
  }
  return textOf(units, 0, count);
}

/** Whether `byte` may follow `lead` (0xe0 to 0xef): no overlong forms, no surrogates. */
function isSecondOfThree(lead: number, byte: number): boolean {
  if (lead === 0xe0) return byte >= 0xa0 && byte <= 0xbf;
  if (lead === 0xed) return byte >= 0x80 && byte <= 0x9f;
  return byte >= 0x80 && byte <= 0xbf;
}

const fromCharCode = String.fromCharCode;

/** The string of the `count` (at most SHORT_TEXT) UTF-16 units starting at c[at]. */
export function textOf(c: ArrayLike<number>, at: number, count: number): string {
  switch (count) {
    case 0:
      return '';
    case 1:
      return fromCharCode(c[at]);
    case 2:
      return fromCharCode(c[at], c[at + 1]);
    case 3:
      return fromCharCode(c[at], c[at + 1], c[at + 2]);
    case 4:
      return fromCharCode(c[at], c[at + 1], c[at + 2], c[at + 3]);
    case 5:
      return fromCharCode(c[at], c[at + 1], c[at + 2], c[at + 3], c[at + 4]);
    case 6:
      return fromCharCode(c[at], c[at + 1], c[at + 2], c[at + 3], c[at + 4], c[at + 5]);
    case 7:
      return fromCharCode(c[at], c[at + 1], c[at + 2], c[at + 3], c[at + 4], c[at + 5], c[at + 6]);
    case 8:
      return fromCharCode(c[at], c[at + 1], c[at + 2], c[at + 3], c[at + 4], c[at + 5], c[at + 6], c[at + 7]);
    case 9:
      return fromCharCode(
        c[at],
        c[at + 1],
        c[at + 2],
        c[at + 3],
        c[at + 4],
        c[at + 5],
        c[at + 6],
        c[at + 7],
        c[at + 8],
      );
    case 10:
      return fromCharCode(
        c[at],
        c[at + 1],
        c[at + 2],
        c[at + 3],
        c[at + 4],
        c[at + 5],
        c[at + 6],
        c[at + 7],
        c[at + 8],
        c[at + 9],
      );
    case 11:
      return fromCharCode(
        c[at],
        c[at + 1],
        c[at + 2],
        c[at + 3],
        c[at + 4],
        c[at + 5],
        c[at + 6],
        c[at + 7],
        c[at + 8],
        c[at + 9],
        c[at + 10],
      );
    case 12:
      return fromCharCode(
        c[at],
        c[at + 1],
        c[at + 2],
        c[at + 3],
        c[at + 4],
        c[at + 5],
        c[at + 6],
        c[at + 7],
        c[at + 8],
        c[at + 9],
        c[at + 10],
        c[at + 11],
      );
    case 13:
      return fromCharCode(
        c[at],
        c[at + 1],
        c[at + 2],
        c[at + 3],
        c[at + 4],
        c[at + 5],
        c[at + 6],
        c[at + 7],
        c[at + 8],
        c[at + 9],
        c[at + 10],
        c[at + 11],
        c[at + 12],
      );
    case 14:
      return fromCharCode(
        c[at],
        c[at + 1],
        c[at + 2],
        c[at + 3],
        c[at + 4],
        c[at + 5],
        c[at + 6],
        c[at + 7],
        c[at + 8],
        c[at + 9],
        c[at + 10],
        c[at + 11],
        c[at + 12],
        c[at + 13],
      );
    case 15:
      return fromCharCode(
        c[at],
        c[at + 1],
        c[at + 2],
        c[at + 3],
        c[at + 4],
        c[at + 5],
        c[at + 6],
        c[at + 7],
        c[at + 8],
        c[at + 9],
        c[at + 10],
        c[at + 11],
        c[at + 12],
        c[at + 13],
        c[at + 14],
      );
    case 16:
      return fromCharCode(
        c[at],
        c[at + 1],
        c[at + 2],
        c[at + 3],
        c[at + 4],
        c[at + 5],
        c[at + 6],
        c[at + 7],
        c[at + 8],
        c[at + 9],
        c[at + 10],
        c[at + 11],
        c[at + 12],
        c[at + 13],
        c[at + 14],
        c[at + 15],
      );
    default:
      throw new RangeError(`textOf: ${count} units, more than ${SHORT_TEXT}`);
  }
}
