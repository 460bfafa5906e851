/**
 * CSV, TSV and edge lists (.csv, .tsv, .e, .v) as a trellis::DataFrame, through `open()` of
 * trellis/io: the file is parsed in parallel into a DataframeStream in the store, gathered into
 * a Table over those batches (no copy), and put as one DataFrame (one copy). The stream is
 * deleted once the DataFrame exists.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TrellisClient } from '../../connect';
import { open, type DataframeStream } from '../../io';
import type { PutOptions } from '../../types/registry';
import { progressBar } from '../progress-bar';

export const TABLE_EXTENSIONS = ['.csv', '.tsv', '.e', '.v'];

/** Errors: IOError, ParseError, OutOfMemory, NameExists. */
export async function putTableFile(client: TrellisClient, file: string, options: PutOptions): Promise<string> {
  let bar: ReturnType<typeof progressBar> | undefined;
  const stream: DataframeStream = await open(pathToFileURL(path.resolve(file)).href, {
    client,
    progress: ({ bytes, totalBytes }: { bytes: number; totalBytes: number }) =>
      (bar ??= progressBar(`put ${file}`, totalBytes)).update(bytes),
  });
  try {
    const table = await stream.readTable();
    bar?.done();
    return await client.put(table, options);
  } finally {
    bar?.done();
    await client.delete(stream.id, { force: true }).catch(() => {});
  }
}
