/**
 * Column types from a sample of rows. Each non-null field votes for the narrowest type that
 * reads it (int64, float64, bool, date, else string); a column takes the type that reads all of
 * its votes: int64 if every value is an integer, float64 if they are numbers, bool or date if
 * they all are, string otherwise (and for a column with no values at all).
 *
 * The sample is the first `sampleRows` data rows plus, in a large file, rows from ten places
 * spread through it, so that a column sorted or clustered by value is still seen whole. A row
 * after the sample that does not fit its column's type fails with a ParseError that says how
 * to fix it (columnTypes, or sampleRows: Infinity, which samples the whole file).
 *
 * The sample also measures bytes per row and string bytes per column, which size the column
 * builders of every chunk.
 */
import { NullTexts } from './columns';
import { FileWindow } from './file-window';
import type { CsvColumnType, ParseSettings } from './options';
import { FAILED, FIELD_ESCAPED, LF, NEED_MORE, RowTokenizer, STOPPED } from './tokenizer';
import { readBool, readDate, readFloatText, readInt64Text } from './values';

const INT = 1;
const FLOAT = 2;
const BOOL = 4;
const DATE = 8;
const STRING = 16;

/** The first sample reads at most this much, unless sampleRows is Infinity. */
const HEAD_SAMPLE_BYTES = 32 * 1024 * 1024;
const SPREAD_SAMPLES = 10;
const SPREAD_SAMPLE_BYTES = 1024 * 1024;
const SAMPLE_BLOCK_ROWS = 256;

export interface Inference {
  types: CsvColumnType[];
  /** File bytes per data row in the sample (at least 1). */
  bytesPerRow: number;
  /** Per column, string bytes per file byte in the sample. */
  textShare: number[];
  sampledRows: number;
}

interface Tally {
  kinds: number[];
  textBytes: number[];
  rows: number;
  bytes: number;
}

export interface InferInput {
  window: FileWindow;
  settings: ParseSettings;
  width: number;
  dataStart: number;
  sampleRows: number;
  /** Types the caller gave; those columns are not sampled. */
  given: Array<CsvColumnType | undefined>;
}

export function inferTypes(input: InferInput): Inference {
  const { window, width, dataStart, sampleRows, given } = input;
  const tally: Tally = { kinds: new Array(width).fill(0), textBytes: new Array(width).fill(0), rows: 0, bytes: 0 };
  for (let column = 0; column < width; column++) if (given[column]) tally.kinds[column] = STRING; // nothing to learn
  const headBytes = sampleRows === Infinity ? Infinity : HEAD_SAMPLE_BYTES;
  const head = sampleRegion(input, tally, dataStart, sampleRows, headBytes);
  // Spread samples only where a newline is surely a row boundary (no quoted field held one).
  const rest = window.fileSize - head.end;
  if (!head.failed && !head.sawQuotedNewline && rest > SPREAD_SAMPLES * SPREAD_SAMPLE_BYTES) {
    const rowsEach = Math.ceil(sampleRows / SPREAD_SAMPLES);
    for (let i = 0; i < SPREAD_SAMPLES; i++) {
      const offset = head.end + Math.floor((rest * i) / SPREAD_SAMPLES);
      const spread: Tally = {
        kinds: tally.kinds.slice(),
        textBytes: tally.textBytes.slice(),
        rows: tally.rows,
        bytes: tally.bytes,
      };
      const region = sampleRegion(input, spread, lineStartAfter(window, offset), rowsEach, SPREAD_SAMPLE_BYTES);
      if (!region.failed) Object.assign(tally, spread);
    }
  }
  const bytesPerRow = tally.rows > 0 ? Math.max(1, tally.bytes / tally.rows) : 64;
  return {
    types: tally.kinds.map((kinds, column) => given[column] ?? typeFor(kinds)),
    bytesPerRow,
    textShare: tally.textBytes.map((bytes) => (tally.bytes > 0 ? bytes / tally.bytes : 0.5)),
    sampledRows: tally.rows,
  };
}

function typeFor(kinds: number): CsvColumnType {
  if (kinds === INT) return 'int64';
  if (kinds !== 0 && (kinds & ~(INT | FLOAT)) === 0) return 'float64';
  if (kinds === BOOL) return 'bool';
  if (kinds === DATE) return 'date';
  return 'string';
}

/** Tallies about `maxRows` rows starting at `start`; stops early at a parse error (the parse proper reports it). */
function sampleRegion(input: InferInput, tally: Tally, start: number, maxRows: number, maxBytes: number) {
  const { window, settings, width } = input;
  const tokenizer = new RowTokenizer(settings, width, true, SAMPLE_BLOCK_ROWS);
  const nulls = new NullTexts(settings);
  let rows = 0;
  let status = NEED_MORE;
  window.load(start, Math.min(maxBytes, 1024 * 1024));
  tokenizer.pos = 0;
  while (rows < maxRows && window.base + tokenizer.pos - start < maxBytes) {
    status = tokenizer.run(window.bytes, window.length, Infinity, window.atEof);
    // Whole blocks: the sample may run up to a block past maxRows, which keeps bytes per row exact.
    const take = tokenizer.rows;
    for (let row = 0; row < take; row++) {
      for (let column = 0, field = row * width; column < width; column++, field++) {
        const fieldStart = tokenizer.starts[field];
        const fieldEnd = tokenizer.ends[field];
        const flags = tokenizer.flags[field];
        if (!(tally.kinds[column] & STRING))
          tally.kinds[column] |= classify(window.bytes, fieldStart, fieldEnd, flags, nulls);
        tally.textBytes[column] += fieldEnd - fieldStart;
      }
    }
    rows += take;
    if (status === FAILED || status === STOPPED) break;
    if (status === NEED_MORE) tokenizer.pos -= window.advance(tokenizer.pos);
  }
  const end = window.base + tokenizer.pos;
  tally.rows += rows;
  tally.bytes += end - start;
  return { end, failed: status === FAILED, sawQuotedNewline: tokenizer.sawQuotedNewline };
}

/** The vote of one field: 0 for null. */
function classify(bytes: Uint8Array, start: number, end: number, flags: number, nulls: NullTexts): number {
  if (start === end || (flags === 0 && nulls.any && nulls.matches(bytes, start, end))) return 0;
  if (flags & FIELD_ESCAPED) return STRING;
  if (readInt64Text(bytes, start, end) !== undefined) return INT;
  if (readFloatText(bytes, start, end) !== undefined) return FLOAT; // including integers too big for int64
  if (readBool(bytes, start, end) >= 0) return BOOL;
  if (!Number.isNaN(readDate(bytes, start, end))) return DATE;
  return STRING;
}

/** The offset after the first newline at or after `offset`, or the file size. */
function lineStartAfter(window: FileWindow, offset: number): number {
  window.load(offset, 64 * 1024);
  for (;;) {
    const newline = window.bytes.indexOf(LF, 0);
    if (newline < window.length) return window.base + newline + 1;
    if (window.atEof) return window.fileSize;
    window.advance(window.length);
  }
}
