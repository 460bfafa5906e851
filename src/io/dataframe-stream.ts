/**
 * What `open` returns for a file read: a DataframeStream in the store, being written by the
 * parser in this process while any process reads it by `id`. Iterating it reads it here.
 */
import { Table, type RecordBatch, type Schema } from 'apache-arrow';
import type { TrellisClient } from '../connect';
import { isTrellisError } from '../errors';

export const DATAFRAME_STREAM_TYPENAME = 'trellis::DataframeStream';

export class DataframeStream implements AsyncIterable<RecordBatch> {
  readonly typename = DATAFRAME_STREAM_TYPENAME;

  constructor(
    private readonly client: TrellisClient,
    readonly id: string,
    /** Settles when the producer is done; rejects with its own error (ParseError, IOError). */
    private readonly produced: Promise<unknown>,
    private readonly schema: Promise<Schema>,
    private readonly ownsClient: boolean,
  ) {
    produced.catch(() => {}); // reported to readers, not as an unhandled rejection
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RecordBatch> {
    yield* this.read(false);
  }

  /**
   * Gathers the whole stream into one arrow Table over shared memory (no copy). Its memory stays
   * until the client closes. Errors: ParseError, IOError, StreamFailed.
   */
  async readTable(): Promise<Table> {
    const batches: RecordBatch[] = [];
    for await (const batch of this.read(true)) batches.push(batch);
    return batches.length > 0 ? new Table(batches) : new Table(await this.schema);
  }

  /** Waits for the producer; closes the client `open` made. */
  async close(): Promise<void> {
    await this.produced.catch(() => {});
    if (this.ownsClient) await this.client.close();
  }

  private async *read(keep: boolean): AsyncGenerator<RecordBatch> {
    const reader = await this.client.openReader(this.id, { keep });
    try {
      for await (const batch of reader) yield batch as RecordBatch;
    } catch (error) {
      // The stream says only that it failed; the producer knows why (the file, line and column).
      if (isTrellisError(error, 'StreamFailed')) await this.produced;
      throw error;
    }
  }
}
