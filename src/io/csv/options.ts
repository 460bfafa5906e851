/**
 * What a caller may ask of the CSV reader, and the resolved form the parser works from. The
 * resolved form is plain data (numbers and arrays), because it is sent to worker threads.
 *
 * Defaults follow the file's extension: `.csv` is comma-separated with a header, `.tsv` is
 * tab-separated with a header, and `.e` / `.v` (graph edge and vertex lists) are separated by
 * runs of spaces or tabs, have no header, no quoting, and skip `#` comment lines.
 */
import * as path from 'node:path';
import type { RecordBatch, Schema } from 'apache-arrow';
import { TrellisError } from '../../errors';

/** The column types the reader produces; see schema.ts for the arrow type of each. */
export const CSV_COLUMN_TYPES = ['int64', 'float64', 'bool', 'date', 'string'] as const;
export type CsvColumnType = (typeof CSV_COLUMN_TYPES)[number];

/** The delimiter value that means "one or more spaces or tabs", as in edge lists. */
export const WHITESPACE_DELIMITER = 'whitespace';

export interface CsvProgress {
  /** Bytes of the file parsed and delivered so far (including the header). */
  bytes: number;
  rows: number;
  totalBytes: number;
}

export interface CsvReadOptions {
  /** One single-byte character, or 'whitespace' for runs of spaces and tabs. */
  delimiter?: string;
  /** Whether the first (non-comment, non-empty) line names the columns. */
  header?: boolean;
  /** Column names; with a header they replace the header's names (the counts must match). */
  columns?: string[];
  /** Types that skip inference, by column name or by position (0-based array). */
  columnTypes?: Record<string, CsvColumnType> | Array<CsvColumnType | undefined>;
  /** Lines starting with this prefix are skipped; '' or null for none. */
  comment?: string | null;
  /** The quote character (RFC 4180, doubled inside a quoted field); null to turn quoting off. */
  quote?: string | null;
  /**
   * Unquoted field texts that mean null. Default ['']: an empty field is null. In non-string
   * columns an empty field is always null. A quoted field is never null, so `""` is an empty string.
   */
  nullValues?: string[];
  /**
   * Data rows read from the start of the file to infer column types (default 20,000); large files
   * also get about as many rows more from ten places spread over the file. Infinity infers from
   * the whole file, which costs an extra pass but guarantees no row fails its inferred type.
   */
  sampleRows?: number;
  /** Worker threads; default: one per core. 0 parses on the calling thread. */
  workers?: number;
  /** Bytes of file per chunk; each chunk becomes one RecordBatch. Default 8 MiB. */
  chunkBytes?: number;
  /** Called with the schema before the first batch (e.g. to create a stream with it). */
  onSchema?: (schema: Schema) => void | Promise<void>;
  /** Called after each batch is delivered. */
  progress?: (progress: CsvProgress) => void;
}

export type OnBatch = (batch: RecordBatch) => void | Promise<void>;

/** The reader's settings as plain data: what worker threads receive. */
export interface ParseSettings {
  /** The delimiter byte; unused when `whitespace` is set. */
  delimiter: number;
  whitespace: boolean;
  /** The quote byte, or -1 for no quoting. */
  quote: number;
  /** The comment prefix as bytes; empty for none. */
  comment: number[];
  /** Whether an unquoted empty field in a string column is null. */
  emptyIsNull: boolean;
  /** The other null texts, as UTF-8 bytes. */
  nullTexts: number[][];
}

export interface ResolvedReadOptions {
  settings: ParseSettings;
  header: boolean;
  columns?: string[];
  columnTypes?: CsvReadOptions['columnTypes'];
  /** The names edge and vertex lists give their columns when no names are given. */
  defaultNames?: (count: number) => string[];
  sampleRows: number;
  workers?: number;
  chunkBytes: number;
}

export const DEFAULT_SAMPLE_ROWS = 20_000;
export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;
/** Chunks hold at least this much, so that a tiny chunkBytes cannot make batches of a few rows. */
const MIN_CHUNK_BYTES = 4 * 1024;

interface FormatDefaults {
  delimiter: string;
  header: boolean;
  quote: string | null;
  comment: string | null;
  defaultNames?: (count: number) => string[];
}

const CSV_DEFAULTS: FormatDefaults = { delimiter: ',', header: true, quote: '"', comment: null };

/** By extension; anything unknown reads as CSV. */
const FORMAT_DEFAULTS: Record<string, FormatDefaults> = {
  '.csv': CSV_DEFAULTS,
  '.tsv': { ...CSV_DEFAULTS, delimiter: '\t' },
  '.tab': { ...CSV_DEFAULTS, delimiter: '\t' },
  '.e': {
    delimiter: WHITESPACE_DELIMITER,
    header: false,
    quote: null,
    comment: '#',
    defaultNames: (n) => graphNames(['src', 'dst'], 'weight', n),
  },
  '.v': {
    delimiter: WHITESPACE_DELIMITER,
    header: false,
    quote: null,
    comment: '#',
    defaultNames: (n) => graphNames(['id'], 'value', n),
  },
};

/** src, dst, weight, weight_2, ... */
function graphNames(leading: string[], extra: string, count: number): string[] {
  const names = leading.slice(0, count);
  for (let i = names.length; i < count; i++)
    names.push(i === leading.length ? extra : `${extra}_${i - leading.length + 1}`);
  return names;
}

export function formatDefaultsFor(file: string): FormatDefaults {
  return FORMAT_DEFAULTS[path.extname(file).toLowerCase()] ?? CSV_DEFAULTS;
}

function singleByte(what: string, value: string): number {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length !== 1)
    throw new TrellisError(
      'InvalidArgument',
      `${what} must be one single-byte character, got ${JSON.stringify(value)}`,
    );
  return bytes[0];
}

export function resolveReadOptions(file: string, options: CsvReadOptions = {}): ResolvedReadOptions {
  const defaults = formatDefaultsFor(file);
  const delimiterText = options.delimiter ?? defaults.delimiter;
  const whitespace = delimiterText === WHITESPACE_DELIMITER;
  const delimiter = whitespace ? 0x20 : singleByte('delimiter', delimiterText);
  const quoteText = options.quote === undefined ? defaults.quote : options.quote;
  const quote = quoteText === null || quoteText === '' ? -1 : singleByte('quote', quoteText);
  if (quote === delimiter && !whitespace) throw new TrellisError('InvalidArgument', 'delimiter and quote must differ');
  if (delimiter === 0x0a || delimiter === 0x0d || quote === 0x0a || quote === 0x0d) {
    throw new TrellisError('InvalidArgument', 'delimiter and quote cannot be line breaks');
  }
  const commentText = options.comment === undefined ? defaults.comment : options.comment;
  const nullValues = options.nullValues ?? [''];
  if (!Array.isArray(nullValues) || nullValues.some((value) => typeof value !== 'string')) {
    throw new TrellisError('InvalidArgument', 'nullValues must be an array of strings');
  }
  const sampleRows = options.sampleRows ?? DEFAULT_SAMPLE_ROWS;
  if (!(sampleRows >= 1)) throw new TrellisError('InvalidArgument', `sampleRows must be at least 1, got ${sampleRows}`);
  if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 0)) {
    throw new TrellisError('InvalidArgument', `workers must be a whole number >= 0, got ${options.workers}`);
  }
  if (
    options.columns !== undefined &&
    (!Array.isArray(options.columns) || options.columns.some((name) => typeof name !== 'string'))
  ) {
    throw new TrellisError('InvalidArgument', 'columns must be an array of strings');
  }
  return {
    settings: {
      delimiter,
      whitespace,
      quote,
      comment: commentText ? [...Buffer.from(commentText, 'utf8')] : [],
      emptyIsNull: nullValues.includes(''),
      nullTexts: nullValues.filter((value) => value !== '').map((value) => [...Buffer.from(value, 'utf8')]),
    },
    header: options.header ?? defaults.header,
    columns: options.columns,
    columnTypes: options.columnTypes,
    defaultNames: defaults.defaultNames,
    sampleRows,
    workers: options.workers,
    chunkBytes: Math.max(MIN_CHUNK_BYTES, Math.floor(options.chunkBytes ?? DEFAULT_CHUNK_BYTES)),
  };
}
