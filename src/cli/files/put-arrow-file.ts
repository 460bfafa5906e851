/**
 * Arrow IPC files and streams (.arrow, .arrows, .feather) as a trellis::DataFrame, without
 * holding the file in this process: apache-arrow reads one record batch at a time from a file
 * handle (the footer first, for the file format), each batch is put as a trellis::RecordBatch
 * and dropped here, and the DataFrame is put from a Table over those shared-memory batches.
 * The staged batches are deleted after. The cost: the table's bytes are in the store twice
 * until then, and copied twice.
 */
import * as fs from 'node:fs';
import { RecordBatchReader, Table, type RecordBatch } from 'apache-arrow';
import type { TrellisClient } from '../../connect';
import { isTrellisError, TrellisError } from '../../errors';
import type { PutOptions } from '../../types/registry';
import { progressBar } from '../progress-bar';

export const ARROW_EXTENSIONS = ['.arrow', '.arrows', '.feather'];

/** Errors: IOError, InvalidArgument (not Arrow IPC), OutOfMemory, NameExists. */
export async function putArrowFile(client: TrellisClient, file: string, options: PutOptions): Promise<string> {
  const handle = await fs.promises.open(file, 'r');
  const staged: string[] = [];
  try {
    const { size } = await handle.stat();
    const bar = progressBar(`put ${file}`, size);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: the file says which
    let reader: Awaited<ReturnType<typeof RecordBatchReader.from<any>>>;
    try {
      reader = await RecordBatchReader.from(handle);
      let bytes = 0;
      for await (const batch of reader) {
        staged.push(await client.put(batch));
        bytes += batch.data.byteLength;
        bar.update(Math.min(bytes, size));
      }
    } catch (error) {
      if (isTrellisError(error)) throw error;
      throw new TrellisError('ParseError', `cannot read ${file} as Arrow IPC: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      bar.done();
    }
    const batches = (await Promise.all(staged.map((id) => client.get(id)))) as RecordBatch[];
    const table = batches.length > 0 ? new Table(batches) : new Table(reader.schema);
    return await client.put(table, options);
  } finally {
    if (staged.length > 0) await client.delete(staged).catch(() => {});
    await handle.close().catch(() => {}); // arrow closes it when it reads to the end
  }
}
