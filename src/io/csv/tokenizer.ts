/**
 * Splits bytes into rows and fields, writing where each field starts and ends into a block of
 * typed arrays; the column builders then read the values from those positions. Two passes (find
 * fields, then convert them column by column) keep each loop small enough for V8 to compile
 * well, the way Arrow C++'s BlockParser and converters divide the work.
 *
 * The bytes handed to run() must end with a newline just past `length` (a sentinel): field scans
 * then need no bounds checks, because every scan stops at a newline. A row that reaches the
 * sentinel is incomplete unless the data is the end of the file; run() rolls it back and asks
 * for more bytes.
 *
 * Quoting follows RFC 4180: a field that starts with the quote character runs to the next quote
 * not doubled, may hold delimiters and newlines, and must be followed by a delimiter or the end
 * of the line. A quote inside an unquoted field is an ordinary byte. Rows end at LF or CRLF; a
 * lone CR is data. Empty lines (and, with whitespace delimiters, blank lines) and comment lines
 * are skipped.
 */
import type { ParseSettings } from './options';

// Constants used in loops are module-local and exported by name below: an `export const` compiles
// to a property load from `exports` at every use, which costs a measurable share of the scan.
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;

/** Field flags: the field was quoted (its positions exclude the quotes) ... */
const FIELD_QUOTED = 1;
/** ... and holds doubled quotes that stand for one. */
const FIELD_ESCAPED = 2;

export { CR, FIELD_ESCAPED, FIELD_QUOTED, LF };

/** Why run() returned. */
export const BLOCK_FULL = 0;
/** A line starts at or after `stopAt`, or the file's data ended. */
export const STOPPED = 1;
/** The bytes ran out mid-row (or exactly at a row end) before the file did. */
export const NEED_MORE = 2;
export const FAILED = 3;

/** A problem in the bytes. `line` counts newlines from where this tokenizer started. */
export interface TokenizerError {
  line: number;
  /** 1-based field number. */
  column: number;
  message: string;
}

export class RowTokenizer {
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  readonly flags: Uint8Array;
  /** Fields found in each row of the block (always `width` when strict). */
  readonly fieldCounts: Int32Array;
  /** Each row's first line, counted from where this tokenizer started. */
  readonly rowLines: Int32Array;
  /** Rows in the current block. */
  rows = 0;
  /** Where the next row starts, as an index into the bytes last given to run(). */
  pos = 0;
  /** Newlines consumed so far, including those inside quoted fields and skipped lines. */
  line = 0;
  /** Whether some quoted field held a newline (then a split at a newline may land inside a field). */
  sawQuotedNewline = false;
  error: TokenizerError | undefined;

  constructor(
    private readonly settings: ParseSettings,
    /** Fields per row: the stride of the block arrays. */
    readonly width: number,
    /** Whether every row must have exactly `width` fields (otherwise at most `width`). */
    private readonly strict: boolean,
    readonly blockRows: number,
  ) {
    this.starts = new Int32Array(width * blockRows);
    this.ends = new Int32Array(width * blockRows);
    this.flags = new Uint8Array(width * blockRows);
    this.fieldCounts = new Int32Array(blockRows);
    this.rowLines = new Int32Array(blockRows);
  }

  /**
   * Tokenizes rows from `this.pos` into a fresh block until the block is full, a line starts at
   * or after `stopAt`, the data ends or an error is found. `bytes[length]` must be LF.
   * Returns BLOCK_FULL, STOPPED, NEED_MORE or FAILED (see `error`).
   */
  run(bytes: Uint8Array, length: number, stopAt: number, atEof: boolean): number {
    const { starts, ends, flags, width, blockRows } = this;
    const { delimiter, quote, comment, whitespace } = this.settings;
    const commentFirst = comment.length > 0 ? comment[0] : -1;
    let pos = this.pos;
    let line = this.line;
    let rows = 0;
    let status: number;

    rowLoop: for (;;) {
      if (pos >= stopAt || pos >= length) {
        status = pos < length || atEof ? STOPPED : NEED_MORE;
        if (pos > length) pos = length;
        break;
      }
      if (rows === blockRows) {
        status = BLOCK_FULL;
        break;
      }
      const rowStart = pos;
      const rowLine = line;
      let c = bytes[pos];
      if (whitespace) {
        while (c === SPACE || c === TAB) c = bytes[++pos];
      }
      // Skipped lines: empty (or blank), and comments.
      if (c === LF || (c === CR && bytes[pos + 1] === LF)) {
        const newline = c === LF ? pos : pos + 1;
        if (newline >= length && !atEof) {
          pos = rowStart;
          status = NEED_MORE;
          break;
        }
        pos = newline + 1;
        line++;
        continue;
      }
      if (c === commentFirst && rowStart === pos && this.startsWithComment(bytes, pos, length, atEof)) {
        const newline = bytes.indexOf(LF, pos);
        if (newline >= length && !atEof) {
          status = NEED_MORE;
          break;
        }
        pos = newline + 1;
        line++;
        continue;
      }

      const base = rows * width;
      let count = 0;
      for (;;) {
        if (count === width) {
          this.error = {
            line,
            column: width + 1,
            message: `the row has more than ${width} field${width === 1 ? '' : 's'}`,
          };
          status = FAILED;
          break rowLoop;
        }
        const field = base + count;
        c = bytes[pos];
        if (c === quote) {
          // A byte loop, not indexOf: most quoted fields are short, and a native call per field costs more.
          let close = pos + 1;
          let newlines = 0;
          let fieldFlags = FIELD_QUOTED;
          for (;;) {
            let b: number;
            while (close < length && (b = bytes[close]) !== quote) {
              if (b === LF) newlines++;
              close++;
            }
            if (close >= length || bytes[close + 1] !== quote) break;
            fieldFlags |= FIELD_ESCAPED;
            close += 2;
          }
          if (close >= length) {
            if (!atEof) {
              pos = rowStart;
              line = rowLine;
              status = NEED_MORE;
              break rowLoop;
            }
            this.error = { line, column: count + 1, message: 'a quoted field starts here and is never closed' };
            status = FAILED;
            break rowLoop;
          }
          if (newlines > 0) {
            line += newlines;
            this.sawQuotedNewline = true;
          }
          starts[field] = pos + 1;
          ends[field] = close;
          flags[field] = fieldFlags;
          pos = close + 1;
          c = bytes[pos];
          if (whitespace) {
            while (c === SPACE || c === TAB) c = bytes[++pos];
          }
        } else {
          const fieldStart = pos;
          if (whitespace) {
            for (;;) {
              while ((c = bytes[pos]) > SPACE || (c !== SPACE && c !== TAB && c !== LF && c !== CR)) pos++;
              if (c !== CR || bytes[pos + 1] === LF) break;
              pos++; // a lone CR is data
            }
          } else {
            for (;;) {
              // One comparison for LF, CR and other control bytes together; sort them out after.
              while ((c = bytes[pos]) !== delimiter && c > CR) pos++;
              if (c === delimiter || c === LF || (c === CR && bytes[pos + 1] === LF)) break;
              pos++; // a lone CR or another control byte is data
            }
          }
          starts[field] = fieldStart;
          ends[field] = pos;
          flags[field] = 0;
          if (whitespace) {
            while (c === SPACE || c === TAB) c = bytes[++pos];
          }
        }
        count++;
        if (c === LF) break;
        if (c === CR && bytes[pos + 1] === LF) {
          pos++;
          break;
        }
        if (whitespace || c === delimiter) {
          // With whitespace delimiters the run was skipped above and a field starts here.
          if (!whitespace) pos++;
          continue;
        }
        this.error = {
          line,
          column: count,
          message: `${describeByte(c)} follows a closing quote (expected a delimiter or the end of the line)`,
        };
        status = FAILED;
        break rowLoop;
      }
      // pos is at the row's LF.
      if (pos >= length && !atEof) {
        pos = rowStart;
        line = rowLine;
        status = NEED_MORE;
        break;
      }
      if (this.strict && count !== width) {
        this.error = {
          line,
          column: count + 1,
          message: `the row has ${count} field${count === 1 ? '' : 's'}, expected ${width}`,
        };
        status = FAILED;
        break;
      }
      this.fieldCounts[rows] = count;
      this.rowLines[rows] = rowLine;
      rows++;
      pos++;
      line++;
    }
    this.rows = rows;
    this.pos = pos;
    this.line = line;
    return status;
  }

  /** Whether the comment prefix starts at `pos`; a prefix cut off by the end of the bytes counts as one. */
  private startsWithComment(bytes: Uint8Array, pos: number, length: number, atEof: boolean): boolean {
    const { comment } = this.settings;
    for (let i = 1; i < comment.length; i++) {
      if (pos + i >= length) return !atEof;
      if (bytes[pos + i] !== comment[i]) return false;
    }
    return true;
  }
}

function describeByte(byte: number): string {
  return byte >= 0x20 && byte < 0x7f
    ? `'${String.fromCharCode(byte)}'`
    : `byte 0x${byte.toString(16).padStart(2, '0')}`;
}
