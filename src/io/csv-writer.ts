/**
 * writeCsv: a Table, a RecordBatch or an (async) iterable of RecordBatches to a CSV, TSV or
 * edge-list file that parseFile reads back to the same values.
 *
 * A field is quoted (RFC 4180, inner quotes doubled) when it holds the delimiter, the quote, a
 * CR or LF, or when it would otherwise read back as null: an empty string, or a string equal to
 * the null text. Nulls are written as the null text (default: an empty field). Floats are
 * written in their shortest round-trip form, dates as YYYY-MM-DD, timestamps in ISO 8601
 * (see csv/field-writers.ts).
 * The file appears under its name only when complete: it is written beside it and renamed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RecordBatch, Table, type Field } from 'apache-arrow';
import { TrellisError } from '../errors';
import { ByteSink, type ByteOutput } from './csv/byte-sink';
import { fieldWriterFor, type WriteFormat } from './csv/field-writers';
import { formatDefaultsFor, WHITESPACE_DELIMITER } from './csv/options';

export interface CsvWriteOptions {
  /** Default from the extension: ',' (.csv), '\t' (.tsv), ' ' (.e, .v). 'whitespace' writes one space. */
  delimiter?: string;
  /** Whether to write a header row: default true, but false for .e and .v. */
  header?: boolean;
  /**
   * The quote character; null never quotes (and fails on a value that would need it).
   * Default '"', none for .e and .v.
   */
  quote?: string | null;
  /** How a null is written; default '' (an empty field). */
  nullValue?: string;
  /** Default '\n'. */
  lineEnding?: '\n' | '\r\n';
}

export type CsvSource = Table | RecordBatch | Iterable<RecordBatch> | AsyncIterable<RecordBatch>;

export interface CsvWriteResult {
  path: string;
  rows: number;
  bytes: number;
}

interface Format extends WriteFormat {
  lineEnding: Uint8Array;
}

/** Errors: IOError (cannot write the file, with the system error as cause), InvalidArgument (bad options or source). */
export async function writeCsv(
  file: string,
  source: CsvSource,
  options: CsvWriteOptions = {},
): Promise<CsvWriteResult> {
  resolveFormat(file, options); // bad options fail before a file is made
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.partial`);
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(temporary, 'w');
    const { rows, bytes } = await writeCsvTo(handle, source, options, file);
    await handle.close();
    handle = undefined;
    await fs.promises.rename(temporary, file);
    return { path: file, rows, bytes };
  } catch (error) {
    await handle?.close().catch(() => {});
    await fs.promises.rm(temporary, { force: true }).catch(() => {});
    if (error instanceof TrellisError) throw error;
    if (typeof (error as NodeJS.ErrnoException).code === 'string') {
      throw new TrellisError('IOError', `cannot write ${file}: ${(error as Error).message}`, { cause: error });
    }
    throw error;
  }
}

/**
 * The same rows to any output with a FileHandle's write (stdout, for the command line).
 * `formatOf` is a file name whose extension picks the defaults, as writeCsv's file does.
 * Errors: InvalidArgument (bad options or source); whatever the output's write throws.
 */
export async function writeCsvTo(
  output: ByteOutput,
  source: CsvSource,
  options: CsvWriteOptions = {},
  formatOf = 'out.csv',
): Promise<{ rows: number; bytes: number }> {
  const format = resolveFormat(formatOf, options);
  const header = options.header ?? formatDefaultsFor(formatOf).header;
  const sink = new ByteSink(output);
  let rows = 0;
  let wroteHeader = false;
  for await (const batch of batchesOf(source)) {
    if (header && !wroteHeader) {
      writeHeader(sink, batch.schema.fields, format);
      wroteHeader = true;
    }
    const writers = batch.schema.fields.map((field, i) => fieldWriterFor(field, batch.getChildAt(i)!, sink, format));
    for (let row = 0; row < batch.numRows; row++) {
      for (let column = 0; column < writers.length; column++) {
        if (column > 0) sink.byte(format.delimiter);
        writers[column](row);
      }
      sink.copy(format.lineEnding, 0, format.lineEnding.length);
      if (sink.full) await sink.flush();
    }
    rows += batch.numRows;
  }
  await sink.flush();
  return { rows, bytes: sink.written };
}

/** Names are quoted only when they hold a special byte: an empty name stays empty. */
function writeHeader(sink: ByteSink, fields: readonly Field[], format: Format): void {
  fields.forEach((field, i) => {
    if (i > 0) sink.byte(format.delimiter);
    const name = field.name;
    const special = [...Buffer.from(name)].some(
      (byte) =>
        byte === format.delimiter ||
        byte === format.quote ||
        byte === 0x0a ||
        byte === 0x0d ||
        byte === format.alsoSeparates,
    );
    if (!special) return sink.text(name);
    if (format.quote < 0)
      throw new TrellisError(
        'InvalidArgument',
        `cannot write the column name ${JSON.stringify(name)} without quoting (quote is null)`,
      );
    const bytes = Buffer.from(name);
    sink.copyQuoted(bytes, 0, bytes.length, format.quote);
  });
  sink.copy(format.lineEnding, 0, format.lineEnding.length);
}

function resolveFormat(file: string, options: CsvWriteOptions): Format {
  const defaults = formatDefaultsFor(file);
  let delimiter = options.delimiter ?? defaults.delimiter;
  if (delimiter === WHITESPACE_DELIMITER) delimiter = ' ';
  const quote = options.quote === undefined ? defaults.quote : options.quote;
  if (Buffer.byteLength(delimiter) !== 1 || /[\r\n]/.test(delimiter)) {
    throw new TrellisError(
      'InvalidArgument',
      `delimiter must be one single-byte character other than a line break, got ${JSON.stringify(delimiter)}`,
    );
  }
  if (quote !== null && (Buffer.byteLength(quote) !== 1 || quote === delimiter || /[\r\n]/.test(quote))) {
    throw new TrellisError(
      'InvalidArgument',
      `quote must be one single-byte character other than the delimiter or a line break, got ${JSON.stringify(quote)}`,
    );
  }
  return {
    delimiter: delimiter.charCodeAt(0),
    // With a space delimiter, the reader treats tabs as delimiters too.
    alsoSeparates: delimiter === ' ' ? 0x09 : -1,
    quote: quote === null ? -1 : quote.charCodeAt(0),
    nullValue: Buffer.from(options.nullValue ?? '', 'utf8'),
    lineEnding: Buffer.from(options.lineEnding ?? '\n'),
  };
}

async function* batchesOf(source: CsvSource): AsyncIterable<RecordBatch> {
  if (source instanceof RecordBatch) {
    yield source;
  } else if (source instanceof Table) {
    yield* source.batches;
  } else if (source && (Symbol.asyncIterator in source || Symbol.iterator in source)) {
    for await (const batch of source as AsyncIterable<RecordBatch>) {
      if (!(batch instanceof RecordBatch))
        throw new TrellisError(
          'InvalidArgument',
          `writeCsv: the source yielded ${describe(batch)}, expected apache-arrow RecordBatches`,
        );
      yield batch;
    }
  } else {
    throw new TrellisError(
      'InvalidArgument',
      `writeCsv: expected a Table, a RecordBatch or an iterable of RecordBatches, got ${describe(source)}`,
    );
  }
}

function describe(value: unknown): string {
  return value === null ? 'null' : typeof value === 'object' ? (value.constructor?.name ?? 'an object') : typeof value;
}
