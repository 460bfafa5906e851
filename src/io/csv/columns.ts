/**
 * Column builders: each reads one column's fields out of a tokenized block and appends them to
 * arrow-shaped typed arrays (see buffers.ts). A builder's loop handles the common spelling of
 * its type inline and calls the general reader in values.ts only when that fails.
 */
import { grow, trim, Validity, type ColumnBuffers } from './buffers';
import type { CsvColumnType, ParseSettings } from './options';
import { FIELD_ESCAPED, type RowTokenizer } from './tokenizer';
import { readBool, readDate, readFloatText, readInt64Text, readSimpleFloat, readSimpleInt } from './values';

/** A local copy: an imported constant is a property load at every use in a loop. */
const ESCAPED = FIELD_ESCAPED;
/** 2^32, to split an integer into the two 32-bit words of an int64. */
const TWO_TO_THE_32 = 4294967296;

export interface ColumnBuilder {
  /**
   * Appends field `column` of every row in the block. Returns -1, or the index (in the block) of
   * the first row whose field is not a value of this type; rows before it are appended.
   */
  append(bytes: Uint8Array, block: RowTokenizer, column: number): number;
  finish(): ColumnBuffers;
}

/** Which unquoted field texts mean null (a quoted field never does). */
export class NullTexts {
  readonly emptyIsNull: boolean;
  private readonly texts: Uint8Array[];
  readonly any: boolean;

  constructor(settings: ParseSettings) {
    this.emptyIsNull = settings.emptyIsNull;
    this.texts = settings.nullTexts.map((text) => Uint8Array.from(text));
    this.any = this.texts.length > 0;
  }

  /** Whether bytes[start, end) is one of the non-empty null texts. */
  matches(bytes: Uint8Array, start: number, end: number): boolean {
    const length = end - start;
    outer: for (const text of this.texts) {
      if (text.length !== length) continue;
      for (let i = 0; i < length; i++) if (bytes[start + i] !== text[i]) continue outer;
      return true;
    }
    return false;
  }
}

/** A builder for `type` with room for about `rows` values (and `textBytes` of string data). */
export function createColumnBuilder(
  type: CsvColumnType,
  nulls: NullTexts,
  rows: number,
  textBytes: number,
): ColumnBuilder {
  switch (type) {
    case 'int64':
      return new Int64Builder(nulls, rows);
    case 'float64':
      return new Float64Builder(nulls, rows);
    case 'bool':
      return new BoolBuilder(nulls, rows);
    case 'date':
      return new DateBuilder(nulls, rows);
    case 'string':
      return new StringBuilder(nulls, rows, textBytes);
  }
}

/**
 * Whether a field of a non-string column is null: an empty field always is (it cannot be a
 * value), and so is an unquoted null text. Null texts are checked before the value is read,
 * so that a sentinel such as -999 can mean null in a numeric column.
 */
function isNullField(nulls: NullTexts, bytes: Uint8Array, start: number, end: number, flags: number): boolean {
  return start === end || (nulls.any && flags === 0 && nulls.matches(bytes, start, end));
}

class Int64Builder implements ColumnBuilder {
  /** Two words per value: low then high (little-endian int64). */
  private words: Int32Array;
  private length = 0;
  private readonly validity = new Validity();

  constructor(
    private readonly nulls: NullTexts,
    rows: number,
  ) {
    this.words = new Int32Array(2 * Math.max(rows, 16));
  }

  append(bytes: Uint8Array, block: RowTokenizer, column: number): number {
    const { starts, ends, flags, rows, width } = block;
    if (2 * (this.length + rows) > this.words.length) this.words = grow(this.words, 2 * (this.length + rows));
    const { words, nulls } = this;
    const checkTexts = nulls.any;
    let length = this.length;
    for (let row = 0, field = column; row < rows; row++, field += width) {
      const start = starts[field];
      const end = ends[field];
      let value = checkTexts ? NaN : readSimpleInt(bytes, start, end);
      if (value !== value) {
        if (isNullField(nulls, bytes, start, end, flags[field])) {
          this.validity.markNull(length);
          value = 0;
        } else {
          const general = readInt64Text(bytes, start, end);
          if (general === undefined) {
            this.length = length;
            return row;
          }
          if (typeof general === 'bigint') {
            new BigInt64Array(words.buffer, 8 * length, 1)[0] = general;
            length++;
            continue;
          }
          value = general;
        }
      }
      // |value| < 2^53, so the division is exact; `| 0` keeps the low 32 bits of either word.
      words[2 * length] = value | 0;
      words[2 * length + 1] = Math.floor(value / TWO_TO_THE_32) | 0;
      length++;
    }
    this.length = length;
    return -1;
  }

  finish(): ColumnBuffers {
    const { length, validity } = this;
    return {
      type: 'int64',
      length,
      nullCount: validity.nullCount,
      values: trim(this.words, 2 * length),
      validity: validity.finish(length),
    };
  }
}

class Float64Builder implements ColumnBuilder {
  private values: Float64Array;
  private length = 0;
  private readonly validity = new Validity();

  constructor(
    private readonly nulls: NullTexts,
    rows: number,
  ) {
    this.values = new Float64Array(Math.max(rows, 16));
  }

  append(bytes: Uint8Array, block: RowTokenizer, column: number): number {
    const { starts, ends, flags, rows, width } = block;
    if (this.length + rows > this.values.length) this.values = grow(this.values, this.length + rows);
    const { values, nulls } = this;
    const checkTexts = nulls.any;
    let length = this.length;
    for (let row = 0, field = column; row < rows; row++, field += width) {
      const start = starts[field];
      const end = ends[field];
      let value = checkTexts ? NaN : readSimpleFloat(bytes, start, end);
      if (value !== value) {
        if (isNullField(nulls, bytes, start, end, flags[field])) {
          this.validity.markNull(length);
          value = 0;
        } else {
          const general = readFloatText(bytes, start, end);
          if (general === undefined) {
            this.length = length;
            return row;
          }
          value = general;
        }
      }
      values[length++] = value;
    }
    this.length = length;
    return -1;
  }

  finish(): ColumnBuffers {
    const { length, validity } = this;
    return {
      type: 'float64',
      length,
      nullCount: validity.nullCount,
      values: trim(this.values, length),
      validity: validity.finish(length),
    };
  }
}

class BoolBuilder implements ColumnBuilder {
  private bits: Uint8Array;
  private length = 0;
  private readonly validity = new Validity();

  constructor(
    private readonly nulls: NullTexts,
    rows: number,
  ) {
    this.bits = new Uint8Array(Math.max(rows >>> 3, 16));
  }

  append(bytes: Uint8Array, block: RowTokenizer, column: number): number {
    const { starts, ends, flags, rows, width } = block;
    const neededBytes = (this.length + rows + 7) >>> 3;
    if (neededBytes > this.bits.length) this.bits = grow(this.bits, neededBytes);
    const { bits, nulls } = this;
    let length = this.length;
    for (let row = 0, field = column; row < rows; row++, field += width) {
      const start = starts[field];
      const end = ends[field];
      if (isNullField(nulls, bytes, start, end, flags[field])) {
        this.validity.markNull(length++);
        continue;
      }
      const value = readBool(bytes, start, end);
      if (value < 0) {
        this.length = length;
        return row;
      }
      if (value > 0) bits[length >>> 3] |= 1 << (length & 7);
      length++;
    }
    this.length = length;
    return -1;
  }

  finish(): ColumnBuffers {
    const { length, validity } = this;
    return {
      type: 'bool',
      length,
      nullCount: validity.nullCount,
      values: trim(this.bits, (length + 7) >>> 3),
      validity: validity.finish(length),
    };
  }
}

class DateBuilder implements ColumnBuilder {
  private days: Int32Array;
  private length = 0;
  private readonly validity = new Validity();

  constructor(
    private readonly nulls: NullTexts,
    rows: number,
  ) {
    this.days = new Int32Array(Math.max(rows, 16));
  }

  append(bytes: Uint8Array, block: RowTokenizer, column: number): number {
    const { starts, ends, flags, rows, width } = block;
    if (this.length + rows > this.days.length) this.days = grow(this.days, this.length + rows);
    const { days, nulls } = this;
    const checkTexts = nulls.any;
    let length = this.length;
    for (let row = 0, field = column; row < rows; row++, field += width) {
      const start = starts[field];
      const end = ends[field];
      let value = checkTexts ? NaN : readDate(bytes, start, end);
      if (value !== value) {
        if (isNullField(nulls, bytes, start, end, flags[field])) {
          this.validity.markNull(length);
          value = 0;
        } else {
          value = readDate(bytes, start, end);
          if (value !== value) {
            this.length = length;
            return row;
          }
        }
      }
      days[length++] = value;
    }
    this.length = length;
    return -1;
  }

  finish(): ColumnBuffers {
    const { length, validity } = this;
    return {
      type: 'date',
      length,
      nullCount: validity.nullCount,
      values: trim(this.days, length),
      validity: validity.finish(length),
    };
  }
}

/** Below this length a string is copied four bytes at a time; above it, with one native copy. */
const NATIVE_COPY_BYTES = 64;

/** Strings are copied as they are: the file's bytes are taken to be UTF-8. */
class StringBuilder implements ColumnBuilder {
  private offsets: Int32Array;
  private data: Uint8Array;
  private dataView: DataView;
  private length = 0;
  private readonly validity = new Validity();

  constructor(
    private readonly nulls: NullTexts,
    rows: number,
    textBytes: number,
  ) {
    this.offsets = new Int32Array(Math.max(rows, 16) + 1);
    this.data = new Uint8Array(Math.max(textBytes, 64));
    this.dataView = new DataView(this.data.buffer);
  }

  append(bytes: Uint8Array, block: RowTokenizer, column: number): number {
    const { starts, ends, flags, rows, width } = block;
    if (this.length + rows + 1 > this.offsets.length) this.offsets = grow(this.offsets, this.length + rows + 1);
    const { offsets, nulls } = this;
    const emptyIsNull = nulls.emptyIsNull;
    // Plain views: a Buffer's subarray() builds a Buffer, which costs far more than the copy.
    const source = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    const sourceView = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    let { data, dataView } = this;
    let length = this.length;
    let used = offsets[length];
    for (let row = 0, field = column; row < rows; row++, field += width) {
      let start = starts[field];
      const end = ends[field];
      const fieldFlags = flags[field];
      if (fieldFlags === 0 && (start === end ? emptyIsNull : nulls.any && nulls.matches(bytes, start, end))) {
        this.validity.markNull(length);
      } else {
        if (used + (end - start) > data.length) {
          data = this.data = grow(data, used + (end - start));
          dataView = this.dataView = new DataView(data.buffer);
        }
        if (fieldFlags & ESCAPED) {
          used = copyUnescaped(source, start, end, data, used);
        } else if (end - start < NATIVE_COPY_BYTES) {
          // Four bytes at a time through DataViews: about twice as fast as a byte loop for short strings.
          for (; start + 4 <= end; start += 4, used += 4) dataView.setUint32(used, sourceView.getUint32(start));
          for (; start < end; start++) data[used++] = source[start];
        } else {
          data.set(source.subarray(start, end), used);
          used += end - start;
        }
      }
      offsets[++length] = used;
    }
    this.length = length;
    return -1;
  }

  finish(): ColumnBuffers {
    const { length, validity } = this;
    return {
      type: 'string',
      length,
      nullCount: validity.nullCount,
      values: trim(this.data, this.offsets[length]),
      offsets: trim(this.offsets, length + 1),
      validity: validity.finish(length),
    };
  }
}

/** Copies a quoted field's content, keeping one quote of each doubled pair. */
function copyUnescaped(bytes: Uint8Array, start: number, end: number, into: Uint8Array, at: number): number {
  const quote = bytes[start - 1];
  for (let i = start; i < end; i++) {
    into[at++] = bytes[i];
    if (bytes[i] === quote) i++;
  }
  return at;
}
