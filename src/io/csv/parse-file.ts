/**
 * parseFile: a CSV, TSV or edge-list file to apache-arrow RecordBatches, delivered in file order.
 *
 * Steps: read the header (layout.ts), infer column types from a sample (infer.ts), cut the file
 * into chunks, parse them on worker threads (or this thread for small files) and deliver each
 * chunk as one RecordBatch, waiting for `onBatch` before delivering the next. Errors are
 * TrellisErrors: ParseError names the file, the 1-based line (counting the header and any
 * skipped lines) and the 1-based column number with its name; IOError names the path and keeps
 * the system error as `cause`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { Schema } from 'apache-arrow';
import { TrellisError } from '../../errors';
import { ChunkParser, type ChunkPlan } from './chunk';
import { InThreadRunner, type ChunkRunner } from './chunk-runner';
import { FileWindow } from './file-window';
import { inferTypes } from './infer';
import { readLayout } from './layout';
import {
  CSV_COLUMN_TYPES,
  resolveReadOptions,
  type CsvColumnType,
  type CsvReadOptions,
  type OnBatch,
  type ResolvedReadOptions,
} from './options';
import { orderedChunks, planChunks } from './ordered-chunks';
import { makeRecordBatch, makeSchema } from './record-batch';
import { WorkerPool } from './worker-pool';

export interface CsvParseResult {
  schema: Schema;
  rows: number;
  /** The file's size. */
  bytes: number;
  batches: number;
  /** Chunks parsed twice because their speculative start was inside a quoted field. */
  reparsedChunks: number;
}

/** Below this many chunks a file is parsed on the calling thread unless `workers` is given. */
const MIN_CHUNKS_FOR_WORKERS = 4;

export async function parseFile(file: string, options: CsvReadOptions, onBatch: OnBatch): Promise<CsvParseResult> {
  const resolved = resolveReadOptions(file, options);
  const { fd, size } = openForReading(file);
  let runner: ChunkRunner | undefined;
  try {
    const { layout, given, inference, schema } = describeFile(new FileWindow(fd, size), resolved, file);
    await options.onSchema?.(schema);

    const plan: ChunkPlan = {
      settings: resolved.settings,
      types: inference.types,
      typeGiven: given.map((type) => type !== undefined),
      bytesPerRow: inference.bytesPerRow,
      textShare: inference.textShare,
    };
    const tasks = layout.names.length === 0 ? [] : planChunks(layout.dataStart, size, resolved.chunkBytes);
    const workers = resolved.workers ?? (tasks.length >= MIN_CHUNKS_FOR_WORKERS ? os.availableParallelism() : 0);
    runner =
      workers > 0
        ? new WorkerPool(Math.min(workers, tasks.length), { fd, fileSize: size, plan })
        : new InThreadRunner(new ChunkParser(fd, size, plan));

    let line = layout.headerLines;
    let rows = 0;
    let batches = 0;
    const stats = { reparsed: 0 };
    for await (const outcome of orderedChunks(runner, tasks, stats)) {
      if (outcome.error) {
        const { column, message } = outcome.error;
        const name = layout.names[column - 1];
        const where = name === undefined ? `column ${column}` : `column ${column} (${JSON.stringify(name)})`;
        throw new TrellisError('ParseError', `${file}: line ${line + outcome.error.line + 1}, ${where}: ${message}`);
      }
      if (outcome.rows > 0) {
        await onBatch(makeRecordBatch(schema, outcome.columns, outcome.rows));
        batches++;
      }
      rows += outcome.rows;
      line += outcome.lines;
      options.progress?.({ bytes: outcome.end, rows, totalBytes: size });
    }
    if (tasks.length === 0) options.progress?.({ bytes: size, rows, totalBytes: size }); // a display still sees the end
    return { schema, rows, bytes: size, batches, reparsedChunks: stats.reparsed };
  } catch (error) {
    throw asTrellisError(file, error);
  } finally {
    await runner?.close();
    fs.closeSync(fd);
  }
}

/** The schema parseFile would produce, from the header and the sample alone. */
export async function inferCsvSchema(file: string, options: CsvReadOptions = {}): Promise<Schema> {
  const resolved = resolveReadOptions(file, options);
  const { fd, size } = openForReading(file);
  try {
    return describeFile(new FileWindow(fd, size), resolved, file).schema;
  } catch (error) {
    throw asTrellisError(file, error);
  } finally {
    fs.closeSync(fd);
  }
}

/** The header, the given and inferred types, and the schema they make. */
function describeFile(window: FileWindow, resolved: ResolvedReadOptions, file: string) {
  const layout = readLayout(window, resolved, file);
  const given = givenTypes(layout.names, resolved.columnTypes);
  const inference = inferTypes({
    window,
    settings: resolved.settings,
    width: layout.names.length,
    dataStart: layout.dataStart,
    sampleRows: resolved.sampleRows,
    given,
  });
  return { layout, given, inference, schema: makeSchema(layout.names, inference.types) };
}

function openForReading(file: string): { fd: number; size: number } {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const stats = fs.fstatSync(fd);
    // Chunking needs the size up front: pipes and devices are not read.
    if (!stats.isFile())
      throw Object.assign(new Error(stats.isDirectory() ? 'it is a directory' : 'it is not a regular file'), {
        code: stats.isDirectory() ? 'EISDIR' : 'EINVAL',
      });
    return { fd, size: stats.size };
  } catch (error) {
    if (fd !== undefined) fs.closeSync(fd);
    throw asTrellisError(file, error);
  }
}

/** The one place foreign errors become TrellisErrors: a system error (here or in a worker) is an IOError. */
function asTrellisError(file: string, error: unknown): unknown {
  if (error instanceof TrellisError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
    return new TrellisError('IOError', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  return error;
}

/** columnTypes as one entry per column; names it does not know are an InvalidArgument. */
function givenTypes(
  names: readonly string[],
  columnTypes: CsvReadOptions['columnTypes'],
): Array<CsvColumnType | undefined> {
  const types: Array<CsvColumnType | undefined> = new Array(names.length).fill(undefined);
  if (columnTypes === undefined) return types;
  const entries: Array<[number, unknown, string]> = Array.isArray(columnTypes)
    ? columnTypes.map((type, i) => [i, type, `column ${i + 1}`])
    : Object.entries(columnTypes).map(([name, type]) => [names.indexOf(name), type, JSON.stringify(name)]);
  for (const [index, type, label] of entries) {
    if (type === undefined) continue;
    if (index < 0 || index >= names.length) {
      throw new TrellisError(
        'InvalidArgument',
        `columnTypes names ${label}, but the columns are ${names.map((name) => JSON.stringify(name)).join(', ')}`,
      );
    }
    if (!(CSV_COLUMN_TYPES as readonly unknown[]).includes(type)) {
      throw new TrellisError(
        'InvalidArgument',
        `columnTypes gives ${label} the type ${JSON.stringify(type)}; expected one of ${CSV_COLUMN_TYPES.join(', ')}`,
      );
    }
    types[index] = type as CsvColumnType;
  }
  return types;
}
