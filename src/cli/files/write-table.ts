/**
 * A stored DataFrame or RecordBatch out as CSV (by extension: .tsv, .e, .v pick their own
 * delimiters) or as an Arrow IPC file. The table is a view of shared memory: both writers read
 * it batch by batch and never copy it whole.
 */
import { RecordBatchFileWriter, type RecordBatch, type Table } from 'apache-arrow';
import { writeCsv, writeCsvTo } from '../../io/csv-writer';
import type { OutputSink } from './output-sink';

/** Batches with their bytes counted as they are handed on. */
async function* counted(batches: RecordBatch[], onProgress: (bytes: number) => void): AsyncGenerator<RecordBatch> {
  let bytes = 0;
  for (const batch of batches) {
    yield batch;
    bytes += batch.data.byteLength;
    onProgress(bytes);
  }
}

/** To a file (`path`: written beside and renamed, as writeCsv does) or to the sink (stdout). */
export async function writeTableCsv(
  table: Table | RecordBatch,
  path: string | undefined,
  sink: () => Promise<OutputSink>,
  onProgress: (bytes: number) => void,
): Promise<void> {
  const batches = 'batches' in table ? table.batches : [table];
  if (path !== undefined) {
    await writeCsv(path, counted(batches, onProgress));
    return;
  }
  const output = await sink();
  try {
    await writeCsvTo(output, counted(batches, onProgress));
  } finally {
    await output.close();
  }
}

export async function writeTableArrow(
  table: Table | RecordBatch,
  sink: OutputSink,
  onProgress: (bytes: number) => void,
): Promise<void> {
  // writeAll queues views of the table's buffers (and small headers); draining sends them on.
  const writer = RecordBatchFileWriter.writeAll('batches' in table ? table : [table]);
  for await (const chunk of writer) {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    await sink.write(bytes, 0, bytes.length);
    onProgress(sink.written);
  }
}
