/**
 * What `open` returns for a file read: a DataframeStream in the store, being written by the
 * parser in this process while any process reads it by `id`. Iterating it reads it here.
 *
 * When `open` connected a client of its own (no `client` option), a finished read lets go of it,
 * so a script that reads a file and does nothing else exits by itself, close() or not:
 * - iteration that ends, breaks out or fails closes that client (stopping the parser, if it has
 *   not finished, at its next write): the batches it yielded were freed as it went anyway;
 * - readTable keeps the client, since its references hold the table's memory (closing it would
 *   let the daemon hand that memory to other objects under the table), but unrefs it: idle, it
 *   no longer keeps the process running. close() lets go of the table's memory early.
 * A client passed in by the caller is never closed or unref'd here.
 */
import { Table, type RecordBatch, type Schema } from 'apache-arrow';
import type { TrellisClient } from '../connect';
import { isTrellisError, TrellisError } from '../errors';

export const DATAFRAME_STREAM_TYPENAME = 'trellis::DataframeStream';

export class DataframeStream implements AsyncIterable<RecordBatch> {
  readonly typename = DATAFRAME_STREAM_TYPENAME;
  /** True once the client `open` made was closed: the stream cannot be read again. */
  private released = false;

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

  /** Batches in file order, each freed when the next is read. Errors: ParseError, IOError, StreamFailed. */
  async *[Symbol.asyncIterator](): AsyncIterator<RecordBatch> {
    let readToEnd = false;
    try {
      yield* this.read(false);
      readToEnd = true;
    } finally {
      await this.release(readToEnd);
    }
  }

  /**
   * Gathers the whole stream into one arrow Table over shared memory (no copy). Its memory stays
   * until the client closes: for the client `open` made, until close() or the process exits.
   * Errors: ParseError, IOError, StreamFailed.
   */
  async readTable(): Promise<Table> {
    const batches: RecordBatch[] = [];
    try {
      for await (const batch of this.read(true)) batches.push(batch);
    } catch (error) {
      await this.release(false);
      throw error;
    }
    await this.produced.catch(() => {});
    if (this.ownsClient) this.client.unref();
    return batches.length > 0 ? new Table(batches) : new Table(await this.schema);
  }

  /** Waits for the producer; closes the client `open` made. */
  async close(): Promise<void> {
    await this.produced.catch(() => {});
    await this.release(true);
  }

  private async *read(keep: boolean): AsyncGenerator<RecordBatch> {
    if (this.released) {
      throw new TrellisError(
        'StreamOpened',
        `stream ${this.id} was already read here and the connection open() made for it is closed: open the file again`,
      );
    }
    const reader = await this.client.openReader(this.id, { keep });
    try {
      for await (const batch of reader) yield batch as RecordBatch;
    } catch (error) {
      // The stream says only that it failed; the producer knows why (the file, line and column).
      if (isTrellisError(error, 'StreamFailed')) await this.produced;
      throw error;
    }
  }

  /**
   * Closes the client `open` made, once. Read to the end, the producer has finished (or is about
   * to); otherwise closing stops it at its next write. Either way it has settled (and its parsing
   * threads are gone) when this resolves.
   */
  private async release(readToEnd: boolean): Promise<void> {
    if (!this.ownsClient || this.released) return;
    this.released = true;
    if (readToEnd) await this.produced.catch(() => {});
    await this.client.close();
    await this.produced.catch(() => {});
  }
}
