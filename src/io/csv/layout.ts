/**
 * The shape of a file before its types are known: how many columns, what they are called, and
 * where the data starts (after the header row and any comment or empty lines before it).
 */
import { TrellisError } from '../../errors';
import { FileWindow } from './file-window';
import type { ResolvedReadOptions } from './options';
import { FAILED, FIELD_ESCAPED, NEED_MORE, RowTokenizer, type TokenizerError } from './tokenizer';

/** More columns than this is taken to be a mistake (such as a wrong delimiter on a huge line). */
export const MAX_COLUMNS = 65536;

export interface FileLayout {
  names: string[];
  /** The file offset of the first data row (or of the line after the header). */
  dataStart: number;
  /** Newlines before dataStart: the header's line and any skipped lines before it. */
  headerLines: number;
}

/** The UTF-8 byte order mark some editors put first; it is not part of the first name. */
const BYTE_ORDER_MARK = [0xef, 0xbb, 0xbf];

function byteOrderMarkLength(window: FileWindow): number {
  return BYTE_ORDER_MARK.every((byte, i) => i < window.length && window.bytes[i] === byte) ? BYTE_ORDER_MARK.length : 0;
}

interface FirstRow {
  fields: string[];
  /** Where the row's bytes start (after any byte order mark) and end. */
  start: number;
  end: number;
  lines: number;
}

/**
 * The first row's fields as strings, where it ends, and the newlines up to there; undefined for a
 * file with no rows.
 */
export function readFirstRow(window: FileWindow, options: ResolvedReadOptions): FirstRow | TokenizerError | undefined {
  const tokenizer = new RowTokenizer(options.settings, MAX_COLUMNS, false, 1);
  window.load(0, 64 * 1024);
  const start = byteOrderMarkLength(window);
  tokenizer.pos = start;
  for (;;) {
    const status = tokenizer.run(window.bytes, window.length, Infinity, window.atEof);
    if (status === FAILED) return tokenizer.error;
    if (tokenizer.rows === 1) break;
    if (status !== NEED_MORE) return undefined;
    tokenizer.pos -= window.advance(tokenizer.pos);
  }
  const fields: string[] = [];
  for (let i = 0; i < tokenizer.fieldCounts[0]; i++) {
    let text = window.bytes.toString('utf8', tokenizer.starts[i], tokenizer.ends[i]);
    if (tokenizer.flags[i] & FIELD_ESCAPED)
      text = text.replaceAll(
        String.fromCharCode(options.settings.quote).repeat(2),
        String.fromCharCode(options.settings.quote),
      );
    fields.push(text);
  }
  return { fields, start, end: window.base + tokenizer.pos, lines: tokenizer.line };
}

export function readLayout(window: FileWindow, options: ResolvedReadOptions, file: string): FileLayout {
  const first = readFirstRow(window, options);
  if (first && 'message' in first) {
    throw new TrellisError('ParseError', `${file}: line ${first.line + 1}, column ${first.column}: ${first.message}`);
  }
  const given = options.columns;
  if (!first) return { names: given ? uniqueNames(given) : [], dataStart: window.fileSize, headerLines: 0 };
  const count = first.fields.length;
  if (given && options.header && given.length !== count) {
    throw new TrellisError(
      'InvalidArgument',
      `columns names ${given.length} columns, but the header of ${file} has ${count}`,
    );
  }
  const names = given ?? (options.header ? first.fields : (options.defaultNames?.(count) ?? defaultNames(count)));
  return options.header
    ? { names: uniqueNames(names), dataStart: first.end, headerLines: first.lines }
    : { names: uniqueNames(names), dataStart: first.start, headerLines: 0 };
}

/** column_1, column_2, ...: 1-based, like the column numbers in error messages. */
function defaultNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `column_${i + 1}`);
}

/**
 * Empty names become column_N; a repeated name gets _1, _2, ... (as DuckDB does), so rows read as
 * objects lose nothing.
 */
export function uniqueNames(names: readonly string[]): string[] {
  const seen = new Set<string>();
  return names.map((name, i) => {
    const base = name === '' ? `column_${i + 1}` : name;
    let unique = base;
    for (let n = 1; seen.has(unique); n++) unique = `${base}_${n}`;
    seen.add(unique);
    return unique;
  });
}
