/**
 * The `file:` driver: reads CSV, TSV and edge lists (.e, .v) into a DataframeStream, parsing in
 * parallel; with `mode: 'w'`, writes a table or stream to a CSV file.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RecordBatch, Schema, Table } from 'apache-arrow';
import { connect, type TrellisClient } from '../connect';
import { TrellisError } from '../errors';
import { parseFile } from './csv/parse-file';
import type { CsvReadOptions } from './csv/options';
import { writeCsv, type CsvWriteOptions } from './csv-writer';
import { DataframeStream, DATAFRAME_STREAM_TYPENAME } from './dataframe-stream';
import type { Driver } from './drivers';
import { terminalProgress } from './progress';

export interface FileOpenOptions extends CsvReadOptions, CsvWriteOptions {
  /** Daemon socket; default $TRELLIS_SOCKET, then the default path. */
  socket?: string;
  /** Use this client instead of connecting a new one. */
  client?: TrellisClient;
  mode?: 'r' | 'w';
  /** For mode 'w': a Table, a DataframeStream, or any (async) iterable of RecordBatches. */
  source?: Table | AsyncIterable<RecordBatch> | Iterable<RecordBatch>;
}

export const fileDriver: Driver = {
  async open(url, options) {
    const opts = options as FileOpenOptions;
    const path = pathOf(url);
    if (opts.mode === 'w') return writeFile(path, opts);
    if (opts.mode !== undefined && opts.mode !== 'r')
      throw new TrellisError('InvalidArgument', `mode must be 'r' or 'w', got ${JSON.stringify(opts.mode)}`);
    return readFile(path, opts);
  },
};

function pathOf(url: URL): string {
  try {
    return fileURLToPath(url);
  } catch (error) {
    throw new TrellisError('InvalidArgument', `${url.href} is not a local file URL (use file:///absolute/path)`, {
      cause: error,
    });
  }
}

async function readFile(path: string, options: FileOpenOptions): Promise<DataframeStream> {
  try {
    await fs.promises.access(path, fs.constants.R_OK);
  } catch (error) {
    throw new TrellisError('IOError', `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  const client = options.client ?? (await connect(options.socket));
  try {
    const stream = await client.createStream(DATAFRAME_STREAM_TYPENAME, { params: { url: `file://${path}` } });
    const writer = await client.openWriter(stream.id);
    let haveSchema: (schema: Schema) => void = () => {};
    const schema = new Promise<Schema>((resolve) => (haveSchema = resolve));
    const parseOptions: CsvReadOptions = {
      ...options,
      progress: options.progress ?? terminalProgress(`reading ${path}`),
      onSchema: async (found) => {
        haveSchema(found);
        await options.onSchema?.(found);
      },
    };
    const produced = parseFile(path, parseOptions, (batch) => writer.write(batch)).then(
      async (result) => {
        await writer.finish();
        return result;
      },
      async (error: Error) => {
        // Failing the stream deletes what was written: the store keeps nothing half-made.
        await writer.fail(error.message).catch(() => {});
        throw error;
      },
    );
    return new DataframeStream(client, stream.id, produced, schema, options.client === undefined);
  } catch (error) {
    if (options.client === undefined) await client.close();
    throw error;
  }
}

async function writeFile(path: string, options: FileOpenOptions): Promise<{ path: string; rows: number }> {
  if (!options.source)
    throw new TrellisError('InvalidArgument', `open(${path}, { mode: 'w' }) needs a source: a Table or a stream`);
  return writeCsv(path, options.source, options);
}
